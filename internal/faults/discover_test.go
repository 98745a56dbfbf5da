package faults

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe/dns"
	"github.com/netpulse/netpulse/internal/probes"
)

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		if s != "*" {
			out[i] = netip.MustParseAddr(s)
		}
	}
	return out
}

// The ISP's hops are those beyond the gateway up to the first public
// address: a modem's private address and a carrier NAT's (CGNAT) count,
// silent hops are skipped, the destination never is one.
func TestISPHops(t *testing.T) {
	dst := netip.MustParseAddr("1.1.1.1")
	for _, c := range []struct {
		name string
		hops []netip.Addr
		want []ISPHop
	}{
		{"public at once", addrs("192.168.1.1", "203.0.113.1", "203.0.113.9", "1.1.1.1"),
			[]ISPHop{{2, netip.MustParseAddr("203.0.113.1")}}},
		{"CGNAT then public", addrs("192.168.1.1", "100.64.0.1", "*", "203.0.113.9", "1.1.1.1"),
			[]ISPHop{{2, netip.MustParseAddr("100.64.0.1")}, {4, netip.MustParseAddr("203.0.113.9")}}},
		{"modem, CGNAT, CGNAT: at most 3", addrs("192.168.1.1", "192.168.100.1", "100.64.0.1", "100.64.0.2", "203.0.113.9"),
			[]ISPHop{{2, netip.MustParseAddr("192.168.100.1")}, {3, netip.MustParseAddr("100.64.0.1")}, {4, netip.MustParseAddr("100.64.0.2")}}},
		{"destination next", addrs("192.168.1.1", "1.1.1.1"), nil},
		{"all silent", addrs("192.168.1.1", "*", "*"), nil},
	} {
		if got := ispHops(c.hops, dst); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestAutoISPHopsAndResolvers(t *testing.T) {
	load := func(yaml string) *config.Config {
		cfg, err := config.Parse([]byte("tiers: auto\n"+yaml), probes.Registry)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	const withInternet = "probes: [{name: p, type: ping, targets: [{host: 198.51.100.7, tier: internet}]}]\n"
	var traced []netip.Addr
	trace := func(_ context.Context, dst netip.Addr) ([]netip.Addr, error) {
		traced = append(traced, dst)
		return addrs("192.168.1.1", "100.64.0.1", "203.0.113.9", dst.String()), nil
	}
	cfg := load(withInternet)
	if err := addISPHops(t.Context(), cfg, probes.Registry, trace, quietLog); err != nil {
		t.Fatal(err)
	}
	if len(traced) != 1 || traced[0].String() != "198.51.100.7" {
		t.Errorf("traced toward %v, want the internet target", traced)
	}
	if len(cfg.Probes) != 2 || cfg.Probes[1].Name != AutoISPProbeName || len(cfg.Probes[1].Targets) != 2 {
		t.Fatalf("probes %+v", cfg.Probes)
	}
	if tg := cfg.Probes[1].Targets[0]; tg.Name != "isp-hop2" || tg.Host != "100.64.0.1" || tg.Tier != "isp" {
		t.Errorf("target %+v", tg)
	}
	// Nothing found, or nothing to trace toward: no probe.
	failing := func(context.Context, netip.Addr) ([]netip.Addr, error) { return nil, errors.New("no ICMP") }
	for _, c := range []struct {
		yaml  string
		trace func(context.Context, netip.Addr) ([]netip.Addr, error)
	}{
		{withInternet, failing},
		{"probes: [{name: p, type: ping, targets: [{host: 198.51.100.7}]}]\n", trace},
	} {
		cfg := load(c.yaml)
		if err := addISPHops(t.Context(), cfg, probes.Registry, c.trace, quietLog); err != nil || len(cfg.Probes) != 1 {
			t.Errorf("%d probes, %v; want none added", len(cfg.Probes), err)
		}
	}

	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver 192.0.2.53\nnameserver 2001:db8::53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg = load(withInternet)
	if err := addResolvers(cfg, probes.Registry, conf, quietLog); err != nil {
		t.Fatal(err)
	}
	p := cfg.Probes[len(cfg.Probes)-1]
	if p.Name != AutoDNSProbeName || p.Type != "dns" || len(p.Targets) != 2 || p.Targets[1].Host != "[2001:db8::53]:53" ||
		p.Targets[0].Tier != "dns" || p.Settings.(*dns.Config).QueryName != "." {
		t.Errorf("probe %+v", p)
	}
	cfg = load(withInternet)
	if err := addResolvers(cfg, probes.Registry, filepath.Join(t.TempDir(), "none"), quietLog); err != nil || len(cfg.Probes) != 1 {
		t.Errorf("no resolv.conf: %d probes, %v", len(cfg.Probes), err)
	}
}
