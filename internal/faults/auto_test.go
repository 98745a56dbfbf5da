package faults

import (
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe/ping"
	"github.com/netpulse/netpulse/internal/probes"
)

// tiers: auto adds the gateways found as ping targets of tier gateway; the
// discovery itself is tested in a namespace (TestDefaultGateways).
func TestAutoTiers(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	load := func(tiers string) *config.Config {
		cfg, err := config.Parse([]byte("tiers: "+tiers+"\nprobes: [{name: p, type: ping, targets: [{host: 127.0.0.1}]}]\n"), probes.Registry)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	two := func() ([]Gateway, error) {
		return []Gateway{{Addr: netip.MustParseAddr("198.18.0.1"), Interface: "eth0"},
			{Addr: netip.MustParseAddr("fe80::1").WithZone("eth0"), Interface: "eth0"}}, nil
	}
	cfg := load("auto")
	if err := addGateways(cfg, probes.Registry, two, quiet); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Probes) != 2 {
		t.Fatalf("%d probes, want the configured one and %s", len(cfg.Probes), AutoProbeName)
	}
	p := cfg.Probes[1]
	if p.Name != AutoProbeName || p.Type != "ping" || len(p.Targets) != 2 || p.Settings.(*ping.Config).Count != ping.DefaultCount {
		t.Fatalf("probe %+v", p)
	}
	if tg := p.Targets[1]; tg.Name != "gateway-2" || tg.Host != "fe80::1%eth0" || tg.Tier != "gateway" || tg.Labels["interface"] != "eth0" {
		t.Errorf("target %+v", tg)
	}
	// Applied twice (a reload of the same config): once.
	if err := addGateways(cfg, probes.Registry, two, quiet); err != nil || len(cfg.Probes) != 2 {
		t.Errorf("second application: %d probes, %v", len(cfg.Probes), err)
	}
	for _, find := range []func() ([]Gateway, error){
		func() ([]Gateway, error) { return nil, nil },
		func() ([]Gateway, error) { return nil, errors.New("netlink refused") },
	} {
		cfg := load("auto")
		if err := addGateways(cfg, probes.Registry, find, quiet); err != nil || len(cfg.Probes) != 1 {
			t.Errorf("no gateway: %d probes, %v; want the configuration unchanged", len(cfg.Probes), err)
		}
	}
	cfg = load(`""`)
	if err := AutoTiers(cfg, probes.Registry, quiet); err != nil || len(cfg.Probes) != 1 {
		t.Errorf("without tiers: auto: %d probes, %v", len(cfg.Probes), err)
	}
	if _, err := config.Parse([]byte("tiers: manual\nprobes: [{name: p, type: ping, targets: [{host: 127.0.0.1}]}]\n"), probes.Registry); err == nil ||
		!errors.As(err, new(*config.ValidationError)) {
		t.Errorf("tiers: manual: %v, want a validation error", err)
	}
}
