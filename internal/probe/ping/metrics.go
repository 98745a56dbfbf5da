package ping

import (
	"context"

	"go.opentelemetry.io/otel/metric"

	"github.com/netpulse/netpulse/internal/probe"
)

// rttBuckets (seconds) resolve loopback and LAN round trips (50 µs to
// 1 ms in five buckets: kernel timestamps make them meaningful) and still
// separate the 500–700 ms of a geostationary satellite link, up to 10 s.
var rttBuckets = []float64{
	0.00005, 0.0001, 0.0002, 0.0003, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05,
	0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10,
}

// metrics are the ping probe's instruments. Counters and the RTT histogram
// accumulate across runs; the last-run figures are observable gauges fed from
// a map holding exactly one entry per configured target, so a target that
// starts failing keeps its series (loss 1) instead of silently vanishing.
type metrics struct {
	rtt                        metric.Float64Histogram
	sent, received, duplicates metric.Int64Counter

	last probe.Last[summary]
}

func newMetrics(m metric.Meter) (*metrics, error) {
	in := probe.Instruments{Meter: m}
	ms := &metrics{
		rtt: in.Histogram("netpulse.ping.rtt", "s", "Round-trip time of each ICMP echo reply.", rttBuckets),
	}
	// received is created before sent: the SDK reads a scope's instruments
	// in creation order, and count adds sent first, so a scrape in the
	// middle of a run's recording reads received no later than sent and
	// never shows more replies than requests.
	ms.received = in.Counter("netpulse.ping.packets.received", "{packet}", "ICMP echo replies received (duplicates excluded).")
	ms.sent = in.Counter("netpulse.ping.packets.sent", "{packet}", "ICMP echo requests sent.")
	ms.duplicates = in.Counter("netpulse.ping.packets.duplicate", "{packet}", "Duplicate ICMP echo replies received.")
	rttMin := in.Gauge("netpulse.ping.rtt.min", "s", "Smallest RTT of the last run.")
	rttAvg := in.Gauge("netpulse.ping.rtt.avg", "s", "Mean RTT of the last run.")
	rttMax := in.Gauge("netpulse.ping.rtt.max", "s", "Largest RTT of the last run.")
	rttStddev := in.Gauge("netpulse.ping.rtt.stddev", "s", "Population standard deviation of the last run's RTTs.")
	jitter := in.Gauge("netpulse.ping.jitter", "s", "Mean absolute difference of consecutive RTTs in the last run.")
	loss := in.Gauge("netpulse.ping.loss", "1", "Share of the last run's packets that got no reply (0-1).")
	if in.Err != nil {
		return nil, in.Err
	}
	_, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for t, s := range ms.last.All() {
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
	attrs := t.AddOptions()
	ms.sent.Add(ctx, int64(s.sent), attrs...)
	ms.received.Add(ctx, int64(s.received), attrs...)
	ms.duplicates.Add(ctx, int64(s.duplicates), attrs...)
}

// remember keeps the last run's figures. A run that sent nothing (the name
// did not resolve, the socket was refused) measured no loss and no RTT: the
// target's last-run gauges are absent until a run sends again, rather than
// reading 100 % loss for a failure that is not packet loss.
func (ms *metrics) remember(t *probe.Target, s summary) {
	if s.sent == 0 {
		ms.last.Delete(t)
		return
	}
	ms.last.Set(t, s)
}
