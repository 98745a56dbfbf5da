package probe

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/netpulse/netpulse/internal/config"
)

// KeyObjective names an objective (config.Objective*) on the
// netpulse_objective_* series.
const KeyObjective = attribute.Key("objective")

// Objectives returns the target's objectives: its probe's, overridden key
// by key by its own (t.Config holds the probe with this target alone).
func (t *Target) Objectives() config.Objectives {
	if len(t.Config.Targets) == 0 {
		return config.Objectives{}
	}
	return t.Config.TargetObjectives(0)
}

// MaintenanceAt returns whether one of the target's maintenance windows is
// active at now, with its reason and the end of the current occurrence (the
// latest, when several overlap).
func (t *Target) MaintenanceAt(now time.Time) (active bool, reason string, until time.Time) {
	for _, m := range t.Maintenance {
		if on, end := m.ActiveAt(now); on && end.After(until) {
			active, reason, until = true, m.Reason, end
		}
	}
	return active, reason, until
}

// RegisterObjectives exports each target's objectives and maintenance state
// as gauges, the inputs of prometheus/rules/slo.yml: with one series per
// objective of a target, one generic rule set computes every target's SLI,
// budget and burn rate. Targets without objectives have no
// netpulse_objective_* series; targets without maintenance windows no
// netpulse_maintenance_active. Both are bounded by the configuration.
func RegisterObjectives(mp metric.MeterProvider, targets []*Target, now func() time.Time) error {
	in := Instruments{Meter: mp.Meter(ScopeName)}
	ratio := in.Gauge("netpulse.objective", "1",
		"Objective of the target: the share of good events to reach over the window, by objective (availability, latency, loss, speed).")
	window := in.Gauge("netpulse.objective.window", "s", "Window of the target's objective, by objective.")
	latency := in.Gauge("netpulse.objective.latency.threshold", "s",
		"Highest median latency of a good 5-minute window of the target's latency objective.")
	loss := in.Gauge("netpulse.objective.loss.threshold", "1",
		"Highest packet loss of a good 5-minute window of the target's loss objective.")
	speed := in.Gauge("netpulse.objective.speed.threshold", "1",
		"Least download rate of a good speed test of the target's speed objective, as a share of the plan.")
	if in.Err != nil {
		return in.Err
	}
	active, err := in.Meter.Int64ObservableGauge("netpulse.maintenance.active",
		metric.WithDescription("1 while a maintenance window of the target is active, else 0 (targets with windows only)."))
	if err != nil {
		return err
	}
	thresholds := map[string]metric.Float64ObservableGauge{
		config.ObjectiveLatency: latency, config.ObjectiveLoss: loss, config.ObjectiveSpeed: speed}
	// What the callback observes is fixed by the configuration: computed once.
	type objectiveSeries struct {
		objective, target metric.ObserveOption // with and without the objective label
		ratio, window     float64
		threshold         metric.Float64ObservableGauge // nil for availability
		value             float64
	}
	var series []objectiveSeries
	var maintained []*Target
	for _, t := range targets {
		for _, o := range t.Objectives().Each() {
			series = append(series, objectiveSeries{
				objective: metric.WithAttributes(append(t.Attrs.ToSlice(), KeyObjective.String(o.Name))...),
				target:    metric.WithAttributeSet(t.Attrs),
				ratio:     float64(o.Target), window: time.Duration(o.Window).Seconds(),
				threshold: thresholds[o.Name], value: o.Threshold,
			})
		}
		if len(t.Maintenance) > 0 {
			maintained = append(maintained, t)
		}
	}
	_, err = in.Meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, s := range series {
			o.ObserveFloat64(ratio, s.ratio, s.objective)
			o.ObserveFloat64(window, s.window, s.objective)
			if s.threshold != nil {
				o.ObserveFloat64(s.threshold, s.value, s.target)
			}
		}
		at := now()
		for _, t := range maintained {
			on, _, _ := t.MaintenanceAt(at)
			o.ObserveInt64(active, boolToInt(on), metric.WithAttributeSet(t.Attrs))
		}
		return nil
	}, ratio, window, latency, loss, speed, active)
	return err
}
