package config

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Objectives are the service level objectives of a probe's targets, set on
// the probe and overridden per target, key by key. The agent exports each
// one as netpulse_objective_* gauges, so one generic rule set
// (prometheus/rules/slo.yml) computes every target's SLI, error budget and
// burn rate; no rule is written per target.
type Objectives struct {
	// Availability: the share of runs that succeed.
	Availability *Objective `yaml:"availability,omitempty"`
	// Latency: the share of 5-minute windows whose median latency (ping:
	// RTT; tcp, http, dns: run duration) is at most Max.
	Latency *LatencyObjective `yaml:"latency,omitempty"`
	// Loss: the share of 5-minute windows whose packet loss is at most Max.
	Loss *LossObjective `yaml:"loss,omitempty"`
	// Speed: the share of speed tests whose download reaches Min of the
	// subscribed plan (netpulse:plan:bytes_per_second, tuning.yml).
	Speed *SpeedObjective `yaml:"speed,omitempty"`
}

// Objective is what every objective has: the share of good events to
// reach (99.9%) over a rolling window.
type Objective struct {
	Target Percentage      `yaml:"target"`
	Window ObjectiveWindow `yaml:"window,omitempty"`
}

// LatencyObjective bounds the median latency of each 5-minute window.
type LatencyObjective struct {
	Objective `yaml:",inline"`
	Max       time.Duration `yaml:"max"`
}

// LossObjective bounds the packet loss of each 5-minute window.
type LossObjective struct {
	Objective `yaml:",inline"`
	Max       Percentage `yaml:"max"`
}

// SpeedObjective sets the least download rate of a test, as a share of plan.
type SpeedObjective struct {
	Objective `yaml:",inline"`
	Min       Percentage `yaml:"min"`
}

// Objective names: the objective label of netpulse_objective_* and of the
// SLO recording rules, and the keys of an objectives block.
const (
	ObjectiveAvailability = "availability"
	ObjectiveLatency      = "latency"
	ObjectiveLoss         = "loss"
	ObjectiveSpeed        = "speed"
)

// ObjectiveWindows are the windows prometheus/rules/slo.yml records error
// budgets over: PromQL ranges are fixed in a rule, so a generic rule set
// offers a few and each objective picks one.
var ObjectiveWindows = []time.Duration{24 * time.Hour, 7 * 24 * time.Hour, 28 * 24 * time.Hour, 30 * 24 * time.Hour}

// DefaultObjectiveWindow is the window of an objective that sets none.
const DefaultObjectiveWindow = 30 * 24 * time.Hour

// ObjectiveTypes is implemented by the probe type registry: the objectives
// (besides availability, which every type has) whose SLI the rules compute
// for a type's series.
type ObjectiveTypes interface {
	Objectives(typeName string) []string
}

// Each lists the objectives set, in a fixed order, with their common part.
func (o Objectives) Each() []NamedObjective {
	var out []NamedObjective
	if o.Availability != nil {
		out = append(out, NamedObjective{ObjectiveAvailability, *o.Availability, 0})
	}
	if o.Latency != nil {
		out = append(out, NamedObjective{ObjectiveLatency, o.Latency.Objective, o.Latency.Max.Seconds()})
	}
	if o.Loss != nil {
		out = append(out, NamedObjective{ObjectiveLoss, o.Loss.Objective, float64(o.Loss.Max)})
	}
	if o.Speed != nil {
		out = append(out, NamedObjective{ObjectiveSpeed, o.Speed.Objective, float64(o.Speed.Min)})
	}
	return out
}

// NamedObjective is one objective of a target with its name and its
// threshold in base units (latency: seconds; loss, speed: a ratio; 0 for
// availability).
type NamedObjective struct {
	Name string
	Objective
	Threshold float64
}

// TargetObjectives returns the objectives of the probe's i-th target: the
// probe's, with the keys the target sets replacing them, and default
// windows.
func (p Probe) TargetObjectives(i int) Objectives {
	return mergeObjectives(p.Objectives, p.Targets[i].Objectives)
}

