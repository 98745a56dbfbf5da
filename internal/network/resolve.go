package network

import (
	"context"
	"fmt"
	"net/netip"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName names this package's tracer.
const ScopeName = "github.com/netpulse/netpulse/internal/network"

// Net is the plumbing one agent's probes share: its resolver and the
// tracer of the spans it adds to runs.
type Net struct {
	Resolver *Resolver
	tracer   trace.Tracer
}

// New returns the plumbing that resolves names with res.
func New(res *Resolver, tp trace.TracerProvider) *Net {
	return &Net{Resolver: res, tracer: tp.Tracer(ScopeName)}
}

// Resolve looks host up on every call (names move), in a "resolve" child
// span, and returns its addresses in the order to try them: with
// ip_version 4 or 6 only that family, with auto IPv4 first, then IPv6. A
// literal address is returned as it is (if of an allowed family; the span
// is there all the same, so every run's trace has the same shape). A name
// without an address of an allowed family is a resolve failure.
func (n *Net) Resolve(ctx context.Context, host string, s Settings) ([]netip.Addr, error) {
	ctx, span := n.tracer.Start(ctx, "resolve")
	defer span.End()
	// Attributes only for a recorded span: for one that is not (no trace
	// export), building them was allocations on every run of every probe.
	recording := span.IsRecording()
	if recording {
		span.SetAttributes(attribute.String("server.address", host))
	}
	out, err := n.lookup(ctx, host, s)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, ErrResolve)
		return nil, err
	}
	if recording {
		span.SetAttributes(attribute.String("network.peer.address", out[0].String()))
	}
	return out, nil
}

// lookup is Resolve without the span, for dialers: a speed test dials
// hundreds of connections a run, and a span each would bury its phases.
func (n *Net) lookup(ctx context.Context, host string, s Settings) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		if !allowed(a, s.IPVersion) {
			return nil, Fail(ErrResolve, fmt.Errorf("%s is not an IPv%s address", host, s.IPVersion))
		}
		return []netip.Addr{a}, nil
	}
	ips, err := n.Resolver.LookupIPAddr(ctx, host)
	var v4, v6 []netip.Addr
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip.IP); ok {
			if a = a.Unmap(); a.Is4() {
				v4 = append(v4, a)
			} else {
				v6 = append(v6, a.WithZone(ip.Zone))
			}
		}
	}
	var out []netip.Addr
	switch s.IPVersion {
	case IPv4:
		out = v4
	case IPv6:
		out = v6
	default:
		out = append(v4, v6...)
	}
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("%s has no IPv%s address", host, s.IPVersion)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("resolve %s: %w", host, ctx.Err())
		}
		return nil, Fail(ErrResolve, fmt.Errorf("resolve %s: %w", host, err))
	}
	return out, nil
}

func allowed(a netip.Addr, version string) bool {
	switch version {
	case IPv4:
		return a.Is4()
	case IPv6:
		return !a.Is4()
	}
	return true
}

// Fallbacks reduces an address list to the ones worth trying in turn: the
// first address of each family, preferred family first. A probe that
// cannot send over the first falls back to the second.
func Fallbacks(addrs []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range addrs {
		if len(out) == 0 || (len(out) == 1 && out[0].Is4() != a.Is4()) {
			out = append(out, a)
		}
	}
	return out
}
