package api

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probes"
	"github.com/netpulse/netpulse/internal/testutil"
)

// The fixture's lan/gw has 240 runs every 30 s from 10:00, 5 of them failed
// (one at 10:53:30, inside its 10:30-11:00 maintenance window); lan/v6 is in
// a maintenance window at the fixture's clock (13:00); speed/isp has a
// speed objective the agent cannot judge.
func TestObjectivesFromHistory(t *testing.T) {
	f := newFixture(t, nil)
	var probes struct {
		Probes []struct {
			Name    string `json:"name"`
			Targets []struct {
				Name        string           `json:"name"`
				Objectives  []objectiveJSON  `json:"objectives"`
				Maintenance *maintenanceJSON `json:"maintenance"`
			} `json:"targets"`
		} `json:"probes"`
	}
	serve(t, f.api, request{path: "/api/v1/probes"}).decode(t, &probes)
	byName := map[string]map[string]objectiveJSON{}
	maint := map[string]*maintenanceJSON{}
	for _, p := range probes.Probes {
		for _, tg := range p.Targets {
			key := p.Name + "/" + tg.Name
			byName[key] = map[string]objectiveJSON{}
			for _, o := range tg.Objectives {
				byName[key][o.Name] = o
			}
			maint[key] = tg.Maintenance
		}
	}
	// 180 runs outside maintenance, 4 failed: 99 % allows 1.8.
	if o := byName["lan/gw"]["availability"]; o.SLI == nil || *o.SLI != 176.0/180 || *o.BudgetRemaining > -1.2 ||
		o.Target != 0.99 || o.WindowSeconds != 86400 {
		t.Errorf("lan/gw availability = %+v (sli %v), want 176/180 with the budget overspent", o, deref(o.SLI))
	}
	if m := maint["lan/gw"]; m == nil || m.Active || m.Until != nil {
		t.Errorf("lan/gw maintenance = %+v, want covered but not active", m)
	}
	if m := maint["lan/v6"]; m == nil || !m.Active || m.Reason != "ISP works <night>" || m.Until == nil || m.Until.Hour() != 14 {
		t.Errorf("lan/v6 maintenance = %+v, want active until 14:00", m)
	}
	if m := maint["speed/isp"]; m != nil {
		t.Errorf("speed/isp maintenance = %+v, want none (no window covers it)", m)
	}
	if o, ok := byName["speed/isp"]["speed"]; !ok || o.SLI != nil || o.BudgetRemaining != nil {
		t.Errorf("speed/isp speed = %+v, want present with null figures", o)
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// BenchmarkObjectives30Days measures one target's objective figures over
// 30 days of results every 30 s (86,400 rows): what a probes answer costs
// once a minute per target with objectives (objectivesTTL).
func BenchmarkObjectives30Days(b *testing.B) {
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-30 * 24 * time.Hour)
	s, p, _ := dayStore(b, func(i int) (time.Time, trace.TraceID) {
		return start.Add(time.Duration(i) * 30 * time.Second), trace.TraceID{1}
	})
	p.Objectives = config.Objectives{
		Availability: &config.Objective{Target: 0.999, Window: config.ObjectiveWindow(30 * 24 * time.Hour)},
		Latency:      &config.LatencyObjective{Objective: config.Objective{Target: 0.99, Window: config.ObjectiveWindow(30 * 24 * time.Hour)}, Max: 40 * time.Millisecond},
		Loss:         &config.LossObjective{Objective: config.Objective{Target: 0.99, Window: config.ObjectiveWindow(30 * 24 * time.Hour)}, Max: 0.01},
	}
	tg := probe.NewTarget(p, p.Targets[0])
	a := New(Options{Probes: []config.Probe{p}, Targets: []*probe.Target{tg}, Store: s, Feed: NewFeed(), Types: probes.Registry,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return end }})
	b.ResetTimer()
	for b.Loop() {
		list := a.computeObjectives(tg, end)
		if len(list) != 3 || list[0].SLI == nil || *list[0].SLI != 1 {
			b.Fatalf("objectives %+v", list)
		}
	}
}

// A stale figure is answered at once and recomputed in the background:
// runs stored after it show a minute later without a request waiting for
// the history.
func TestObjectivesRefreshInBackground(t *testing.T) {
	f := newFixture(t, nil)
	var now atomic.Int64
	now.Store(fixtureNow.UnixNano())
	f.api.opts.Now = func() time.Time { return time.Unix(0, now.Load()).UTC() }
	gw := f.targets["lan/gw"]
	availability := func() float64 {
		for _, o := range f.api.objectives(gw) {
			if o.Name == "availability" && o.SLI != nil {
				return *o.SLI
			}
		}
		t.Fatal("lan/gw has no availability figure")
		return 0
	}
	if got := availability(); got != 176.0/180 {
		t.Fatalf("sli %v, want 176/180", got)
	}
	var failed []probe.Result
	for i := range 10 {
		start := fixtureDay.Add(150*time.Minute + time.Duration(i)*30*time.Second)
		failed = append(failed, probe.Result{Target: gw, Start: start, Outcome: probe.OutcomeFailure, ErrorType: probe.ErrNoReply,
			RunID: probe.NewRunID(gw, start), Values: pingValues(math.NaN(), 1)})
	}
	if err := f.store.Put(failed); err != nil {
		t.Fatal(err)
	}
	if got := availability(); got != 176.0/180 {
		t.Errorf("sli %v within the minute, want the cached 176/180", got)
	}
	now.Add(int64(2 * time.Minute))
	if got := availability(); got != 176.0/180 {
		t.Errorf("sli %v when stale, want 176/180 answered at once", got)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if got := availability(); got != 176.0/190 {
			return fmt.Errorf("sli %v, want 176/190 once recomputed", got)
		}
		return nil
	})
}
