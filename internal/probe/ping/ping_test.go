package ping

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/testutil"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newTestProber(t *testing.T, cfg Config, dns string) (*Prober, *testutil.Telemetry) {
	t.Helper()
	tel := testutil.NewTelemetry(t)
	p, err := New(cfg, testDeps(t, tel.Meters, tel.Traces, dns))
	if err != nil {
		t.Fatal(err)
	}
	return p, tel
}

// testDeps are a prober's dependencies with names resolved by dns (empty:
// the system's resolver).
func testDeps(t testing.TB, mp metric.MeterProvider, tp trace.TracerProvider, dns string) probe.Deps {
	shared := &probe.Shared{}
	t.Cleanup(func() { _ = shared.Close() })
	return probe.Deps{Meters: mp, Tracers: tp, Logger: quiet, Net: network.New(network.NewResolver(dns), tp),
		Shared: shared}
}

func pingConfig(privileged string) Config {
	return Config{Settings: network.Settings{IPVersion: "auto"}, Count: 5, PacketInterval: 10 * time.Millisecond,
		Size: 56, TTL: 64, Privileged: privileged}
}

// rawAllowed reports whether this process may open raw ICMP sockets.
func rawAllowed() bool { return os.Geteuid() == 0 }

func TestPingLoopback(t *testing.T) {
	for _, mode := range []string{"true", "false", "auto"} {
		for _, host := range []string{"127.0.0.1", "::1"} {
			t.Run(fmt.Sprintf("privileged=%s/%s", mode, host), func(t *testing.T) {
				switch mode {
				case "true":
					testutil.Need(t, rawAllowed(), "raw ICMP needs root")
				case "false":
					testutil.Need(t, testutil.DatagramICMPAllowed(), `ICMP datagram sockets need sysctl -w net.ipv4.ping_group_range="0 2147483647"`)
				}
				p, tel := newTestProber(t, pingConfig(mode), "")
				target := probe.NewTarget(config.Probe{Name: "lo", Type: "ping"}, config.Target{Name: host, Host: host})
				ctx, span := tel.Traces.Tracer("test").Start(context.Background(), "run")
				ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				v, err := p.Probe(ctx, target)
				span.End()
				if err != nil {
					t.Fatalf("ping %s: %v", host, err)
				}
				if v["packets_sent"] != 5 || v["packets_received"] != 5 || v["loss_ratio"] != 0 {
					t.Errorf("values = %v, want 5 sent, 5 received, loss 0", v)
				}
				// Loopback RTTs are tens of microseconds; anything above 50 ms means
				// the measurement includes something other than the round trip.
				if avg := v["rtt_avg_seconds"]; avg <= 0 || avg > 0.05 {
					t.Errorf("avg RTT %gs on loopback", avg)
				}

				metrics := tel.Collect(t)
				who := attribute.String("target.name", host)
				if n, _ := testutil.Value(metrics["netpulse.ping.rtt"], who); n != 5 {
					t.Errorf("RTT histogram has %g observations, want 5", n)
				}
				if n, _ := testutil.Value(metrics["netpulse.ping.packets.sent"], who); n != 5 {
					t.Errorf("packets sent counter = %g, want 5", n)
				}
				if loss, ok := testutil.Value(metrics["netpulse.ping.loss"], who); !ok || loss != 0 {
					t.Errorf("loss gauge = %g (present %v), want 0", loss, ok)
				}
				if _, ok := testutil.Value(metrics["netpulse.ping.jitter"], who); !ok {
					t.Error("jitter gauge missing")
				}
				names := map[string]bool{}
				for _, s := range tel.Spans.Ended() {
					names[s.Name()] = true
				}
				if !names["resolve"] || !names["echo"] {
					t.Errorf("child spans %v, want resolve and echo", names)
				}
			})
		}
	}
}

