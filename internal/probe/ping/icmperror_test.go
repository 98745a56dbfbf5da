package ping

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/testutil"
)

// ICMP errors are answers, not silence: a target behind an unreachable or
// prohibit route, or behind an nftables reject, fails its run as soon as
// the router's error arrives, with error.type unreachable (ttl_exceeded for
// TTL 1), the ICMP type and code and the router on the span and in the
// error, and no loss sample beyond what was sent. A router namespace of the
// test's answers; the probe's run has a 5 s timeout, and without the error it
// would wait for all of it.
func TestPingICMPErrors(t *testing.T) {
	testutil.NeedICMP(t)
	for _, privileged := range []string{"true", "false"} {
		// A router of its own per socket kind: the kernel rate-limits the
		// errors of unreachable and prohibit routes per source (5, then 1 a
		// second), and each router sees another source.
		router, cases := icmpErrorRouter(t)
		for _, c := range cases {
			t.Run(privileged+"/"+c.name, func(t *testing.T) {
				cfg := pingConfig(privileged)
				cfg.Count, cfg.PacketInterval, cfg.TTL = 10, 200*time.Millisecond, c.ttl
				p, tel := newTestProber(t, cfg, "")
				target := probe.NewTarget(config.Probe{Name: "wan", Type: TypeName}, config.Target{Name: c.name, Host: c.dst.String()})
				ctx, span := tel.Traces.Tracer("test").Start(context.Background(), "run")
				ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				start := time.Now()
				v, err := p.Probe(ctx, target)
				elapsed := time.Since(start)
				span.End()
				t.Logf("%s: run ended %.1f ms after its first echo: %v", c.name, float64(elapsed.Microseconds())/1e3, err)
				if got := probe.ErrorType(ctx, err); got != c.errType {
					t.Fatalf("error type %q (%v), want %q", got, err, c.errType)
				}
				if !strings.Contains(err.Error(), "from "+router) || !strings.Contains(err.Error(), fmt.Sprintf("code %d", c.code)) {
					t.Errorf("error %q does not name the code %d and the router %s", err, c.code, router)
				}
				// Bounded, not timed: the 10 echoes alone would take 1.8 s.
				if elapsed > time.Second {
					t.Errorf("the run took %v: the ICMP error did not end it", elapsed)
				}
				if v["packets_sent"] != 1 || v["packets_received"] != 0 {
					t.Errorf("values %v: want the one echo that met the error", v)
				}
				var reporter string
				for _, s := range tel.Spans.Ended() {
					for _, kv := range s.Attributes() {
						if s.Name() == "echo" && kv.Key == attribute.Key("icmp.reporter") {
							reporter = kv.Value.AsString()
						}
					}
				}
				if reporter != router {
					t.Errorf("echo span icmp.reporter %q, want %s", reporter, router)
				}
			})
		}
	}
}

type icmpErrorCase struct {
	name    string
	dst     netip.Addr
	ttl     int
	errType string
	code    int
}

// icmpErrorRouter makes a router namespace that answers for four
// addresses behind it with ICMP errors, and returns its address and the
// cases.
func icmpErrorRouter(t *testing.T) (string, []icmpErrorCase) {
	ns := testutil.NewNetNS(t)
	testutil.NeedNft(t)
	ns.Router(t)
	router := ns.NSAddr
	unreachable, prohibited, rejected, far := ns.BehindRouter(t), ns.BehindRouter(t), ns.BehindRouter(t), ns.BehindRouter(t)
	ns.Route(t, "unreachable", unreachable.String()+"/32")
	ns.Route(t, "prohibit", prohibited.String()+"/32")
	ns.ForwardBack(t, rejected)
	ns.ForwardBack(t, far)
	ns.Nft(t, fmt.Sprintf(`table inet t {
	chain relay {
		type filter hook forward priority 0;
		ip daddr %s reject with icmp type host-unreachable
	}
}`, rejected))

	return router, []icmpErrorCase{
		{"unreachable route", unreachable, 64, probe.ErrUnreachable, 1},
		{"prohibit route", prohibited, 64, probe.ErrUnreachable, 13},
		{"nftables reject", rejected, 64, probe.ErrUnreachable, 1},
		{"ttl 1", far, 1, probe.ErrTTLExceeded, 0},
	}
}
