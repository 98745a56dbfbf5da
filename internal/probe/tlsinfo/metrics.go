package tlsinfo

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/netpulse/netpulse/internal/probe"
)

// ScopeName names the meter of the netpulse.tls.* instruments: one family
// for every type that handshakes, so one alert covers them all.
const ScopeName = "github.com/netpulse/netpulse/internal/probe/tlsinfo"

// Metrics are the netpulse.tls.* gauges of one prober's targets: the last
// handshake's facts, absent for a target whose last run did not complete
// one (there is no certificate to report; the run's error_type says why).
// Several probers share the instruments (the SDK returns the same ones)
// and each registers a callback for its own targets.
type Metrics struct {
	mu   sync.Mutex
	last map[*probe.Target]Facts
}

// NewMetrics creates (or finds) the instruments on mp.
func NewMetrics(mp metric.MeterProvider) (*Metrics, error) {
	m := mp.Meter(ScopeName)
	in := probe.Instruments{Meter: m}
	expiry := in.Gauge("netpulse.tls.cert_expiry_timestamp", "s",
		"Unix time at which the earliest-expiring certificate the server sent in the last handshake expires.")
	// No unit: "1" would add _ratio to the Prometheus names.
	verified := in.Gauge("netpulse.tls.verified", "",
		"1 if the last handshake's certificate chain verified for the server name, else 0.")
	info := in.Gauge("netpulse.tls.info", "",
		"Always 1; the TLS version and cipher suite of the last handshake as labels.")
	if in.Err != nil {
		return nil, in.Err
	}
	ms := &Metrics{last: map[*probe.Target]Facts{}}
	_, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		ms.mu.Lock()
		defer ms.mu.Unlock()
		for t, f := range ms.last {
			if t.Retired() { // removed or changed by a reload
				delete(ms.last, t)
				continue
			}
			attrs := metric.WithAttributeSet(t.Attrs)
			if !f.Expiry.IsZero() {
				o.ObserveFloat64(expiry, float64(f.Expiry.Unix()), attrs)
			}
			o.ObserveFloat64(verified, boolFloat(f.Verified), attrs)
			o.ObserveFloat64(info, 1, attrs, metric.WithAttributes(KeyProtocolVersion.String(f.Version),
				attribute.String("tls.cipher", f.Cipher)))
		}
		return nil
	}, expiry, verified, info)
	if err != nil {
		return nil, err
	}
	return ms, nil
}

// Remember keeps t's last handshake; nil forgets it (the run did not
// complete one).
func (ms *Metrics) Remember(t *probe.Target, f *Facts) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if f == nil {
		delete(ms.last, t)
		return
	}
	ms.last[t] = *f
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Values adds the facts to a run's values.
func (f Facts) Values(v probe.Values) {
	if !f.Expiry.IsZero() {
		v["tls_cert_expiry_timestamp_seconds"] = float64(f.Expiry.Unix())
	}
	v["tls_verified"] = boolFloat(f.Verified)
}