func TestPingResolvesNameOnEveryRun(t *testing.T) {
	testutil.Need(t, rawAllowed(), "raw ICMP needs root")
	dns := testutil.DNSServer(t, map[string]netip.Addr{"router.test": netip.MustParseAddr("127.0.0.2")})
	p, tel := newTestProber(t, pingConfig("true"), dns)
	target := probe.NewTarget(config.Probe{Name: "lan", Type: "ping"}, config.Target{Name: "router", Host: "router.test"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := p.Probe(ctx, target); err != nil {
		t.Fatalf("ping router.test: %v", err)
	}
	var resolved string
	for _, s := range tel.Spans.Ended() {
		for _, kv := range s.Attributes() {
			if s.Name() == "resolve" && kv.Key == "network.peer.address" {
				resolved = kv.Value.AsString()
			}
		}
	}
	if resolved != "127.0.0.2" {
		t.Errorf("resolve span address %q, want 127.0.0.2", resolved)
	}
}

func TestPingUnresolvable(t *testing.T) {
	dns := testutil.DNSServer(t, nil)
	p, tel := newTestProber(t, pingConfig("auto"), dns)
	target := probe.NewTarget(config.Probe{Name: "wan", Type: "ping"}, config.Target{Name: "gone", Host: "gone.test"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	v, err := p.Probe(ctx, target)
	if got := probe.ErrorType(ctx, err); got != probe.ErrResolve {
		t.Fatalf("error type %q (%v), want %q", got, err, probe.ErrResolve)
	}
	if !strings.Contains(err.Error(), dns) {
		t.Errorf("error %q does not name the configured DNS server %s", err, dns)
	}
	// Nothing was sent, so nothing was lost: no loss value, no loss gauge
	// (a DNS failure is not 100 % packet loss).
	if l, ok := v["loss_ratio"]; ok {
		t.Errorf("loss %g reported for an unresolvable target, want none", l)
	}
	if loss, ok := testutil.Value(tel.Collect(t)["netpulse.ping.loss"], attribute.String("target.name", "gone")); ok {
		t.Errorf("loss gauge %g present for a target that sent nothing", loss)
	}
}

func TestPingIPVersionWithoutAddress(t *testing.T) {
	dns := testutil.DNSServer(t, map[string]netip.Addr{"v4only.test": netip.MustParseAddr("127.0.0.1")})
	cfg := pingConfig("auto")
	cfg.IPVersion = "6"
	p, _ := newTestProber(t, cfg, dns)
	target := probe.NewTarget(config.Probe{Name: "wan", Type: "ping"}, config.Target{Name: "v4", Host: "v4only.test"})
	_, err := p.Probe(context.Background(), target)
	var pe *probe.Error
	if !errors.As(err, &pe) || pe.Type != probe.ErrResolve || !strings.Contains(err.Error(), "no IPv6 address") {
		t.Errorf("err = %v, want a resolve error saying there is no IPv6 address", err)
	}
}

// The configured source address is the one echo requests leave from: the
// reply comes back to it, so the run succeeds, and an address the host does
// not have fails the run as a network error.
func TestPingSourceAddress(t *testing.T) {
	testutil.Need(t, rawAllowed(), "raw ICMP needs root")
	target := probe.NewTarget(config.Probe{Name: "lo", Type: "ping"}, config.Target{Name: "lo", Host: "127.0.0.1"})
	// 198.19.255.255 is the last address of the test range, which the
	// namespace helpers never assign: binding to it fails before any send.
	for source, wantErr := range map[string]string{"127.0.0.2": "", "198.19.255.255": probe.ErrNetwork} {
		cfg := pingConfig("true")
		cfg.Source = source
		p, _ := newTestProber(t, cfg, "")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		v, err := p.Probe(ctx, target)
		got := probe.ErrorType(ctx, err)
		cancel()
		if got != wantErr {
			t.Errorf("source %s: error type %q (%v), want %q", source, got, err, wantErr)
		}
		if wantErr == "" && v["packets_received"] != 5 {
			t.Errorf("source %s: values %v", source, v)
		}
	}
}
