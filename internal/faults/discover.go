package faults

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	miekg "github.com/miekg/dns"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/icmp"
	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe/dns"
	"github.com/netpulse/netpulse/internal/probe/path"
)

// Probes that tiers: auto adds beside AutoProbeName.
const (
	AutoISPProbeName = "tiers-isp"
	AutoDNSProbeName = "tiers-dns"
)

// ISP hop discovery: a path snapshot this small toward an internet
// target finds the first hops beyond the gateway within about a second.
const (
	discoverMaxHops = 8
	maxISPHops      = 3
	discoverTimeout = 3 * time.Second
	resolvConf      = "/etc/resolv.conf"
)

// ISPHop is a hop of the ISP's found by tracing toward an internet target.
type ISPHop struct {
	TTL  int
	Addr netip.Addr
}

// ispHops picks the ISP's hops from the addresses that answered each TTL
// toward dst (hops[0] is TTL 1, the gateway; an invalid address is a
// silent hop): those after the gateway up to the first public address,
// which is the ISP's edge (private and CGNAT hops before it are the
// ISP's too: a modem, a carrier NAT), at most maxISPHops, never dst.
func ispHops(hops []netip.Addr, dst netip.Addr) []ISPHop {
	var out []ISPHop
	for i := 1; i < len(hops) && len(out) < maxISPHops; i++ {
		a := hops[i]
		if !a.IsValid() {
			continue
		}
		if a == dst {
			break
		}
		out = append(out, ISPHop{TTL: i + 1, Addr: a})
		if public(a) {
			break
		}
	}
	return out
}

// public reports whether a is a global unicast address outside the
// private, CGNAT and unique-local ranges.
func public(a netip.Addr) bool {
	return a.IsGlobalUnicast() && !a.IsPrivate() && !cgnat.Contains(a)
}

// traceHops traces toward dst with one round-trip per TTL (two rounds)
// and returns the address that answered each TTL up to the path's end.
func traceHops(ctx context.Context, dst netip.Addr, logger *slog.Logger) ([]netip.Addr, error) {
	h := icmp.NewHandle(nil, icmp.ModeAuto, logger)
	defer h.Close()
	e, err := h.Engine()
	if err != nil {
		return nil, err
	}
	doc, err := path.Snap(ctx, tracenoop.NewTracerProvider().Tracer(""), e, path.Config{
		Settings: network.Settings{IPVersion: "auto"}, MaxHops: discoverMaxHops, Rounds: 2,
		RoundInterval: 100 * time.Millisecond, HopTimeout: 800 * time.Millisecond, Size: path.DefaultSize, Privileged: "auto"},
		dst, netip.Addr{})
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, len(doc.Hops))
	for i, hop := range doc.Hops {
		if len(hop.Addresses) > 0 {
			out[i], _ = netip.ParseAddr(hop.Addresses[0])
		}
	}
	return out, nil
}

// internetTargets are the addresses of the configured targets of tier
// internet, in order (names resolved, briefly).
func internetTargets(ctx context.Context, cfg *config.Config) []netip.Addr {
	var out []netip.Addr
	for _, p := range cfg.Probes {
		for _, t := range p.Targets {
			if t.Tier != "internet" {
				continue
			}
			if a, err := netip.ParseAddr(t.Host); err == nil {
				out = append(out, a)
			} else if as, err := net.DefaultResolver.LookupNetIP(ctx, "ip", t.Host); err == nil && len(as) > 0 {
				out = append(out, as[0].Unmap())
			}
		}
	}
	return out
}

// addISPHops adds a ping probe of the ISP's hops (tier isp), found by
// tracing toward the internet targets in turn until one shows some.
func addISPHops(ctx context.Context, cfg *config.Config, types config.Types, trace func(context.Context, netip.Addr) ([]netip.Addr, error), logger *slog.Logger) error {
	if hasProbe(cfg, AutoISPProbeName) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, discoverTimeout)
	defer cancel()
	dsts := internetTargets(ctx, cfg)
	if len(dsts) == 0 {
		logger.Info("tiers: auto: no target of tier internet to trace toward, so no ISP hop found")
		return nil
	}
	var hops []ISPHop
	for _, dst := range dsts {
		path, err := trace(ctx, dst)
		if err != nil {
			logger.Warn("tiers: auto: cannot trace toward an internet target", "target", dst, "error", err)
			continue
		}
		if hops = ispHops(path, dst); len(hops) > 0 {
			break
		}
	}
	if len(hops) == 0 {
		logger.Warn("tiers: auto: no ISP hop answered beyond the gateway (routers that do not answer TTL-limited probes?)")
		return nil
	}
	p, err := autoProbe(types, AutoISPProbeName, "ping")
	if err != nil {
		return err
	}
	for _, h := range hops {
		p.Targets = append(p.Targets, config.Target{Name: "isp-hop" + strconv.Itoa(h.TTL), Host: h.Addr.String(), Tier: "isp"})
	}
	if err := addProbe(cfg, types, p); err != nil {
		return err
	}
	logger.Info("tiers: auto: probing the ISP's first hops", "hops", fmt.Sprint(hops))
	return nil
}

// addResolvers adds a DNS probe of the name servers of resolv.conf
// (tier dns), each asked for the root's name servers (any recursive
// resolver answers that from its cache).
func addResolvers(cfg *config.Config, types config.Types, file string, logger *slog.Logger) error {
	if hasProbe(cfg, AutoDNSProbeName) {
		return nil
	}
	cc, err := miekg.ClientConfigFromFile(file)
	if err != nil || len(cc.Servers) == 0 {
		logger.Info("tiers: auto: no name server found, so no resolver to probe", "file", file, "error", err)
		return nil
	}
	p, err := autoProbe(types, AutoDNSProbeName, "dns")
	if err != nil {
		return err
	}
	if d, ok := p.Settings.(*dns.Config); ok {
		d.QueryName, d.QueryType = ".", "NS"
	}
	for i, s := range cc.Servers {
		name := "resolver"
		if i > 0 {
			name += "-" + strconv.Itoa(i+1)
		}
		p.Targets = append(p.Targets, config.Target{Name: name, Host: net.JoinHostPort(s, cc.Port), Tier: "dns"})
	}
	if err := addProbe(cfg, types, p); err != nil {
		return err
	}
	logger.Info("tiers: auto: probing the name servers", "servers", fmt.Sprint(cc.Servers))
	return nil
}

func hasProbe(cfg *config.Config, name string) bool {
	for _, p := range cfg.Probes {
		if p.Name == name {
			return true
		}
	}
	return false
}

// autoProbe is a probe of the type with its default settings.
func autoProbe(types config.Types, name, typ string) (config.Probe, error) {
	block, ok := types.NewBlock(typ)
	if !ok {
		return config.Probe{}, fmt.Errorf("tiers: auto: no %s probe type", typ)
	}
	return config.Probe{Name: name, Type: typ, Interval: config.DefaultInterval, Timeout: config.DefaultTimeout,
		Settings: block}, nil
}

// addProbe applies the probe's defaults and adds it, if the configuration
// stays valid.
func addProbe(cfg *config.Config, types config.Types, p config.Probe) error {
	p.Settings.Defaults(&p)
	cfg.Probes = append(cfg.Probes, p)
	if err := cfg.Validate(types); err != nil {
		cfg.Probes = cfg.Probes[:len(cfg.Probes)-1]
		return fmt.Errorf("tiers: auto: %w", err)
	}
	return nil
}
