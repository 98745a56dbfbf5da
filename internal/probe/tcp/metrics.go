package tcp

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/netpulse/netpulse/internal/probe"
)

// KeyPhase is the phase label of netpulse.tcp.duration: resolve, connect,
// tls, exchange (fixed values: cardinality is bounded).
const KeyPhase = attribute.Key("phase")

// phases in the order of a run.
var phases = []string{PhaseResolve, PhaseConnect, PhaseTLS, PhaseExchange}

// metrics are the TCP probe's instruments: the last run's phase durations
// as an observable gauge fed from one entry per target. A phase the last
// run did not complete is absent (a refused connection has no connect
// time); the run's outcome and error_type are in netpulse_probe_runs_total.
type metrics struct {
	last probe.Last[result]
}

func newMetrics(m metric.Meter) (*metrics, error) {
	in := probe.Instruments{Meter: m}
	duration := in.Gauge("netpulse.tcp.duration", "s",
		"Duration of each phase of the last TCP probe run (phase: resolve, connect, tls, exchange).")
	if in.Err != nil {
		return nil, in.Err
	}
	ms := &metrics{}
	_, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for t, r := range ms.last.All() {
			for _, ph := range phases {
				if d, ok := r.phases[ph]; ok {
					o.ObserveFloat64(duration, d.Seconds(), metric.WithAttributeSet(t.Attrs),
						metric.WithAttributes(KeyPhase.String(ph)))
				}
			}
		}
		return nil
	}, duration)
	if err != nil {
		return nil, err
	}
	return ms, nil
}

func (ms *metrics) remember(t *probe.Target, r result) {
	ms.last.Set(t, r)
}