// mergeObjectives returns the target's objectives: the probe's, with each
// key the target sets replacing the probe's, and default windows.
func mergeObjectives(probe, target Objectives) Objectives {
	out := Objectives{
		Availability: mergeObjective(probe.Availability, target.Availability),
		Latency: mergePtr(probe.Latency, target.Latency, func(p, t *LatencyObjective) {
			t.Objective = overlay(p.Objective, t.Objective)
			t.Max = or(t.Max, p.Max)
		}),
		Loss:  mergePtr(probe.Loss, target.Loss, func(p, t *LossObjective) { t.Objective = overlay(p.Objective, t.Objective); t.Max = or(t.Max, p.Max) }),
		Speed: mergePtr(probe.Speed, target.Speed, func(p, t *SpeedObjective) { t.Objective = overlay(p.Objective, t.Objective); t.Min = or(t.Min, p.Min) }),
	}
	for _, o := range out.common() {
		if o.Window == 0 {
			o.Window = ObjectiveWindow(DefaultObjectiveWindow)
		}
	}
	return out
}

func mergeObjective(p, t *Objective) *Objective {
	return mergePtr(p, t, func(p, t *Objective) { *t = overlay(*p, *t) })
}

// mergePtr copies whichever of p and t is set; with both, t's set keys over p's.
func mergePtr[T any](p, t *T, merge func(p, t *T)) *T {
	switch {
	case t == nil && p == nil:
		return nil
	case t == nil:
		c := *p
		return &c
	case p == nil:
		c := *t
		return &c
	}
	c := *t
	merge(p, &c)
	return &c
}

func overlay(p, t Objective) Objective {
	return Objective{Target: or(t.Target, p.Target), Window: or(t.Window, p.Window)}
}

func or[T comparable](v, fallback T) T {
	var zero T
	if v == zero {
		return fallback
	}
	return v
}

// common returns the common part of each objective set, to change in place.
func (o Objectives) common() []*Objective {
	var out []*Objective
	if o.Availability != nil {
		out = append(out, o.Availability)
	}
	if o.Latency != nil {
		out = append(out, &o.Latency.Objective)
	}
	if o.Loss != nil {
		out = append(out, &o.Loss.Objective)
	}
	if o.Speed != nil {
		out = append(out, &o.Speed.Objective)
	}
	return out
}

// checkObjectives checks the values of an objectives block as written
// at path, and that it uses only the objectives the probe's type has an
// SLI for. Required keys are checked on each target's merged objectives
// (requireObjectives): a probe may set a window that targets complete.
func checkObjectives(p *Problems, path string, o Objectives, pr *Probe, types Types) {
	var supported []string
	if ot, ok := types.(ObjectiveTypes); ok {
		supported = ot.Objectives(pr.Type)
	}
	check := func(name string, c *Objective) {
		op := path + "." + name
		if name != ObjectiveAvailability && supported != nil && !slices.Contains(supported, name) {
			p.Add(op, "a probe of type %s has no %s SLI (its objectives: %s)", pr.Type, name,
				strings.Join(append([]string{ObjectiveAvailability}, supported...), ", "))
			return
		}
		if t := float64(c.Target); t < 0 || t >= 1 {
			p.Add(op+".target", "must be above 0%% and below 100%% (100%% leaves no error budget), not %s", c.Target)
		}
		if w := time.Duration(c.Window); w != 0 {
			switch {
			case w < pr.Interval:
				p.Add(op+".window", "%s is shorter than the probe's interval (%s): it would hold no run", c.Window, pr.Interval)
			case !slices.Contains(ObjectiveWindows, w):
				p.Add(op+".window", "must be one of %s (the windows prometheus/rules/slo.yml records budgets for), not %s",
					windowList(), c.Window)
			}
		}
	}
	if o.Availability != nil {
		check(ObjectiveAvailability, o.Availability)
	}
	if l := o.Latency; l != nil {
		check(ObjectiveLatency, &l.Objective)
		if l.Max < 0 {
			p.Add(path+".latency.max", "must be positive, not %s", l.Max)
		}
	}
	if l := o.Loss; l != nil {
		check(ObjectiveLoss, &l.Objective)
		if l.Max < 0 || l.Max >= 1 {
			p.Add(path+".loss.max", "must be at least 0%% and below 100%%, not %s", l.Max)
		}
	}
	if s := o.Speed; s != nil {
		check(ObjectiveSpeed, &s.Objective)
		if s.Min < 0 || s.Min > 10 {
			p.Add(path+".speed.min", "must be a share of the plan between 0%% and 1000%%, not %s", s.Min)
		}
	}
}

