package api

import (
	"testing"
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
