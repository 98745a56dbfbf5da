package path

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/netpulse/netpulse/internal/probe"
)

// KeyHop is the per-hop series' label: the TTL, bounded by max_hops (never
// the hop's address, which is unbounded and changes with the route).
const KeyHop = attribute.Key("hop")

// metrics are the path probe's instruments: counters of echoes and route
// changes, and the last run's path as observable gauges fed from one
// snapshot per target (a hop beyond the current path has no series).
type metrics struct {
	sent, changes metric.Int64Counter

	mu   sync.Mutex
	last map[*probe.Target]Snapshot
	// hopAttrs[t][ttl-1]: the target's attributes plus hop, built once.
	hopAttrs map[*probe.Target][]attribute.Set
}

func newMetrics(m metric.Meter) (*metrics, error) {
	in := probe.Instruments{Meter: m}
	ms := &metrics{last: map[*probe.Target]Snapshot{}, hopAttrs: map[*probe.Target][]attribute.Set{}}
	ms.sent = in.Counter("netpulse.path.packets.sent", "{packet}", "ICMP echo requests sent by path probes.")
	ms.changes = in.Counter("netpulse.path.route.changes", "{change}",
		"Runs whose route differed from the previous run's: reached or not, length, or a hop answering from other addresses.")
	hops := in.Gauge("netpulse.path.hops", "{hop}", "Hops of the last run's path (to the destination, or to the first silent hop).")
	hash := in.Gauge("netpulse.path.route.hash", "", "32-bit hash of the last run's hop list: changes when the route does.")
	reached := in.Gauge("netpulse.path.reached", "", "Whether the last run reached the destination (1) or not (0).")
	lossFrom := in.Gauge("netpulse.path.loss_from_hop", "{hop}", "Hop from which loss continues to the end of the path in the last run; 0: none.")
	hopLoss := in.Gauge("netpulse.path.hop.loss", "1", "Share of the hop's echoes without an answer in the last run (0-1).")
	hopMin := in.Gauge("netpulse.path.hop.rtt.min", "s", "Smallest round trip to the hop in the last run.")
	hopAvg := in.Gauge("netpulse.path.hop.rtt.avg", "s", "Mean round trip to the hop in the last run.")
	hopMax := in.Gauge("netpulse.path.hop.rtt.max", "s", "Largest round trip to the hop in the last run.")
	rateLimited := in.Gauge("netpulse.path.hop.rate_limited", "",
		"1 when the hop lost echoes that hops beyond it answered (ICMP rate limiting, not path loss).")
	if in.Err != nil {
		return nil, in.Err
	}
	_, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		ms.mu.Lock()
		defer ms.mu.Unlock()
		for t, s := range ms.last {
			if t.Retired() { // removed or changed by a reload
				delete(ms.last, t)
				delete(ms.hopAttrs, t)
				continue
			}
			attrs := metric.WithAttributeSet(t.Attrs)
			o.ObserveFloat64(hops, float64(len(s.Hops)), attrs)
			o.ObserveFloat64(hash, float64(s.Hash()), attrs)
			o.ObserveFloat64(reached, b2f(s.Reached), attrs)
			o.ObserveFloat64(lossFrom, float64(s.LossFrom), attrs)
			for _, h := range s.Hops {
				ha := metric.WithAttributeSet(ms.hopAttrs[t][h.TTL-1])
				o.ObserveFloat64(hopLoss, h.Loss(), ha)
				o.ObserveFloat64(rateLimited, b2f(h.RateLimited), ha)
				if h.Received > 0 {
					o.ObserveFloat64(hopMin, h.RTTMin.Seconds(), ha)
					o.ObserveFloat64(hopAvg, h.RTTAvg.Seconds(), ha)
					o.ObserveFloat64(hopMax, h.RTTMax.Seconds(), ha)
				}
			}
		}
		return nil
	}, hops, hash, reached, lossFrom, hopLoss, hopMin, hopAvg, hopMax, rateLimited)
	if err != nil {
		return nil, err
	}
	return ms, nil
}

// record counts the run's echoes, keeps its snapshot for the gauges and
// tells whether the route changed since the target's previous run.
func (ms *metrics) record(ctx context.Context, t *probe.Target, s Snapshot, sent int) bool {
	attrs := metric.WithAttributeSet(t.Attrs)
	ms.sent.Add(ctx, int64(sent), attrs)
	ms.mu.Lock()
	prev, seen := ms.last[t]
	if len(ms.hopAttrs[t]) < len(s.Hops) {
		ms.hopAttrs[t] = hopSets(t, len(s.Hops))
	}
	ms.last[t] = s
	ms.mu.Unlock()
	changed := seen && Changed(prev, s)
	// Added even when 0, so the series exists from the first run.
	ms.changes.Add(ctx, int64(b2f(changed)), attrs)
	return changed
}

func hopSets(t *probe.Target, n int) []attribute.Set {
	base := t.Attrs.ToSlice()
	sets := make([]attribute.Set, n)
	for i := range sets {
		sets[i] = attribute.NewSet(append(base[:len(base):len(base)], KeyHop.Int(i+1))...)
	}
	return sets
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
