package probe

import (
	"context"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/testutil"
)

var latencyType = &Type{Name: "ping", Values: []Value{
	{Name: "rtt_avg_seconds", Role: RoleLatency}, {Name: "jitter_seconds", Role: RoleJitter},
	{Name: "loss_ratio", Role: RoleLoss}}}

func TestDegraded(t *testing.T) {
	two := config.Ratio(0.02)
	th := config.Thresholds{Latency: 100 * time.Millisecond, Jitter: 30 * time.Millisecond, Loss: &two}
	cases := []struct {
		values Values
		want   string
	}{
		{Values{"rtt_avg_seconds": 0.05, "jitter_seconds": 0.01, "loss_ratio": 0}, ""},
		{Values{"rtt_avg_seconds": 0.1, "jitter_seconds": 0.03, "loss_ratio": 0.02}, ""}, // at the limit: not past it
		{Values{"rtt_avg_seconds": 0.149, "jitter_seconds": 0.01, "loss_ratio": 0.1}, "latency 149 ms > 100 ms, loss 10% > 2%"},
		{Values{"rtt_avg_seconds": 0.0012, "jitter_seconds": 0.0456}, "jitter 46 ms > 30 ms"},
		{Values{}, ""}, // nothing measured: nothing exceeds
	}
	for _, c := range cases {
		if got := Degraded(th, latencyType, c.values); got != c.want {
			t.Errorf("Degraded(%v) = %q, want %q", c.values, got, c.want)
		}
	}
	// A type without a latency role ignores the latency threshold; rates
	// degrade below theirs.
	speed := &Type{Name: "speedtest", Values: []Value{{Name: "latency_idle_seconds", Role: RoleIdle},
		{Name: "download_bytes_per_second", Role: RoleDownload}, {Name: "upload_bytes_per_second", Role: RoleUpload}}}
	if got := Degraded(th, speed, Values{"latency_idle_seconds": 5}); got != "" {
		t.Errorf("speed test degraded by %q: it has no latency role", got)
	}
	plan := config.Thresholds{Download: 12.5e6, Upload: 2.5e6}
	if got := Degraded(plan, speed, Values{"download_bytes_per_second": 5e6, "upload_bytes_per_second": 3e6}); got != "download 40 Mbit/s < 100 Mbit/s" {
		t.Errorf("speed test below its download plan: %q", got)
	}
}

// The thresholds a target has are exported once it has a result; one it
// lacks has no series.
func TestThresholdGauges(t *testing.T) {
	r, tel, _ := newRunner(t)
	half := config.Ratio(0.005)
	tg := NewTarget(config.Probe{Name: "wan", Type: "ping", Thresholds: config.Thresholds{Latency: 100 * time.Millisecond}},
		config.Target{Name: "gw", Host: "192.0.2.1", Thresholds: config.Thresholds{Loss: &half}})
	r.Run(context.Background(), proberFunc(func(context.Context, *Target) (Values, error) { return Values{}, nil }), tg, time.Second)
	ms := tel.Collect(t)
	if v, ok := testutil.Value(ms["netpulse.threshold.latency"]); !ok || v != 0.1 {
		t.Errorf("latency threshold %v %v, want 0.1 (the probe's)", v, ok)
	}
	if v, ok := testutil.Value(ms["netpulse.threshold.loss"]); !ok || v != 0.005 {
		t.Errorf("loss threshold %v %v, want 0.005 (the target's)", v, ok)
	}
	if _, ok := testutil.Value(ms["netpulse.threshold.jitter"]); ok {
		t.Error("a jitter threshold is exported, but none is set")
	}
}

// A run's progress reports reach OnProgress a few times a second at most,
// and at every phase change; without a follower, ReportProgress is a no-op.
func TestProgressThrottled(t *testing.T) {
	r, _, _ := newRunner(t)
	var got []Progress
	r.OnProgress = func(_ Result, p Progress) { got = append(got, p) }
	ReportProgress(context.Background(), Progress{Phase: "nobody listens"})
	r.Run(context.Background(), proberFunc(func(ctx context.Context, _ *Target) (Values, error) {
		for range 100 {
			ReportProgress(ctx, Progress{Phase: "download", Rate: 1e6})
		}
		ReportProgress(ctx, Progress{Phase: "upload", Rate: 2e6})
		return Values{}, nil
	}), target, time.Second)
	if len(got) < 2 || len(got) > 10 || got[0].Phase != "download" || got[len(got)-1].Phase != "upload" {
		t.Errorf("OnProgress got %+v: want the first download report, the upload one, and few between", got)
	}
}
