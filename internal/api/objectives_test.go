package api

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probes"
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
		Availability: &config.Objective{Target: 0.999, Window: config.Window(30 * 24 * time.Hour)},
		Latency:      &config.LatencyObjective{Objective: config.Objective{Target: 0.99, Window: config.Window(30 * 24 * time.Hour)}, Max: 40 * time.Millisecond},
		Loss:         &config.LossObjective{Objective: config.Objective{Target: 0.99, Window: config.Window(30 * 24 * time.Hour)}, Max: 0.01},
	}
	tg := probe.NewTarget(p, p.Targets[0])
	a := New(Options{Probes: []config.Probe{p}, Targets: []*probe.Target{tg}, Store: s, Feed: NewFeed(), Types: probes.Registry,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return end }})
	b.ResetTimer()
	for b.Loop() {
		a.objectiveCache = objectiveCache{}
		list := a.objectives(tg)
		if len(list) != 3 || list[0].SLI == nil || *list[0].SLI != 1 {
			b.Fatalf("objectives %+v", list)
		}
	}
}
