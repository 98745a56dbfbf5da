package probe

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// measureOpts are the measurement options of one target's series, built
// once with the target. metric.WithAttributeSet boxes the set into an
// option, and the variadic slice a call passes escapes into the SDK: built
// per measurement, that was two allocations each, a dozen per run.
type measureOpts struct {
	// attrs is the set the options were built for: a copy of the target
	// given other Attrs (SetAttrs) has options of its own.
	attrs  attribute.Distinct
	record []metric.RecordOption
	// success adds to the target's netpulse_probe_runs_total series of
	// successful runs, the one nearly every run adds to.
	success []metric.AddOption
	// spanName is the run span's name (type and probe).
	spanName string
}

func newMeasureOpts(t *Target) *measureOpts {
	opt := metric.WithAttributeSet(t.Attrs)
	return &measureOpts{
		attrs:    t.Attrs.Equivalent(),
		record:   []metric.RecordOption{opt},
		success:  []metric.AddOption{metric.WithAttributeSet(runAttrs(t, OutcomeSuccess, ""))},
		spanName: t.Type + " " + t.Probe,
	}
}

// opts returns t's options, or nil when t has none for its Attrs (a
// Target built by hand, or whose Attrs were replaced).
func (t *Target) opts() *measureOpts {
	if m := t.measure; m != nil && m.attrs == t.Attrs.Equivalent() {
		return m
	}
	return nil
}

// RecordOptions returns the options that record a measurement in t's
// series: pass them as opts... to a histogram's Record. Callers must not
// modify them.
func (t *Target) RecordOptions() []metric.RecordOption {
	if m := t.opts(); m != nil {
		return m.record
	}
	return []metric.RecordOption{metric.WithAttributeSet(t.Attrs)}
}

// SetAttrs gives t, a copy of a target that a type records under other
// attributes (ping's per-family series), the set attrs and the options
// that go with it.
func (t *Target) SetAttrs(attrs attribute.Set) {
	t.Attrs = attrs
	t.measure = newMeasureOpts(t)
}

// spanName is the name of t's run spans.
func (t *Target) spanName() string {
	if m := t.measure; m != nil {
		return m.spanName
	}
	return t.Type + " " + t.Probe
}

// runAttrs is the attribute set of t's runs with outcome and errType (none
// when empty).
func runAttrs(t *Target, outcome, errType string) attribute.Set {
	kvs := append(t.Attrs.ToSlice(), KeyOutcome.String(outcome))
	if errType != "" {
		kvs = append(kvs, KeyErrorType.String(errType))
	}
	return attribute.NewSet(kvs...)
}
