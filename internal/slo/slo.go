// Package slo computes a target's service level indicators and remaining
// error budgets from its result history, the agent's own figure for the
// API and the status page. prometheus/rules/slo.yml computes the same
// objectives from the exported series; the two agree in definition (see
// Compute) and differ in detail: here a latency step is judged by the mean
// of its runs' latency, there by the median of every reply.
package slo

import (
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/history"
)

// Step is the length of the windows the latency and loss objectives judge
// one at a time, and of the buckets Compute reads.
const Step = 5 * time.Minute

// Status is one objective of a target as its history shows it.
type Status struct {
	config.NamedObjective
	// Events are the runs (availability) or 5-minute steps (latency, loss)
	// counted in the window; Good those that met the objective.
	Events, Good int
	// SLI is Good / Events; BudgetRemaining is 1 - (1 - SLI) / (1 -
	// target): 1 untouched, 0 spent, below 0 overspent. Both are absent
	// (ok false) without events, or for an objective the agent cannot
	// judge (speed: the plan is Prometheus', tuning.yml).
	SLI, BudgetRemaining float64
	OK                   bool
}

// Values names the values of a probe type that the objectives read
// (probe.Type's RoleLatency and RoleLoss values).
type Values struct {
	Latency, Loss string
}

// Compute judges objective o on buckets of Step (history.Store.Aggregate)
// covering its window; a bucket whose middle falls in maintenance is left
// out. Availability counts runs: good when they succeeded. Latency and
// loss count 5-minute steps with a measurement: good when the mean of
// their runs' latency (loss) is at most the threshold.
func Compute(o config.NamedObjective, buckets []history.Bucket, values Values, maintenance func(time.Time) bool) Status {
	s := Status{NamedObjective: o}
	for _, b := range buckets {
		if maintenance != nil && maintenance(b.Start.Add(Step/2)) {
			continue
		}
		switch o.Name {
		case config.ObjectiveAvailability:
			s.Events += b.Runs
			s.Good += b.Runs - b.Failures
		case config.ObjectiveLatency, config.ObjectiveLoss:
			name := values.Latency
			if o.Name == config.ObjectiveLoss {
				name = values.Loss
			}
			v, ok := b.Values[name]
			if name == "" || !ok {
				continue // no measurement in the step (the target was down)
			}
			s.Events++
			if v.Avg <= o.Threshold {
				s.Good++
			}
		}
	}
	if s.Events > 0 {
		s.SLI = float64(s.Good) / float64(s.Events)
		s.BudgetRemaining = 1 - (1-s.SLI)/(1-float64(o.Target))
		s.OK = true
	}
	return s
}