// requireObjectives reports the keys a target's merged objectives lack,
// at the path where the objective is set (pathOf).
func requireObjectives(p *Problems, o Objectives, pathOf func(name string) string, pr *Probe) {
	for _, n := range o.Each() {
		if n.Target == 0 {
			p.Add(pathOf(n.Name)+".target", "is required (a percentage such as 99.9%%)")
		}
	}
	if o.Latency != nil && o.Latency.Max == 0 {
		p.Add(pathOf(ObjectiveLatency)+".max", "is required (the highest median latency of a good 5-minute window, e.g. 40ms)")
	}
	if o.Loss != nil && o.Loss.Max == 0 {
		p.Add(pathOf(ObjectiveLoss)+".max", "is required (the highest loss of a good 5-minute window, e.g. 1%%; 0%% allows none: write 0.001%%)")
	}
	if o.Speed != nil && o.Speed.Min == 0 {
		p.Add(pathOf(ObjectiveSpeed)+".min", "is required (the least download of a good test as a share of the plan, e.g. 80%%)")
	}
}

func windowList() string {
	var s []string
	for _, w := range ObjectiveWindows {
		s = append(s, ObjectiveWindow(w).String())
	}
	return strings.Join(s, ", ")
}

// validateObjectives checks a probe's objectives and its targets'.
func (pr *Probe) validateObjectives(p *Problems, path string, types Types) {
	checkObjectives(p, path+".objectives", pr.Objectives, pr, types)
	reported := map[string]bool{}
	for i, t := range pr.Targets {
		tp := fmt.Sprintf("%s.targets[%d].objectives", path, i)
		checkObjectives(p, tp, t.Objectives, pr, types)
		own := map[string]bool{}
		for _, o := range t.Objectives.Each() {
			own[o.Name] = true
		}
		var missing Problems
		requireObjectives(&missing, pr.TargetObjectives(i), func(name string) string {
			if own[name] {
				return tp + "." + name
			}
			return path + ".objectives." + name
		}, pr)
		for _, m := range missing {
			if !reported[m] {
				reported[m] = true
				*p = append(*p, m)
			}
		}
	}
}

// Percentage is a share written as a percentage (99.9%), kept as a ratio
// (0.999). The % sign is required: "99.9" and "0.999" would both be read.
type Percentage float64

// ParsePercentage parses "99.9%" into 0.999.
func ParsePercentage(s string) (Percentage, error) {
	num, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if !ok || err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a percentage (a number followed by %%: 99.9%%)", s)
	}
	return Percentage(math.Round(v*1e10) / 1e12), nil // 99.9/100 is 0.9990000000000001
}

// UnmarshalYAML accepts a number followed by %.
func (v *Percentage) UnmarshalYAML(n *yaml.Node) error {
	p, err := ParsePercentage(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %q is not a percentage (a number followed by %%: 99.9%%)", n.Line, n.Value)
	}
	*v = p
	return nil
}

// MarshalYAML writes the percentage as it is read.
func (v Percentage) MarshalYAML() (any, error) { return v.String(), nil }

func (v Percentage) String() string {
	return strconv.FormatFloat(math.Round(float64(v)*100*1e9)/1e9, 'f', -1, 64) + "%"
}

// ObjectiveWindow is an objective's rolling window: a Go duration or a number of
// days or weeks (30d, 4w).
type ObjectiveWindow time.Duration

// UnmarshalYAML accepts 30d, 4w or a Go duration (720h).
func (w *ObjectiveWindow) UnmarshalYAML(n *yaml.Node) error {
	if d, err := ParseObjectiveWindow(n.Value); err == nil && n.Kind == yaml.ScalarNode {
		*w = d
		return nil
	}
	return fmt.Errorf("line %d: %q is not a window (30d, 4w, 720h)", n.Line, n.Value)
}

// ParseObjectiveWindow parses a window as every duration of the file is parsed
// (ParseDuration: 30d, 4w, 720h).
func ParseObjectiveWindow(s string) (ObjectiveWindow, error) {
	d, err := ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a window (30d, 4w, 720h)", s)
	}
	return ObjectiveWindow(d), nil
}

// MarshalYAML writes the window as it is read.
func (w ObjectiveWindow) MarshalYAML() (any, error) { return w.String(), nil }

// String writes whole days as 30d, anything else as a Go duration.
func (w ObjectiveWindow) String() string {
	d := time.Duration(w)
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}
