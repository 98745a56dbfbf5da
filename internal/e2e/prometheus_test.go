package e2e

import (
	"fmt"
	"testing"

	"github.com/prometheus/common/model"

	"github.com/netpulse/netpulse/internal/testutil"
)

// TestPrometheusExemplars has a real Prometheus scrape the agent (it
// negotiates OpenMetrics): the RTT histogram is queryable with PromQL, its
// exemplars carry trace ids, and such a trace id belongs to a trace the
// collector received, so a latency sample links to the run that measured it.
func TestPrometheusExemplars(t *testing.T) {
	t.Parallel()
	testutil.NeedPrometheus(t)
	col := testutil.StartCollector(t)
	// Traces only over OTLP: Prometheus scrapes the metrics.
	a := testutil.StartAgent(t, otlpBlock(col.GRPCEndpoint, "grpc", "signals: [traces]")+"probes:"+loopbackProbe())
	prom := testutil.StartPrometheus(t, a.Addr)

	const series = `netpulse_ping_rtt_seconds_bucket{job="netpulse",probe_name="loop",probe_type="ping",target_name="v4",link="lo"}`
	testutil.Eventually(t, wait, func() error {
		vec, err := prom.Query(series)
		if err != nil {
			return err
		}
		// One series per bucket boundary plus +Inf.
		if len(vec) < 10 {
			return fmt.Errorf("%s: %d series, want one per bucket", series, len(vec))
		}
		for _, s := range vec {
			if s.Metric["le"] == "+Inf" && s.Value > 0 {
				return nil
			}
		}
		return fmt.Errorf("%s: no +Inf bucket with samples in %v", series, vec)
	})

	var traceID string
	testutil.Eventually(t, wait, func() error {
		res, err := prom.QueryExemplars(series)
		if err != nil {
			return err
		}
		for _, s := range res {
			for _, e := range s.Exemplars {
				if id := e.Labels[model.LabelName("trace_id")]; id != "" && e.Labels["span_id"] != "" {
					traceID = string(id)
					return nil
				}
			}
		}
		return fmt.Errorf("no exemplar with trace_id and span_id for %s (%d series)", series, len(res))
	})

	testutil.Eventually(t, wait, func() error {
		r, err := col.Read()
		if err != nil {
			return err
		}
		for _, s := range r.SpansNamed("ping loop") {
			if s.TraceID == traceID {
				return nil
			}
		}
		return fmt.Errorf("exemplar trace %s is not among the %d spans the collector received", traceID, len(r.Spans))
	})
}

// TestPromtoolCheckMetrics runs `promtool check metrics` (Prometheus' linter
// for names, units, suffixes and help) on the agent's /metrics while it has
// both a succeeding and a failing target, so every family is present.
func TestPromtoolCheckMetrics(t *testing.T) {
	t.Parallel()
	testutil.NeedPrometheus(t)
	dns := testutil.DNSServer(t, nil)
	a := testutil.StartAgent(t, fmt.Sprintf("global: {resolver: %q, labels: {site: e2e}}\nprobes:", dns)+loopbackProbe()+`
  - name: broken
    type: ping
    interval: 1s
    timeout: 800ms
    targets: [{host: nowhere.test, name: nowhere}]
    ping: {count: 1}
`)
	waitRuns(t, a, success, 1)
	waitRuns(t, a, map[string]string{"probe_name": "broken", "outcome": "failure"}, 1)
	text, err := a.MetricsText(false)
	if err != nil {
		t.Fatal(err)
	}
	if out, ok := testutil.PromtoolCheckMetrics(t, text); !ok || out != "" {
		t.Errorf("promtool check metrics reported (exit ok=%v):\n%s", ok, out)
	}
}
