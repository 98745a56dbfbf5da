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

// metrics are the ping probe's instruments. The RTT histogram accumulates
// across runs; the packet counters and the last-run figures are observed
// from maps holding exactly one entry per configured target, so a target
// that starts failing keeps its series (loss 1) instead of silently
// vanishing, and a target removed by a reload loses its series.
type metrics struct {
	rtt metric.Float64Histogram

	last    probe.Last[summary]
	packets probe.Last[packetCounts]
}

// packetCounts are a target's packet totals since the agent started. They
// are observed rather than added to synchronous counters, so that sent and
// received, read from one snapshot, never show more replies than requests
// (with counters, that held only through the SDK's reading its instruments
// in creation order), and a run's bookkeeping makes one map update instead
// of three SDK adds (4.6–4.9 µs a run instead of 4.9–5.5 in
// BenchmarkRecordRun; no change the agent's CPU figure could show).
type packetCounts struct{ sent, received, duplicates int64 }

func newMetrics(m metric.Meter) (*metrics, error) {
	in := probe.Instruments{Meter: m}
	ms := &metrics{
		rtt: in.Histogram("netpulse.ping.rtt", "s", "Round-trip time of each ICMP echo reply.", rttBuckets),
	}
	sent := in.ObservableCounter("netpulse.ping.packets.sent", "{packet}", "ICMP echo requests sent.")
	received := in.ObservableCounter("netpulse.ping.packets.received", "{packet}", "ICMP echo replies received (duplicates excluded).")
	duplicates := in.ObservableCounter("netpulse.ping.packets.duplicate", "{packet}", "Duplicate ICMP echo replies received.")
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
		for t, c := range ms.packets.All() {
			attrs := metric.WithAttributeSet(t.Attrs)
			o.ObserveInt64(sent, c.sent, attrs)
			o.ObserveInt64(received, c.received, attrs)
			o.ObserveInt64(duplicates, c.duplicates, attrs)
		}
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
	}, sent, received, duplicates, rttMin, rttAvg, rttMax, rttStddev, jitter, loss)
	if err != nil {
		return nil, err
	}
	return ms, nil
}

// count adds a run's packets to t's totals.
func (ms *metrics) count(t *probe.Target, s summary) {
	ms.packets.Update(t, func(c packetCounts, _ bool) packetCounts {
		c.sent += int64(s.sent)
		c.received += int64(s.received)
		c.duplicates += int64(s.duplicates)
		return c
	})
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
