package agent

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// ReloadStatus is the outcome of the last configuration load, kept across
// the agents that reloads replace (each new agent exports the same one):
// netpulse_config_last_reload_successful and
// netpulse_config_last_reload_success_timestamp_seconds, as Prometheus and
// Alertmanager name them, so "a reload failed" can be alerted on.
type ReloadStatus struct {
	mu          sync.Mutex
	ok          bool
	lastSuccess time.Time
	// Request, when set, asks for a reload (POST /-/reload); it must not block.
	Request func()
}

// Record notes a load's outcome.
func (s *ReloadStatus) Record(ok bool, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ok = ok
	if ok {
		s.lastSuccess = at
	}
}

func (s *ReloadStatus) register(mp metric.MeterProvider) error {
	m := mp.Meter("github.com/netpulse/netpulse/internal/agent")
	ok, err := m.Int64ObservableGauge("netpulse.config.last_reload_successful",
		metric.WithDescription("Whether the last configuration load (start, SIGHUP or POST /-/reload) succeeded."))
	if err != nil {
		return err
	}
	at, err := m.Float64ObservableGauge("netpulse.config.last_reload_success.timestamp", metric.WithUnit("s"),
		metric.WithDescription("Unix time of the last successful configuration load."))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		v := int64(0)
		if s.ok {
			v = 1
		}
		o.ObserveInt64(ok, v)
		if !s.lastSuccess.IsZero() {
			o.ObserveFloat64(at, float64(s.lastSuccess.UnixNano())/1e9)
		}
		return nil
	}, ok, at)
	return err
}
