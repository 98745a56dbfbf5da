package e2e

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/testutil"
)

// TestSDKDisabled: OTEL_SDK_DISABLED=true wins over a configured endpoint.
// Nothing reaches the collector, not even at the final flush; /metrics still
// works and carries no exemplars, whose trace ids would point nowhere.
func TestSDKDisabled(t *testing.T) {
	t.Parallel()
	col := testutil.StartCollector(t)
	a := testutil.StartAgent(t, otlpBlock(col.GRPCEndpoint, "grpc")+"probes:"+loopbackProbe(),
		testutil.AgentEnv("OTEL_SDK_DISABLED=true"))
	// Three runs take two metrics intervals: exports would have happened.
	waitRuns(t, a, success, 3)

	text, err := a.MetricsText(true)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "netpulse_ping_rtt_seconds_bucket{") {
		t.Errorf("/metrics has no RTT histogram:\n%s", text)
	}
	if strings.Contains(text, "trace_id") {
		t.Errorf("/metrics (OpenMetrics) has exemplars although no trace is exported:\n%s", grep(text, "trace_id"))
	}
	if code, err := a.Process.Stop(10 * time.Second); err != nil || code != 0 {
		t.Fatalf("agent stop: exit %d, %v", code, err)
	}
	r := col.Barrier(t).Service("netpulse")
	if len(r.Spans) > 0 || len(r.Metrics) > 0 {
		t.Errorf("collector received %d spans and %d metrics from netpulse with OTEL_SDK_DISABLED=true",
			len(r.Spans), len(r.Metrics))
	}
}

// TestCollectorDown: the OTLP endpoint is a closed port. Exports fail and are
// counted, and probing keeps its cadence: exporting happens off the probe
// path, so a run never waits for the collector.
func TestCollectorDown(t *testing.T) {
	t.Parallel()
	closed := testutil.FreeAddr(t)
	a := testutil.StartAgent(t, otlpBlock(closed, "grpc", "timeout: 1s")+"probes:"+loopbackProbe())

	testutil.Eventually(t, wait, func() error {
		v, ok, err := gauge(a, "netpulse_telemetry_errors_total", nil)
		if err != nil {
			return err
		}
		if !ok || v == 0 {
			return fmt.Errorf("netpulse_telemetry_errors_total = %v (present %v), want > 0", v, ok)
		}
		return nil
	})

	// Over a window of several intervals, with exports failing all along,
	// runs keep coming once per interval: at most one slot may straddle the
	// window's edges.
	const window = 5 * interval
	n0, err := runs(a, success)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var n1 float64
	var elapsed time.Duration
	testutil.Eventually(t, window+wait, func() error {
		// Elapsed time taken before the scrape: the count it returns
		// covers at least that long.
		elapsed = time.Since(start)
		if n1, err = runs(a, success); err != nil {
			return err
		}
		if elapsed < window {
			return fmt.Errorf("window not over")
		}
		return nil
	})
	want := math.Floor(elapsed.Seconds()/interval.Seconds()) - 1
	if got := n1 - n0; got < want {
		t.Errorf("%v successful runs in %v with the collector down, want >= %v (one per %v)", got, elapsed, want, interval)
	}
	fams, err := a.Families()
	if err != nil {
		t.Fatal(err)
	}
	for _, outcome := range []string{"skipped", "timeout", "failure"} {
		if v, _ := fams.Sum("netpulse_probe_runs_total", map[string]string{"outcome": outcome}); v != 0 {
			t.Errorf("netpulse_probe_runs_total{outcome=%q} = %v with the collector down, want 0", outcome, v)
		}
	}
}

// TestGracefulShutdown: on SIGTERM the agent exits 0 within a bounded time
// and its final flush delivers the spans of the runs it made. The span
// batcher's schedule is set far beyond the test so that only the flush at
// shutdown can deliver them.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	col := testutil.StartCollector(t)
	a := testutil.StartAgent(t, otlpBlock(col.GRPCEndpoint, "grpc", "metrics_interval: 1h")+"probes:"+loopbackProbe(),
		testutil.AgentEnv("OTEL_BSP_SCHEDULE_DELAY=3600000"))
	n := waitRuns(t, a, success, 2)
	if r := col.Barrier(t).Service("netpulse"); len(r.Spans) > 0 || len(r.Metrics) > 0 {
		t.Fatalf("collector got %d spans and %d metrics before shutdown; the test needs them held back",
			len(r.Spans), len(r.Metrics))
	}

	start := time.Now()
	code, err := a.Process.Stop(15 * time.Second)
	if err != nil || code != 0 {
		t.Fatalf("SIGTERM: exit %d, %v", code, err)
	}
	t.Logf("agent exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))

	r := col.Barrier(t).Service("netpulse")
	if got := len(r.SpansNamed("ping loop")); float64(got) < n {
		t.Errorf("collector has %d run spans after shutdown, want >= %v (the runs counted before SIGTERM)", got, n)
	}
	found := false
	for _, m := range r.MetricsNamed("netpulse.probe.runs") {
		for _, p := range m.Sum.DataPoints {
			if v, _ := p.Attributes.Get("outcome"); v == "success" && p.Value() >= n {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("the final metrics flush did not deliver netpulse.probe.runs{outcome=success} >= %v", n)
	}
}

func grep(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
