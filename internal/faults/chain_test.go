//go:build linux

package faults

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/history"
	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probe/path"
	"github.com/netpulse/netpulse/internal/probe/ping"
	"github.com/netpulse/netpulse/internal/testutil"
)

// lab is a chain of namespaces with real ping and path probers run
// through the harness, their results feeding a judge.
type lab struct {
	c       *testutil.Chain
	runner  *probe.Runner
	pinger  *ping.Prober
	tracer  *path.Prober
	tiered  []*probe.Target
	route   *probe.Target // a path probe's target (no tier)
	judge   *Judge
	outages *Outages
	store   *history.Store
	mu      sync.Mutex
	changed time.Time // when the verdict's domain last changed
}

func newLab(t testing.TB, c *testutil.Chain) *lab {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	shared := &probe.Shared{}
	t.Cleanup(func() { _ = shared.Close() })
	deps := probe.Deps{Meters: metricnoop.NewMeterProvider(), Tracers: tracenoop.NewTracerProvider(), Logger: quiet,
		Net: network.New(network.NewResolver(""), tracenoop.NewTracerProvider()), Shared: shared}
	pinger, err := ping.New(ping.Config{Settings: network.Settings{IPVersion: "auto"}, Count: 3,
		PacketInterval: 50 * time.Millisecond, Size: 56, TTL: 64, Privileged: "auto", Engine: ping.EngineShared}, deps)
	if err != nil {
		t.Fatal(err)
	}
	tracer, err := path.New(path.Config{Settings: network.Settings{IPVersion: "auto"}, MaxHops: 6, Rounds: 3,
		RoundInterval: 50 * time.Millisecond, HopTimeout: time.Second, Size: 56, Privileged: "auto"}, deps)
	if err != nil {
		t.Fatal(err)
	}
	runner, err := probe.NewRunner(deps.Meters, deps.Tracers, quiet, 0)
	if err != nil {
		t.Fatal(err)
	}
	pc := config.Probe{Name: "tiers", Type: ping.TypeName, Interval: time.Minute, Timeout: 1500 * time.Millisecond}
	l := &lab{c: c, runner: runner, pinger: pinger, tracer: tracer}
	for _, tg := range []config.Target{
		{Name: "home", Host: c.HomeAddr.String(), Tier: "gateway"},
		{Name: "isp", Host: c.ISPAddr.String(), Tier: "isp"},
		{Name: "inet", Host: c.InetAddr.String(), Tier: "internet"},
		{Name: "dst", Host: c.Target.String(), Tier: "internet"},
	} {
		l.tiered = append(l.tiered, probe.NewTarget(pc, tg))
	}
	l.route = probe.NewTarget(config.Probe{Name: "route", Type: path.TypeName, Interval: time.Minute, Timeout: 3 * time.Second},
		config.Target{Name: "dst", Host: c.Target.String()})
	if l.judge, err = NewJudge(l.tiered, nil); err != nil {
		t.Fatal(err)
	}
	l.judge.OnChange = func(Verdict) {
		l.mu.Lock()
		l.changed = time.Now()
		l.mu.Unlock()
	}
	if l.store, err = history.Open(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.store.Close() })
	if l.outages, err = NewOutages(l.tiered, l.judge, l.store, nil, quiet); err != nil {
		t.Fatal(err)
	}
	runner.OnResult = func(r probe.Result) {
		l.judge.Observe(r)
		l.outages.Observe(r)
	}
	return l
}

