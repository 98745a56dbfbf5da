package slo

import (
	"math"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/history"
)

func TestCompute(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var buckets []history.Bucket
	// 100 steps of 10 runs; steps 10-11 fail entirely, steps 20-24 are
	// slow (60 ms mean) and lossy (5 %); steps 30-31 have no measurement.
	for i := range 100 {
		b := history.Bucket{Start: start.Add(time.Duration(i) * Step), Runs: 10,
			Values: map[string]history.Stat{"rtt_avg_seconds": {Avg: 0.02}, "loss_ratio": {Avg: 0}}}
		switch {
		case i == 10 || i == 11:
			b.Failures = 10
			b.Values = map[string]history.Stat{"loss_ratio": {Avg: 1}}
		case i >= 20 && i < 25:
			b.Values = map[string]history.Stat{"rtt_avg_seconds": {Avg: 0.06}, "loss_ratio": {Avg: 0.05}}
		case i == 30 || i == 31:
			b.Values = nil
		}
		buckets = append(buckets, b)
	}
	values := Values{Latency: "rtt_avg_seconds", Loss: "loss_ratio"}
	obj := func(name string, target, threshold float64) config.NamedObjective {
		return config.NamedObjective{Name: name, Objective: config.Objective{Target: config.Percentage(target)}, Threshold: threshold}
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	for _, c := range []struct {
		o            config.NamedObjective
		maintenance  func(time.Time) bool
		events, good int
		sli, budget  float64
	}{
		{obj("availability", 0.99, 0), nil, 1000, 980, 0.98, -1},
		{obj("availability", 0.95, 0), nil, 1000, 980, 0.98, 0.6},
		// Steps 10-11 in maintenance: left out of the window.
		{obj("availability", 0.99, 0), func(at time.Time) bool {
			return !at.Before(start.Add(10*Step)) && at.Before(start.Add(12*Step))
		}, 980, 980, 1, 1},
		// 96 steps with an RTT (2 failed, 2 unmeasured), 5 of them slow.
		{obj("latency", 0.9, 0.04), nil, 96, 91, 91.0 / 96, 1 - (5.0/96)/0.1},
		// Loss is measured in failed steps too (100 %): 7 bad of 98.
		{obj("loss", 0.9, 0.01), nil, 98, 91, 91.0 / 98, 1 - (7.0/98)/0.1},
	} {
		s := Compute(c.o, buckets, values, c.maintenance)
		if !s.OK || s.Events != c.events || s.Good != c.good || !near(s.SLI, c.sli) || !near(s.BudgetRemaining, c.budget) {
			t.Errorf("%s %v: events %d good %d sli %v budget %v ok %v; want %d %d %v %v",
				c.o.Name, c.o.Target, s.Events, s.Good, s.SLI, s.BudgetRemaining, s.OK, c.events, c.good, c.sli, c.budget)
		}
	}
	if s := Compute(obj("speed", 0.95, 0.8), buckets, values, nil); s.OK {
		t.Errorf("speed judged without the plan: %+v", s)
	}
	if s := Compute(obj("availability", 0.99, 0), nil, values, nil); s.OK {
		t.Errorf("no history judged: %+v", s)
	}
}
