package path

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/testutil"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type chainRun struct {
	snapList string
	values   probe.Values
	errType  string
	spans    []sdktrace.ReadOnlySpan
}

func newChainProber(t *testing.T, privileged string, roundInterval time.Duration) (*Prober, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	shared := &probe.Shared{}
	t.Cleanup(func() { _ = shared.Close() })
	cfg := Config{Settings: network.Settings{IPVersion: "auto"}, MaxHops: 8, Rounds: 4,
		RoundInterval: roundInterval, HopTimeout: time.Second, Size: 56, Privileged: privileged}
	p, err := New(cfg, probe.Deps{Meters: metricnoop.NewMeterProvider(), Tracers: tp, Logger: quiet,
		Net: network.New(network.NewResolver(""), tp), Shared: shared})
	if err != nil {
		t.Fatal(err)
	}
	return p, rec
}

func run(t *testing.T, p *Prober, rec *tracetest.SpanRecorder, target *probe.Target) chainRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	before := len(rec.Ended())
	ctx, span := p.tracer.Start(ctx, "path run")
	v, err := p.Probe(ctx, target)
	span.End()
	var hops []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended()[before:] {
		if strings.HasPrefix(s.Name(), "hop ") {
			if s.Parent().SpanID() != span.SpanContext().SpanID() {
				t.Errorf("span %s is not a child of the run's span", s.Name())
			}
			hops = append(hops, s)
		}
	}
	list := ""
	for _, s := range rec.Ended()[before:] {
		if s.Name() == "path run" {
			for _, kv := range s.Attributes() {
				if kv.Key == "path.hops" {
					list = kv.Value.AsString()
				}
			}
		}
	}
	return chainRun{snapList: list, values: v, errType: probe.ErrorType(ctx, err), spans: hops}
}