// outageLog is the lab's outage log, flushed.
func (l *lab) outageLog(t testing.TB) []history.Outage {
	t.Helper()
	l.outages.Flush()
	var out []history.Outage
	if err := l.store.Outages(time.Time{}, time.Now().Add(time.Hour), func(o history.Outage) bool {
		out = append(out, o)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// round runs every tiered target once, concurrently, as their schedules
// would within one interval.
func (l *lab) round(ctx context.Context) {
	var wg sync.WaitGroup
	for _, tg := range l.tiered {
		wg.Go(func() { l.runner.Run(ctx, l.pinger, tg, tg.Config.Timeout) })
	}
	wg.Wait()
}

// TestVerdictThroughChain breaks the chain client → home router → ISP
// router → "internet" router → target link by link, with gateway, ISP and
// internet targets pinged and a path probe to the target, and checks the
// verdict (and the path's loss-from hop) after one round of runs; then a
// gateway that never answers pings is unknown, never blamed.
func TestVerdictThroughChain(t *testing.T) {
	testutil.NeedICMP(t)
	testutil.NeedNft(t)
	c := testutil.NewChain(t)
	l := newLab(t, c)
	ctx := t.Context()
	waitVerdict := func(t *testing.T, l *lab, want string) Verdict {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			l.round(ctx)
			v := l.judge.Verdict()
			if v.Domain == want {
				return v
			}
			if time.Now().After(deadline) {
				t.Fatalf("verdict %s (%s), want %s", v.Domain, v.Reason, want)
			}
		}
	}
	waitVerdict(t, l, DomainNone)

	for link, want := range []string{"gateway", "isp", "internet", "target"} {
		t.Run(want, func(t *testing.T) {
			c.LinkDown(t, link)
			broken := time.Now()
			l.round(ctx)
			v := l.judge.Verdict()
			l.mu.Lock()
			took := l.changed.Sub(broken)
			l.mu.Unlock()
			t.Logf("link %d down: verdict %s after %v (one round of runs): %s", link, v.Domain, took.Round(time.Millisecond), v.Reason)
			if v.Domain != want {
				t.Errorf("link %d down: verdict %s (%s), want %s", link, v.Domain, v.Reason, want)
			}
			// The path shows where: loss from the hop past the broken link.
			res := l.runner.Run(ctx, l.tracer, l.route, l.route.Config.Timeout)
			if got := res.Values["loss_from_hop"]; got != float64(link+1) {
				t.Errorf("path: loss from hop %v, want %d (%v)", got, link+1, res.Err)
			}
			// A second round confirms the domain outage; the repair ends it
			// and the targets' outages, which carry its domain.
			l.round(ctx)
			c.LinkUp(t, link)
			waitVerdict(t, l, DomainNone)
			log := l.outageLog(t)
			domains, targets := 0, 0
			for _, o := range log {
				if o.Start.Before(broken) {
					continue // an earlier subtest's
				}
				if o.Open() {
					t.Errorf("outage %+v still open after the repair", o)
				}
				if o.IsDomain() && o.Domain == want {
					domains++
				}
				if !o.IsDomain() && o.Domain == want {
					targets++
				}
			}
			if domains != 1 || targets == 0 {
				t.Errorf("link %d down: %d outages of domain %s and %d target outages blamed on it, want 1 and some: %+v",
					link, domains, want, targets, log)
			}
		})
	}

	// Other ways a path breaks: a router that drops what it forwards, a
	// reject with an ICMP error, unreachable routes.
	run := func(t *testing.T, ns *testutil.NetNS, cmd ...string) {
		t.Helper()
		if out, err := ns.Exec(cmd[0], cmd[1:]...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	isp := c.ISPAddr.String() + "/32"
	for _, f := range []struct {
		name, want  string
		apply, undo func(t *testing.T)
	}{
		{"isp-drops-forwarded", "internet",
			func(t *testing.T) {
				c.ISP.Nft(t, "table inet brk { chain fw { type filter hook forward priority 0; drop; }; }")
			},
			func(t *testing.T) { run(t, c.ISP, "nft", "delete", "table", "inet", "brk") }},
		{"inet-rejects-target", "target",
			func(t *testing.T) {
				c.Inet.Nft(t, "table inet brk { chain fw { type filter hook forward priority 0; ip daddr "+c.Target.String()+
					" reject with icmp type host-unreachable; }; }")
			},
			func(t *testing.T) { run(t, c.Inet, "nft", "delete", "table", "inet", "brk") }},
		{"home-unreachable-routes", "isp",
			func(t *testing.T) {
				run(t, c.Home, "ip", "route", "add", "unreachable", isp)
				run(t, c.Home, "ip", "route", "replace", "unreachable", "default")
			},
			func(t *testing.T) {
				run(t, c.Home, "ip", "route", "del", "unreachable", isp)
				c.LinkUp(t, 1) // the link is up: this restores the default route
			}},
	} {
		t.Run(f.name, func(t *testing.T) {
			f.apply(t)
			l.round(ctx)
			v := l.judge.Verdict()
			t.Logf("%s: %s: %s", f.name, v.Domain, v.Reason)
			f.undo(t)
			if v.Domain != f.want {
				t.Errorf("verdict %s (%s), want %s", v.Domain, v.Reason, f.want)
			}
			waitVerdict(t, l, DomainNone)
		})
	}

	// The ISP router stops answering pings (ICMP filtered) while the
	// internet answers: not a fault.
	t.Run("isp-filters-icmp", func(t *testing.T) {
		c.ISP.Nft(t, "table inet filtericmp { chain guard { type filter hook input priority 0; icmp type echo-request drop; }; }")
		l.round(ctx)
		if v := l.judge.Verdict(); v.Domain != DomainNone {
			t.Errorf("verdict %s (%s), want none: the ISP router only filters ICMP", v.Domain, v.Reason)
		}
		if _, err := c.ISP.Exec("nft", "delete", "table", "inet", "filtericmp"); err != nil {
			t.Fatal(err)
		}
	})

	// A gateway that has never answered a ping since the agent started is
	// unknown: when the ISP link breaks, the verdict cannot tell the
	// gateway from the ISP, and says so rather than blame either.
	t.Run("silent-gateway", func(t *testing.T) {
		c.Home.Nft(t, "table inet silent { chain guard { type filter hook input priority 0; icmp type echo-request drop; }; }")
		fresh := newLab(t, c) // a restarted agent: the gateway never answered it
		waitVerdict(t, fresh, DomainNone)
		c.LinkDown(t, 1)
		fresh.round(ctx)
		v := fresh.judge.Verdict()
		t.Logf("silent gateway, ISP link down: %s: %s", v.Domain, v.Reason)
		if v.Domain != DomainUnknown {
			t.Errorf("verdict %s (%s), want unknown", v.Domain, v.Reason)
		}
		c.LinkUp(t, 1)
		c.LinkDown(t, 2)
		fresh.round(ctx)
		if v := fresh.judge.Verdict(); v.Domain != "internet" {
			t.Errorf("silent gateway, internet link down: verdict %s (%s), want internet (the ISP answers)", v.Domain, v.Reason)
		}
		c.LinkUp(t, 2)
	})
}

// Seen from the host (its route to the chain leads to the home router),
// tracing toward the target finds the ISP router as the first hop beyond
// the gateway with a public address: the ISP's edge.
func TestDiscoverISPHops(t *testing.T) {
	testutil.NeedICMP(t)
	testutil.NeedNft(t)
	c := testutil.NewChain(t)
	hops, err := traceHops(t.Context(), c.Target, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	got := ispHops(hops, c.Target)
	t.Logf("hops %v: ISP hops %v", hops, got)
	if len(hops) != 4 || hops[0] != c.HomeAddr || len(got) != 1 || got[0] != (ISPHop{TTL: 2, Addr: c.ISPAddr}) {
		t.Errorf("hops %v, ISP hops %v; want %s (the gateway) then %s at TTL 2", hops, got, c.HomeAddr, c.ISPAddr)
	}
}
