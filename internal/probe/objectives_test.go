package probe_test

import (
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probes"
	"github.com/netpulse/netpulse/internal/testutil"
)

// The gauges carry each target's merged objectives, and the maintenance
// gauge follows the clock through a window.
func TestRegisterObjectives(t *testing.T) {
	cfg, err := config.Parse([]byte(`
maintenance:
  - {reason: ISP works, start: 2026-12-01T02:00:00Z, end: 2026-12-01T04:00:00Z, targets: [b]}
probes:
  - name: wan
    type: ping
    objectives:
      availability: {target: 99.9%}
      latency: {target: 99%, max: 40ms, window: 7d}
    targets:
      - {host: 127.0.0.1, name: a}
      - host: 127.0.0.2
        name: b
        objectives: {availability: {target: 99.5%, window: 1d}, loss: {target: 99%, max: 2%}}
      - {host: 127.0.0.3, name: c, objectives: {}}
`), probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	var targets []*probe.Target
	for _, tc := range cfg.Probes[0].Targets {
		tg := probe.NewTarget(cfg.Probes[0], tc)
		tg.Maintenance = cfg.MaintenanceFor("wan", tc.Name)
		targets = append(targets, tg)
	}
	now := time.Date(2026, 12, 1, 1, 59, 0, 0, time.UTC)
	tel := testutil.NewTelemetry(t)
	if err := probe.RegisterObjectives(tel.Meters, targets, func() time.Time { return now }); err != nil {
		t.Fatal(err)
	}
	m := tel.Collect(t)
	target := func(name string) attribute.KeyValue { return probe.KeyTargetName.String(name) }
	objective := func(name string) attribute.KeyValue { return probe.KeyObjective.String(name) }
	for _, c := range []struct {
		metric string
		attrs  []attribute.KeyValue
		want   float64
	}{
		{"netpulse.objective", []attribute.KeyValue{target("a"), objective("availability")}, 0.999},
		{"netpulse.objective.window", []attribute.KeyValue{target("a"), objective("availability")}, 30 * 86400},
		{"netpulse.objective", []attribute.KeyValue{target("b"), objective("availability")}, 0.995},
		{"netpulse.objective.window", []attribute.KeyValue{target("b"), objective("availability")}, 86400},
		{"netpulse.objective.window", []attribute.KeyValue{target("b"), objective("latency")}, 7 * 86400},
		{"netpulse.objective.latency.threshold", []attribute.KeyValue{target("b")}, 0.04},
		{"netpulse.objective.loss.threshold", []attribute.KeyValue{target("b")}, 0.02},
		{"netpulse.maintenance.active", []attribute.KeyValue{target("b")}, 0},
	} {
		if got, ok := testutil.Value(m[c.metric], c.attrs...); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.metric, c.attrs, got, ok, c.want)
		}
	}
	if _, ok := testutil.Value(m["netpulse.objective.loss.threshold"], target("a")); ok {
		t.Error("target a has a loss threshold, but no loss objective")
	}
	if _, ok := testutil.Value(m["netpulse.maintenance.active"], target("a")); ok {
		t.Error("target a has a maintenance series, but no window")
	}
	now = now.Add(time.Minute)
	if got, _ := testutil.Value(tel.Collect(t)["netpulse.maintenance.active"], target("b")); got != 1 {
		t.Errorf("maintenance.active of b at the window's start = %v, want 1", got)
	}
	if on, reason, until := targets[1].MaintenanceAt(now); !on || reason != "ISP works" || !until.Equal(now.Add(2*time.Hour)) {
		t.Errorf("MaintenanceAt = %v %q %v", on, reason, until)
	}
}
