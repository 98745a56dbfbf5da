package e2e

import (
	"errors"
	"fmt"
	"testing"

	"github.com/netpulse/netpulse/internal/testutil"
)

// TestOTLPExport checks that a real collector receives, over OTLP/gRPC and
// OTLP/HTTP, the run spans with their resolve and echo children and the
// ping and run metrics, with the attributes dashboards and trace queries use.
func TestOTLPExport(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ protocol, scheme string }{{"grpc", ""}, {"http", "http://"}} {
		t.Run(tc.protocol, func(t *testing.T) {
			t.Parallel()
			col := testutil.StartCollector(t)
			endpoint := col.GRPCEndpoint
			if tc.protocol == "http" {
				endpoint = tc.scheme + col.HTTPEndpoint
			}
			testutil.StartAgent(t, "global: {labels: {site: e2e}}\n"+otlpBlock(endpoint, tc.protocol)+
				"probes:"+loopbackProbe())

			target := map[string]string{"probe.name": "loop", "probe.type": "ping", "target.name": "v4"}
			testutil.Eventually(t, wait, func() error {
				r, err := col.Read()
				if err != nil {
					return err
				}
				return errors.Join(checkRunSpans(r, target), checkMetrics(r, target))
			})
		})
	}
}

// checkRunSpans finds a successful "ping loop" run span with its two
// children in the same trace.
func checkRunSpans(r *testutil.Received, target map[string]string) error {
	runs := r.SpansNamed("ping loop")
	if len(runs) == 0 {
		return fmt.Errorf("no span named %q among %d spans", "ping loop", len(r.Spans))
	}
	var errs []error
	for _, run := range runs {
		err := checkRunSpan(r, run, target)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("no complete run among %d: %w", len(runs), errors.Join(errs...))
}

func checkRunSpan(r *testutil.Received, run testutil.Span, target map[string]string) error {
	want := map[string]string{"outcome": "success", "link": "lo", "server.address": "127.0.0.1",
		"network.peer.address": "127.0.0.1", "ping.packets.sent": "3", "ping.packets.received": "3"}
	for k, v := range target {
		want[k] = v
	}
	if !run.Attributes.Has(want) {
		return fmt.Errorf("run span %s: attributes %v, want %v", run.SpanID, run.Attributes.Map(), want)
	}
	if run.ParentSpanID != "" {
		return fmt.Errorf("run span %s has parent %s, want a root span", run.SpanID, run.ParentSpanID)
	}
	if v, _ := run.Resource.Get("service.name"); v != "netpulse" {
		return fmt.Errorf("run span resource service.name = %q", v)
	}
	if v, _ := run.Resource.Get("site"); v != "e2e" {
		return fmt.Errorf("run span resource site = %q, want the global label e2e", v)
	}
	for _, name := range []string{"resolve", "echo"} {
		found := false
		for _, s := range r.SpansNamed(name) {
			if s.TraceID == run.TraceID && s.ParentSpanID == run.SpanID {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("run span %s (trace %s) has no child span %q", run.SpanID, run.TraceID, name)
		}
	}
	return nil
}

// checkMetrics finds the RTT histogram and the runs counter with the
// target's attributes.
func checkMetrics(r *testutil.Received, target map[string]string) error {
	var errs []error
	rtt := r.MetricsNamed("netpulse.ping.rtt")
	found := false
	for _, m := range rtt {
		if m.Histogram == nil || m.Unit != "s" {
			return fmt.Errorf("netpulse.ping.rtt: want a histogram in s, got unit %q histogram=%v", m.Unit, m.Histogram != nil)
		}
		for _, p := range m.Histogram.DataPoints {
			if p.Attributes.Has(target) && p.Count > 0 && len(p.ExplicitBounds) > 0 {
				found = true
			}
		}
	}
	if !found {
		errs = append(errs, fmt.Errorf("no netpulse.ping.rtt histogram point with %v and samples (%d exports)", target, len(rtt)))
	}

	succ := map[string]string{"outcome": "success"}
	for k, v := range target {
		succ[k] = v
	}
	runs := r.MetricsNamed("netpulse.probe.runs")
	found = false
	for _, m := range runs {
		if m.Sum == nil || !m.Sum.IsMonotonic {
			return fmt.Errorf("netpulse.probe.runs: want a monotonic sum")
		}
		for _, p := range m.Sum.DataPoints {
			if p.Attributes.Has(succ) && p.Value() >= 1 {
				if _, ok := p.Attributes.Get("error.type"); ok {
					return fmt.Errorf("netpulse.probe.runs: a success carries error.type: %v", p.Attributes.Map())
				}
				found = true
			}
		}
	}
	if !found {
		errs = append(errs, fmt.Errorf("no netpulse.probe.runs point with %v (%d exports)", succ, len(runs)))
	}
	return errors.Join(errs...)
}
