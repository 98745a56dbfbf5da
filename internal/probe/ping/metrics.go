package ping

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/metric"

	"github.com/netpulse/netpulse/internal/probe"
)

// rttBuckets (seconds) resolve sub-millisecond LAN round trips and still
// separate the 500–700 ms of a geostationary satellite link.
var rttBuckets = []float64{
	0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05,
	0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5,
}

// metrics are the ping probe's instruments. Counters and the RTT histogram
// accumulate across runs; the last-run figures are observable gauges fed from
// a map holding exactly one entry per configured target, so a target that
// starts failing keeps its series (loss 1) instead of silently vanishing.
type metrics struct {
	rtt                        metric.Float64Histogram
	sent, received, duplicates metric.Int64Counter

	mu   sync.Mutex
	last map[*probe.Target]summary
}

func newMetrics(m metric.Meter) (*metrics, error) {
	ms := &metrics{last: map[*probe.Target]summary{}}
	var err error
	if ms.rtt, err = m.Float64Histogram("netpulse.ping.rtt", metric.WithUnit("s"),
		metric.WithDescription("Round-trip time of each ICMP echo reply."),
		metric.WithExplicitBucketBoundaries(rttBuckets...)); err != nil {
		return nil, err
	}
	counter := func(name, desc string) metric.Int64Counter {
		if err != nil {
			return nil
		}
		var c metric.Int64Counter
		c, err = m.Int64Counter(name, metric.WithUnit("{packet}"), metric.WithDescription(desc))
		return c
	}
	ms.sent = counter("netpulse.ping.packets.sent", "ICMP echo requests sent.")
	ms.received = counter("netpulse.ping.packets.received", "ICMP echo replies received (duplicates excluded).")
	ms.duplicates = counter("netpulse.ping.packets.duplicate", "Duplicate ICMP echo replies received.")
	if err != nil {
		return nil, err
	}

	gauge := func(name, unit, desc string) metric.Float64ObservableGauge {
		if err != nil {
			return nil
		}
		var g metric.Float64ObservableGauge
		g, err = m.Float64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		return g
	}
	rttMin := gauge("netpulse.ping.rtt.min", "s", "Smallest RTT of the last run.")
	rttAvg := gauge("netpulse.ping.rtt.avg", "s", "Mean RTT of the last run.")
	rttMax := gauge("netpulse.ping.rtt.max", "s", "Largest RTT of the last run.")
	rttStddev := gauge("netpulse.ping.rtt.stddev", "s", "Population standard deviation of the last run's RTTs.")
	jitter := gauge("netpulse.ping.jitter", "s", "Mean absolute difference of consecutive RTTs in the last run.")
	loss := gauge("netpulse.ping.loss", "1", "Share of the last run's packets that got no reply (0-1).")
	if err != nil {
		return nil, err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		ms.mu.Lock()
		defer ms.mu.Unlock()
		for t, s := range ms.last {
			attrs := metric.WithAttributeSet(t.Attrs)
			o.ObserveFloat64(loss, s.loss(), attrs)
			if s.received == 0 {
				continue // no RTT to report; loss says why
			}
			o.ObserveFloat64(rttMin, s.min.Seconds(), attrs)
			o.ObserveFloat64(rttAvg, s.avg.Seconds(), attrs)
			o.ObserveFloat64(rttMax, s.max.Seconds(), attrs)
			o.ObserveFloat64(rttStddev, s.stddev.Seconds(), attrs)
			o.ObserveFloat64(jitter, s.jitter.Seconds(), attrs)
		}
		return nil
	}, rttMin, rttAvg, rttMax, rttStddev, jitter, loss)
	if err != nil {
		return nil, err
	}
	return ms, nil
}

func (ms *metrics) count(ctx context.Context, t *probe.Target, s summary) {
	attrs := metric.WithAttributeSet(t.Attrs)
	ms.sent.Add(ctx, int64(s.sent), attrs)
	ms.received.Add(ctx, int64(s.received), attrs)
	ms.duplicates.Add(ctx, int64(s.duplicates), attrs)
}

func (ms *metrics) remember(t *probe.Target, s summary) {
	ms.mu.Lock()
	ms.last[t] = s
	ms.mu.Unlock()
}
