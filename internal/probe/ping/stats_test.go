package ping

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/testutil"
)

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	// Replies arrive out of order; jitter follows sequence order:
	// seq 0..3 RTTs 10, 14, 12, 20 → |14-10|+|12-14|+|20-12| = 14 over 3 = 4.667ms.
	s := summarize(5, []reply{{2, 12 * ms}, {0, 10 * ms}, {3, 20 * ms}, {1, 14 * ms}}, 1)
	if s.min != 10*ms || s.max != 20*ms || s.avg != 14*ms {
		t.Errorf("min/avg/max = %s/%s/%s, want 10ms/14ms/20ms", s.min, s.avg, s.max)
	}
	if want := time.Duration(14 * float64(ms) / 3); s.jitter != want {
		t.Errorf("jitter = %s, want %s", s.jitter, want)
	}
	// Population stddev of 10,14,12,20: mean 14, squares 16+0+4+36=56, /4=14, sqrt=3.742ms.
	if s.stddev < 3741*time.Microsecond || s.stddev > 3742*time.Microsecond {
		t.Errorf("stddev = %s, want 3.742ms", s.stddev)
	}
	if got := s.loss(); got != 0.2 {
		t.Errorf("loss = %g, want 0.2 (1 of 5 lost)", got)
	}
	if s.duplicates != 1 {
		t.Errorf("duplicates = %d", s.duplicates)
	}
	// Sorted 10, 12, 14, 20: p10 at rank 0.3 → 10.6, p25 at 0.75 → 11.5,
	// median at 1.5 → 13, p75 at 2.25 → 15.5, p90 at 2.7 → 18.2 (ms).
	want := [...]time.Duration{10600 * time.Microsecond, 11500 * time.Microsecond, 13 * ms, 15500 * time.Microsecond,
		18200 * time.Microsecond}
	if s.quantiles != want {
		t.Errorf("quantiles = %v, want %v", s.quantiles, want)
	}
}

func TestSummarizeEdgeCases(t *testing.T) {
	if s := summarize(3, nil, 0); s.loss() != 1 || s.received != 0 {
		t.Errorf("no replies: loss %g received %d, want 1 and 0", s.loss(), s.received)
	}
	if s := summarize(0, nil, 0); s.loss() != 1 {
		t.Errorf("nothing sent: loss %g, want 1", s.loss())
	}
	if s := summarize(1, []reply{{0, time.Millisecond}}, 0); s.jitter != 0 || s.stddev != 0 {
		t.Errorf("one reply: jitter %s stddev %s, want 0", s.jitter, s.stddev)
	}
}

// Packet totals are read from one snapshot: a collection while runs record
// never shows more replies than requests, and each total is the sum of the
// runs' counts; a retired target's totals are gone.
func TestPacketTotalsAreConsistent(t *testing.T) {
	tel := testutil.NewTelemetry(t)
	ms, err := newMetrics(tel.Meters.Meter(ScopeName))
	if err != nil {
		t.Fatal(err)
	}
	target := probe.NewTarget(config.Probe{Name: "p", Type: TypeName}, config.Target{Name: "t"})
	const runs = 200_000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range runs {
			ms.count(target, summary{sent: 3, received: 2, duplicates: 1})
		}
	}()
	totals := func() (sent, received, dup float64) {
		var rm metricdata.ResourceMetrics
		if err := tel.Reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		data := map[string]metricdata.Metrics{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				data[m.Name] = m
			}
		}
		sent, _ = testutil.Value(data["netpulse.ping.packets.sent"])
		received, _ = testutil.Value(data["netpulse.ping.packets.received"])
		dup, _ = testutil.Value(data["netpulse.ping.packets.duplicate"])
		return sent, received, dup
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		if sent, received, _ := totals(); received*3 != sent*2 {
			t.Fatalf("a collection read %g sent and %g received: not one snapshot of whole runs", sent, received)
		}
	}
	if sent, received, dup := totals(); sent != 3*runs || received != 2*runs || dup != runs {
		t.Errorf("totals sent %g, received %g, duplicates %g; want %d, %d, %d", sent, received, dup, 3*runs, 2*runs, runs)
	}
	target.Retire()
	if sent, _, _ := totals(); sent != 0 {
		t.Errorf("a retired target still reports %g packets sent", sent)
	}
}
