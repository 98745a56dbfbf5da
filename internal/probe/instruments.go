package probe

import "go.opentelemetry.io/otel/metric"

// Instruments creates a prober's instruments on one meter and keeps the
// first error, so a prober declares its instruments in a row and checks Err
// once instead of after every call.
type Instruments struct {
	Meter metric.Meter
	Err   error
}

// Gauge creates a float64 observable gauge (fed by a callback).
func (in *Instruments) Gauge(name, unit, desc string) metric.Float64ObservableGauge {
	if in.Err != nil {
		return nil
	}
	g, err := in.Meter.Float64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
	in.Err = err
	return g
}

// Counter creates an int64 counter.
func (in *Instruments) Counter(name, unit, desc string) metric.Int64Counter {
	if in.Err != nil {
		return nil
	}
	c, err := in.Meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	in.Err = err
	return c
}

// ObservableCounter creates an int64 observable counter (fed by a
// callback with each series' total).
func (in *Instruments) ObservableCounter(name, unit, desc string) metric.Int64ObservableCounter {
	if in.Err != nil {
		return nil
	}
	c, err := in.Meter.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	in.Err = err
	return c
}

// Histogram creates a float64 histogram with explicit bucket boundaries.
func (in *Instruments) Histogram(name, unit, desc string, buckets []float64) metric.Float64Histogram {
	if in.Err != nil {
		return nil
	}
	h, err := in.Meter.Float64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc),
		metric.WithExplicitBucketBoundaries(buckets...))
	in.Err = err
	return h
}
