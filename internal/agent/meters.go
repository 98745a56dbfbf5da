package agent

import (
	"context"
	"errors"
	"sync"

	"go.opentelemetry.io/otel/metric"
)

// scopedMeters is the meter provider of one part of the agent that a
// reload may replace (a prober, the fault judge): instruments are the
// agent's own (the SDK returns the same instrument for the same name, so a
// replacement's counters continue the series), but every callback
// registered through it, including those given as options when an
// observable instrument is created, can be unregistered at once by Close.
// Without it a replaced prober would go on reporting its gauges.
type scopedMeters struct {
	metric.MeterProvider

	mu     sync.Mutex
	regs   []metric.Registration
	closed bool
}

func newScopedMeters(mp metric.MeterProvider) *scopedMeters { return &scopedMeters{MeterProvider: mp} }

// Meter returns the named meter, whose callbacks Close unregisters.
func (s *scopedMeters) Meter(name string, opts ...metric.MeterOption) metric.Meter {
	return &scopedMeter{Meter: s.MeterProvider.Meter(name, opts...), scope: s}
}

// Close unregisters every callback registered so far, and any registered
// later at once.
func (s *scopedMeters) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var errs []error
	for _, r := range s.regs {
		errs = append(errs, r.Unregister())
	}
	s.regs = nil
	return errors.Join(errs...)
}

func (s *scopedMeters) track(r metric.Registration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return r.Unregister()
	}
	s.regs = append(s.regs, r)
	return nil
}

type scopedMeter struct {
	metric.Meter
	scope *scopedMeters
}

func (m *scopedMeter) RegisterCallback(f metric.Callback, insts ...metric.Observable) (metric.Registration, error) {
	r, err := m.Meter.RegisterCallback(f, insts...)
	if err != nil {
		return nil, err
	}
	return r, m.scope.track(r)
}

// The observable instruments are created without their callbacks, which
// are registered through RegisterCallback instead, so Close reaches them.

func (m *scopedMeter) Int64ObservableCounter(name string, opts ...metric.Int64ObservableCounterOption) (metric.Int64ObservableCounter, error) {
	c := metric.NewInt64ObservableCounterConfig(opts...)
	inst, err := m.Meter.Int64ObservableCounter(name, metric.WithDescription(c.Description()), metric.WithUnit(c.Unit()))
	return inst, m.int64Callbacks(inst, c.Callbacks(), err)
}

func (m *scopedMeter) Int64ObservableUpDownCounter(name string, opts ...metric.Int64ObservableUpDownCounterOption) (metric.Int64ObservableUpDownCounter, error) {
	c := metric.NewInt64ObservableUpDownCounterConfig(opts...)
	inst, err := m.Meter.Int64ObservableUpDownCounter(name, metric.WithDescription(c.Description()), metric.WithUnit(c.Unit()))
	return inst, m.int64Callbacks(inst, c.Callbacks(), err)
}

func (m *scopedMeter) Int64ObservableGauge(name string, opts ...metric.Int64ObservableGaugeOption) (metric.Int64ObservableGauge, error) {
	c := metric.NewInt64ObservableGaugeConfig(opts...)
	inst, err := m.Meter.Int64ObservableGauge(name, metric.WithDescription(c.Description()), metric.WithUnit(c.Unit()))
	return inst, m.int64Callbacks(inst, c.Callbacks(), err)
}

func (m *scopedMeter) Float64ObservableCounter(name string, opts ...metric.Float64ObservableCounterOption) (metric.Float64ObservableCounter, error) {
	c := metric.NewFloat64ObservableCounterConfig(opts...)
	inst, err := m.Meter.Float64ObservableCounter(name, metric.WithDescription(c.Description()), metric.WithUnit(c.Unit()))
	return inst, m.float64Callbacks(inst, c.Callbacks(), err)
}

func (m *scopedMeter) Float64ObservableUpDownCounter(name string, opts ...metric.Float64ObservableUpDownCounterOption) (metric.Float64ObservableUpDownCounter, error) {
	c := metric.NewFloat64ObservableUpDownCounterConfig(opts...)
	inst, err := m.Meter.Float64ObservableUpDownCounter(name, metric.WithDescription(c.Description()), metric.WithUnit(c.Unit()))
	return inst, m.float64Callbacks(inst, c.Callbacks(), err)
}

func (m *scopedMeter) Float64ObservableGauge(name string, opts ...metric.Float64ObservableGaugeOption) (metric.Float64ObservableGauge, error) {
	c := metric.NewFloat64ObservableGaugeConfig(opts...)
	inst, err := m.Meter.Float64ObservableGauge(name, metric.WithDescription(c.Description()), metric.WithUnit(c.Unit()))
	return inst, m.float64Callbacks(inst, c.Callbacks(), err)
}

func (m *scopedMeter) int64Callbacks(inst metric.Int64Observable, cbs []metric.Int64Callback, err error) error {
	for _, cb := range cbs {
		if err != nil {
			return err
		}
		_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
			return cb(ctx, int64Observer{o: o, inst: inst})
		}, inst)
	}
	return err
}

func (m *scopedMeter) float64Callbacks(inst metric.Float64Observable, cbs []metric.Float64Callback, err error) error {
	for _, cb := range cbs {
		if err != nil {
			return err
		}
		_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
			return cb(ctx, float64Observer{o: o, inst: inst})
		}, inst)
	}
	return err
}

// int64Observer observes one instrument through a multi-instrument
// callback's Observer (the interface is embedded only for its marker
// method).
type int64Observer struct {
	metric.Int64Observer
	o    metric.Observer
	inst metric.Int64Observable
}

func (x int64Observer) Observe(v int64, opts ...metric.ObserveOption) {
	x.o.ObserveInt64(x.inst, v, opts...)
}

type float64Observer struct {
	metric.Float64Observer
	o    metric.Observer
	inst metric.Float64Observable
}

func (x float64Observer) Observe(v float64, opts ...metric.ObserveOption) {
	x.o.ObserveFloat64(x.inst, v, opts...)
}
