package ping

import (
	"context"
	"errors"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe"
)

// IPBoth is ip_version: both (ping only): every run pings the target over
// IPv4 and IPv6 at once, in the same slot, and its figures per family
// carry network.type (ipv4, ipv6), so that one family failing while the
// other works shows.
const IPBoth = "both"

// KeyNetworkType labels a family's series of an ip_version: both target.
const KeyNetworkType = attribute.Key("network.type")

var families = [2]struct {
	version, name string
}{{network.IPv4, "ipv4"}, {network.IPv6, "ipv6"}}

// familyTargets are the targets a both target's per-family figures are
// recorded under: the target with network.type added (built once).
type familyTargets struct {
	mu sync.Mutex
	by map[*probe.Target][2]*probe.Target
}

func (f *familyTargets) of(t *probe.Target) [2]*probe.Target {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ft, ok := f.by[t]; ok {
		return ft
	}
	var ft [2]*probe.Target
	for i, fam := range families {
		c := *t
		c.SetAttrs(attribute.NewSet(append(t.Attrs.ToSlice(), KeyNetworkType.String(fam.name))...))
		ft[i] = &c
	}
	if f.by == nil {
		f.by = map[*probe.Target][2]*probe.Target{}
	}
	f.by[t] = ft
	return ft
}

// probeBoth pings t over both families concurrently. The run succeeds
// when either family got a reply (one failing is logged, and its values
// say so); its headline values are IPv4's, or IPv6's when IPv4 got no
// reply, and each family's loss, mean round trip and packets are in
// ipv4_… and ipv6_… values.
func (p *Prober) probeBoth(ctx context.Context, t *probe.Target) (probe.Values, error) {
	ft := p.families.of(t)
	var (
		sums [2]summary
		errs [2]error
		wg   sync.WaitGroup
	)
	for i, fam := range families {
		wg.Go(func() {
			ctx, span := p.tracer.Start(ctx, fam.name, trace.WithAttributes(KeyNetworkType.String(fam.name)))
			defer span.End()
			settings := p.cfg.Settings
			settings.IPVersion = fam.version
			addrs, err := p.net.Resolve(ctx, t.Host, settings)
			if err == nil {
				sums[i], err = p.burst(ctx, ft[i], addrs[0])
				if p.trouble != nil && sums[i].sent > 0 {
					if src, serr := p.cfg.SourceAddr(addrs[0]); serr == nil {
						p.trouble.check(ctx, t, addrs[0], src, sums[i])
					}
				}
			}
			errs[i] = err
			p.metrics.count(ft[i], sums[i])
			p.metrics.remember(ft[i], sums[i])
			span.SetAttributes(attribute.Int("ping.packets.sent", sums[i].sent), attribute.Int("ping.packets.received", sums[i].received))
		})
	}
	wg.Wait()
	var echoes []echoRecord
	for i, fam := range families {
		for _, e := range sums[i].echoes {
			e.NetworkType = fam.name
			echoes = append(echoes, e)
		}
	}
	p.keepEchoes(ctx, t, echoes, sums[0].late+sums[1].late)
	head := 0
	if sums[0].received == 0 && sums[1].received > 0 {
		head = 1
	}
	v := values(sums[head])
	for i, fam := range families {
		s := sums[i]
		v[fam.name+"_packets_sent"], v[fam.name+"_packets_received"] = float64(s.sent), float64(s.received)
		if s.sent > 0 {
			v[fam.name+"_loss_ratio"] = s.loss()
		}
		if s.received > 0 {
			v[fam.name+"_rtt_avg_seconds"] = s.avg.Seconds()
		}
	}
	switch {
	case sums[0].received > 0 && sums[1].received > 0:
		return v, nil
	case sums[0].received > 0 || sums[1].received > 0:
		bad := 1 - head
		p.logger.WarnContext(ctx, families[bad].name+" fails while "+families[head].name+" answers", "target", t.Name,
			"error", errs[bad])
		return v, nil
	}
	return v, errors.Join(errs[0], errs[1])
}
