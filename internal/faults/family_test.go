//go:build linux

package faults

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probe/ping"
	"github.com/netpulse/netpulse/internal/testutil"
)

// ip_version: both through the chain (IPv4 and unique-local IPv6): the
// target's IPv6 echoes are dropped at the far end while IPv4 answers; the
// run succeeds, its IPv6 loss is 1 and its series per family say so, and
// the verdict blames nothing but says that IPv6 fails where IPv4 works.
func TestBothFamiliesThroughChain(t *testing.T) {
	testutil.NeedICMP(t)
	testutil.NeedNft(t)
	c := testutil.NewChain(t)
	dns := testutil.DNSServerDual(t,
		map[string]netip.Addr{"home.test": c.HomeAddr, "dst.test": c.Target},
		map[string]netip.Addr{"home.test": c.HomeAddr6, "dst.test": c.Target6})
	tel := testutil.NewTelemetry(t)
	shared := &probe.Shared{}
	t.Cleanup(func() { _ = shared.Close() })
	deps := probe.Deps{Meters: tel.Meters, Tracers: tel.Traces, Logger: quietLog,
		Net: network.New(network.NewResolver(dns), tracenoop.NewTracerProvider()), Shared: shared}
	p, err := ping.New(ping.Config{Settings: network.Settings{IPVersion: ping.IPBoth}, Count: 3,
		PacketInterval: 50 * time.Millisecond, Size: 56, TTL: 64, Privileged: "auto", Engine: ping.EngineShared}, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	runner, err := probe.NewRunner(tel.Meters, tel.Traces, quietLog, 0)
	if err != nil {
		t.Fatal(err)
	}
	pc := config.Probe{Name: "both", Type: ping.TypeName, Interval: time.Minute, Timeout: 1500 * time.Millisecond}
	home := probe.NewTarget(pc, config.Target{Name: "home", Host: "home.test", Tier: "gateway"})
	dst := probe.NewTarget(pc, config.Target{Name: "dst", Host: "dst.test", Tier: "internet"})
	judge, err := NewJudge([]*probe.Target{home, dst}, nil)
	if err != nil {
		t.Fatal(err)
	}
	runner.OnResult = judge.Observe
	round := func() probe.Result {
		runner.Run(t.Context(), p, home, pc.Timeout)
		return runner.Run(t.Context(), p, dst, pc.Timeout)
	}
	if r := round(); r.Outcome != probe.OutcomeSuccess || r.Values["ipv4_loss_ratio"] != 0 || r.Values["ipv6_loss_ratio"] != 0 {
		t.Fatalf("healthy chain: %s %v, values %v", r.Outcome, r.Err, r.Values)
	}
	if v := judge.Verdict(); v.Domain != DomainNone || v.Family != "" {
		t.Fatalf("healthy chain: verdict %+v", v)
	}
	c.Dst.Nft(t, "table inet v6drop { chain in { type filter hook input priority 0; icmpv6 type echo-request drop; }; }")
	r := round()
	if r.Outcome != probe.OutcomeSuccess || r.Values["ipv4_loss_ratio"] != 0 || r.Values["ipv6_loss_ratio"] != 1 ||
		r.Values["loss_ratio"] != 0 {
		t.Errorf("IPv6 dropped: %s %v, values %v; want success, IPv6 loss 1, IPv4 (the headline) 0", r.Outcome, r.Err, r.Values)
	}
	v := judge.Verdict()
	t.Logf("verdict %s (%s): %s", v.Domain, v.Family, v.Reason)
	if v.Domain != DomainNone || v.Family != "ipv6" || !strings.Contains(v.Reason, "ipv6 fails while ipv4 answers: dst (dst.test)") {
		t.Errorf("verdict %+v, want none with ipv6 failing where ipv4 answers", v)
	}
	m := tel.Collect(t)
	for fam, want := range map[string]float64{"ipv4": 0, "ipv6": 1} {
		got, ok := testutil.Value(m["netpulse.ping.loss"], probe.KeyTargetName.String("dst"), ping.KeyNetworkType.String(fam))
		if !ok || got != want {
			t.Errorf("netpulse.ping.loss{network.type=%s} %v (present %v), want %v", fam, got, ok, want)
		}
	}
}
