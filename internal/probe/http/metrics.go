package http

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/netpulse/netpulse/internal/probe"
)

// KeyPhase is the phase label of netpulse.http.duration: resolve,
// connect, tls, processing, transfer (fixed values).
const KeyPhase = attribute.Key("phase")

// metrics are the HTTP probe's instruments: the last run's figures as
// observable gauges fed from one entry per target (cardinality bounded by
// the configuration; never a URL or a status text as a label). A phase the
// last run did not reach is absent; the status, size, redirects and
// version are absent while the last run got no response.
type metrics struct {
	last probe.Last[result]
}

func newMetrics(m metric.Meter) (*metrics, error) {
	in := probe.Instruments{Meter: m}
	duration := in.Gauge("netpulse.http.duration", "s",
		"Duration of each phase of the last HTTP probe run, summed over its redirects (phase: resolve, connect, tls, processing, transfer).")
	status := in.Gauge("netpulse.http.status_code", "", "Status code of the last run's final response.")
	size := in.Gauge("netpulse.http.content_length", "By", "Bytes of the last run's final response body, as received.")
	redirects := in.Gauge("netpulse.http.redirects", "", "Redirects the last run followed.")
	version := in.Gauge("netpulse.http.version", "", "HTTP version of the last run's final response (1.1, 2).")
	if in.Err != nil {
		return nil, in.Err
	}
	ms := &metrics{}
	_, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for t, r := range ms.last.All() {
			attrs := metric.WithAttributeSet(t.Attrs)
			for _, ph := range phases {
				if d, ok := r.phases[ph]; ok {
					o.ObserveFloat64(duration, d.Seconds(), attrs, metric.WithAttributes(KeyPhase.String(ph)))
				}
			}
			if r.status == 0 {
				continue
			}
			o.ObserveFloat64(status, float64(r.status), attrs)
			o.ObserveFloat64(size, float64(r.bytes), attrs)
			o.ObserveFloat64(redirects, float64(r.redirects), attrs)
			o.ObserveFloat64(version, r.version, attrs)
		}
		return nil
	}, duration, status, size, redirects, version)
	if err != nil {
		return nil, err
	}
	return ms, nil
}

func (ms *metrics) remember(t *probe.Target, r result) {
	ms.last.Set(t, r)
}