// TestPathThroughChain traces a path through a chain of namespaces
// (client → home router → ISP router → "internet" router → target),
// breaking it in each way a path breaks: a link down at each hop, a router
// dropping what it forwards, a reject with ICMP, an unreachable route, and
// ICMP rate limiting at one hop. Each time the hop list, the hop where
// loss starts and the run's outcome must say where.
func TestPathThroughChain(t *testing.T) {
	testutil.NeedICMP(t)
	testutil.NeedNft(t)
	c := testutil.NewChain(t)
	h, i, n, d := c.HomeAddr.String(), c.ISPAddr.String(), c.InetAddr.String(), c.Target.String()
	clean := strings.Join([]string{h, i, n, d}, " ")
	target := probe.NewTarget(config.Probe{Name: "route", Type: TypeName}, config.Target{Name: "dst", Host: d})

	type fault struct {
		name           string
		apply, undo    func(t *testing.T)
		list           string
		lossFrom       float64
		errType        string
		rateLimitedHop int
		slow           bool // needs runs over a second long
	}
	nftFault := func(ns *testutil.NetNS, script string) (func(*testing.T), func(*testing.T)) {
		return func(t *testing.T) { ns.Nft(t, "table inet faults {\n"+script+"\n}") },
			func(t *testing.T) {
				if out, err := ns.Exec("nft", "delete", "table", "inet", "faults"); err != nil {
					t.Fatalf("%v: %s", err, out)
				}
			}
	}
	var faults []fault
	for link := range 4 {
		want := []string{h, i, n, d}[:link]
		faults = append(faults, fault{
			name:  fmt.Sprintf("link-%d-down", link),
			apply: func(t *testing.T) { c.LinkDown(t, link) }, undo: func(t *testing.T) { c.LinkUp(t, link) },
			list: strings.TrimSpace(strings.Join(append(want, "*"), " ")), lossFrom: float64(link + 1), errType: probe.ErrNoReply,
		})
	}
	dropApply, dropUndo := nftFault(c.ISP, "chain relay { type filter hook forward priority 0; drop; }")
	rejApply, rejUndo := nftFault(c.Inet, "chain relay { type filter hook forward priority 0; ip daddr "+d+" reject with icmp type host-unreachable; }")
	// Hop 2 answers at most one time-exceeded per minute: loss there, none
	// beyond it.
	limApply, limUndo := nftFault(c.ISP, "chain limiter { type filter hook output priority 0; icmp type time-exceeded limit rate over 1/minute burst 1 packets drop; }")
	faults = append(faults,
		fault{name: "isp-drops", apply: dropApply, undo: dropUndo, list: h + " " + i + " *", lossFrom: 3, errType: probe.ErrNoReply},
		// The echo reaching the reject with TTL 1 is answered time exceeded
		// (the TTL is checked before the forward hook): traceroute's "3 N,
		// 4 N !H".
		fault{name: "inet-rejects", apply: rejApply, undo: rejUndo, list: h + " " + i + " " + n + " " + n + "!", lossFrom: 4, errType: probe.ErrUnreachable},
		fault{name: "unreachable-route",
			apply: func(t *testing.T) { c.Inet.Route(t, "unreachable", d+"/32") },
			undo: func(t *testing.T) {
				if out, err := c.Inet.Exec("ip", "route", "del", "unreachable", d+"/32"); err != nil {
					t.Fatalf("%v: %s", err, out)
				}
			},
			// Linux limits an unreachable route's ICMP errors to one a
			// second per source after a burst of five, in the per-source
			// bucket every other ICMP error it sent us drained: only a
			// run longer than a second is sure to see one.
			list: h + " " + i + " " + n + "!", lossFrom: 3, errType: probe.ErrUnreachable, slow: true},
		fault{name: "isp-rate-limits-icmp", apply: limApply, undo: limUndo, list: clean, rateLimitedHop: 2},
	)

	for _, mode := range []string{"true", "false"} {
		p, rec := newChainProber(t, mode, 50*time.Millisecond)
		slow, slowRec := newChainProber(t, mode, 400*time.Millisecond)
		// The chain answers fully first; and again after each fault is undone.
		waitClean := func(t *testing.T) {
			t.Helper()
			deadline := time.Now().Add(10 * time.Second)
			for {
				r := run(t, p, rec, target)
				if r.snapList == clean && r.errType == "" && r.values["loss_ratio"] == 0 {
					if len(r.spans) != 4 {
						t.Errorf("%d hop spans, want 4", len(r.spans))
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("the chain does not answer cleanly: %q (%s), want %q", r.snapList, r.errType, clean)
				}
			}
		}
		t.Run("privileged="+mode, func(t *testing.T) {
			waitClean(t)
			if r := run(t, slow, slowRec, target); r.snapList != clean {
				t.Fatalf("slow prober: %q, want %q", r.snapList, clean)
			}
			for _, f := range faults {
				t.Run(f.name, func(t *testing.T) {
					f.apply(t)
					r := chainRun{}
					if f.slow {
						r = run(t, slow, slowRec, target)
					} else {
						r = run(t, p, rec, target)
					}
					f.undo(t)
					t.Logf("%s: %s (loss from hop %g, %s)", f.name, r.snapList, r.values["loss_from_hop"], r.errType)
					if r.snapList != f.list || r.values["loss_from_hop"] != f.lossFrom || r.errType != f.errType {
						t.Errorf("path %q loss from hop %g error %q, want %q, %g, %q", r.snapList, r.values["loss_from_hop"],
							r.errType, f.list, f.lossFrom, f.errType)
					}
					if f.rateLimitedHop > 0 {
						if r.values["rate_limited_hops"] != 1 || r.values["loss_ratio"] != 0 {
							t.Errorf("values %v: want one rate-limited hop and no destination loss", r.values)
						}
						if !hopSpanSays(r.spans, f.rateLimitedHop, "path.hop.rate_limited") {
							t.Errorf("hop %d's span is not marked rate-limited", f.rateLimitedHop)
						}
					} else if r.values["route_changed"] != 1 {
						t.Errorf("route_changed %v after a break, want 1", r.values["route_changed"])
					}
					if f.lossFrom > 0 {
						i := slices.IndexFunc(r.spans, func(s sdktrace.ReadOnlySpan) bool { return s.Name() == fmt.Sprintf("hop %g", f.lossFrom) })
						if i < 0 || r.spans[i].Status().Code != codes.Error {
							t.Errorf("the span of hop %g (where loss starts) has no error status", f.lossFrom)
						}
					}
					waitClean(t)
				})
			}
		})
	}
}

func hopSpanSays(spans []sdktrace.ReadOnlySpan, hop int, key string) bool {
	for _, s := range spans {
		if s.Name() != fmt.Sprintf("hop %d", hop) {
			continue
		}
		for _, kv := range s.Attributes() {
			if string(kv.Key) == key {
				return kv.Value.AsBool()
			}
		}
	}
	return false
}

// TestPathIPv6 traces an IPv6 path through a router namespace to an
// address it sends back and nobody answers: the router is hop 1 (hop
// limit exceeded), then the path goes silent.
func TestPathIPv6(t *testing.T) {
	testutil.NeedICMP(t)
	ns := testutil.NewNetNS(t)
	r6 := ns.IPv6(t)
	far := r6.BehindRouter(t)
	r6.ForwardBack(t, far)
	target := probe.NewTarget(config.Probe{Name: "route6", Type: TypeName}, config.Target{Name: "far", Host: far.String()})
	for _, mode := range []string{"true", "false"} {
		p, rec := newChainProber(t, mode, 50*time.Millisecond)
		r := run(t, p, rec, target)
		if want := r6.NS.String() + " *"; r.snapList != want || r.errType != probe.ErrNoReply || r.values["loss_from_hop"] != 2 {
			t.Errorf("privileged=%s: path %q (%s, loss from hop %v), want %q, no_reply, 2", mode, r.snapList, r.errType,
				r.values["loss_from_hop"], want)
		}
	}
}
