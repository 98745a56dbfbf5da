package agent

import (
	"fmt"
	"testing"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probes"
)

// A reload by difference re-exports the objectives: a changed target
// reads its new objective, and a probe's objectives removed take their
// series with them.
func TestReloadUpdatesObjectives(t *testing.T) {
	dir := t.TempDir()
	parse := func(objectives string) *config.Config {
		cfg, err := config.Parse(fmt.Appendf(nil, `
storage: {path: %q}
probes:
  - name: lan
    type: ping
    interval: 1m
    targets: [{name: a, host: 127.0.0.1}]
    ping: {count: 1}
%s
`, dir, objectives), probes.Registry)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	a := newTestAgent(t, parse("    objectives: {availability: {target: 99.9%}}"))
	objective := func() (float64, bool) {
		return gather(t, a).Sum("netpulse_objective_ratio", map[string]string{"target_name": "a", "objective": "availability"})
	}
	if v, ok := objective(); !ok || v != 0.999 {
		t.Fatalf("objective %v (found %v), want 0.999", v, ok)
	}
	if _, err := a.Apply(parse("    objectives: {availability: {target: 99.5%}}")); err != nil {
		t.Fatal(err)
	}
	if v, ok := objective(); !ok || v != 0.995 {
		t.Errorf("after the reload: objective %v (found %v), want 0.995 alone", v, ok)
	}
	if _, err := a.Apply(parse("")); err != nil {
		t.Fatal(err)
	}
	if v, ok := objective(); ok {
		t.Errorf("objectives removed, but netpulse_objective_ratio is %v", v)
	}
}
