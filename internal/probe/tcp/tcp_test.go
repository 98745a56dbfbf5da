package tcp

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	promconfig "github.com/prometheus/common/config"
	"go.opentelemetry.io/otel/attribute"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probe/tlsinfo/tlstest"
	"github.com/netpulse/netpulse/internal/testutil"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// serve accepts connections on a loopback port and hands each to handle;
// it returns host:port.
func serve(t *testing.T, wrap func(net.Listener) net.Listener, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	if wrap != nil {
		ln = wrap(ln)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// banner is a service that greets with an SMTP-like banner, answers EHLO
// with 250 and closes.
func banner(c net.Conn) {
	io.WriteString(c, "220 mail.test ESMTP ready\r\n")
	r := bufio.NewReader(c)
	line, _ := r.ReadString('\n')
	if strings.HasPrefix(line, "EHLO ") {
		io.WriteString(c, "250-mail.test\r\n250 SIZE 1000\r\n")
	}
}

type run struct {
	values probe.Values
	err    error
	errTyp string
	tel    *testutil.Telemetry
	target *probe.Target
}

func probeOnce(t *testing.T, cfg Config, host, dns string, timeout time.Duration) run {
	t.Helper()
	tel := testutil.NewTelemetry(t)
	cfg.Settings.Defaults()
	p, err := New(cfg, probe.Deps{Meters: tel.Meters, Tracers: tel.Traces, Logger: quiet,
		Net: network.New(network.NewResolver(dns), tel.Traces)})
	if err != nil {
		t.Fatal(err)
	}
	target := probe.NewTarget(config.Probe{Name: "svc", Type: TypeName}, config.Target{Name: "t", Host: host})
	ctx, span := tel.Traces.Tracer("test").Start(context.Background(), "run")
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := p.Probe(ctx, target)
	span.End()
	return run{values: v, err: err, errTyp: probe.ErrorType(ctx, err), tel: tel, target: target}
}

func TestConnect(t *testing.T) {
	addr := serve(t, nil, func(net.Conn) {})
	r := probeOnce(t, Config{}, addr, "", 2*time.Second)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if c := r.values["connect_seconds"]; c <= 0 || c > 1 || r.values["duration_seconds"] < c {
		t.Errorf("values %v: want a connect time and a total at least as long", r.values)
	}
	m := r.tel.Collect(t)
	if v, ok := testutil.Value(m["netpulse.tcp.duration"], KeyPhase.String("connect")); !ok || v <= 0 {
		t.Errorf("netpulse.tcp.duration{phase=connect} = %g, %v", v, ok)
	}
	if _, ok := testutil.Value(m["netpulse.tcp.duration"], KeyPhase.String("tls")); ok {
		t.Error("a tls phase without tls")
	}
	names := map[string]bool{}
	for _, s := range r.tel.Spans.Ended() {
		names[s.Name()] = true
	}
	if !names["resolve"] || !names["connect"] {
		t.Errorf("spans %v: want resolve and connect", names)
	}
}

// Each failure maps to its error type.
func TestFailures(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	dns := testutil.DNSServer(t, map[string]netip.Addr{})
	silent := serve(t, nil, func(c net.Conn) { io.Copy(io.Discard, c) }) // holds the connection until the client closes
	hangup := serve(t, nil, func(c net.Conn) { io.WriteString(c, "hello\n") })
	for _, c := range []struct {
		name, host, want string
		cfg              Config
	}{
		{"refused", closed, probe.ErrRefused, Config{}},
		{"resolve", "missing.test:25", probe.ErrResolve, Config{}},
		{"expect closed", hangup, ErrExpect, Config{QueryResponse: []Step{{Expect: "^SSH-"}}}},
		{"expect silent", silent, probe.ErrTimeout, Config{QueryResponse: []Step{{Expect: "^SSH-"}}}},
		{"tls on plain text", hangup, ErrTLS, Config{TLS: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := probeOnce(t, c.cfg, c.host, dns, 500*time.Millisecond)
			if r.errTyp != c.want {
				t.Errorf("error type %q (%v), want %q", r.errTyp, r.err, c.want)
			}
		})
	}
}

// An SMTP-like exchange: the banner, EHLO, the reply's last line.
func TestQueryResponse(t *testing.T) {
	addr := serve(t, nil, banner)
	cfg := Config{QueryResponse: []Step{{Expect: "^220 ", Send: "EHLO netpulse"}, {Expect: "^250 "}}}
	r := probeOnce(t, cfg, addr, "", 2*time.Second)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if _, ok := r.values["exchange_seconds"]; !ok {
		t.Errorf("values %v: no exchange time", r.values)
	}
	cfg.QueryResponse[1].Expect = "^354 "
	if r := probeOnce(t, cfg, addr, "", 2*time.Second); r.errTyp != ErrExpect {
		t.Errorf("unexpected reply: error type %q (%v), want expect", r.errTyp, r.err)
	}
}

// TLS: a chain from the test CA verifies with its ca_file; without it the
// run fails as tls but still reports the certificate's expiry; with
// insecure_skip_verify it succeeds, unverified.
func TestTLS(t *testing.T) {
	ca := tlstest.NewCA(t)
	expiry := time.Now().Add(72 * time.Hour).Truncate(time.Second)
	cert := ca.Issue(t, expiry, "127.0.0.1", "svc.test")
	addr := serve(t, func(ln net.Listener) net.Listener {
		return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
	}, func(c net.Conn) {
		io.WriteString(c, "SSH-2.0-test\r\n")
		io.Copy(io.Discard, c)
	})
	dns := testutil.DNSServer(t, map[string]netip.Addr{"svc.test": netip.MustParseAddr("127.0.0.1")})
	_, port, _ := net.SplitHostPort(addr)
	for _, c := range []struct {
		name, host   string
		tls          promconfig.TLSConfig
		wantErr      string
		wantVerified float64
	}{
		{"ca_file", addr, promconfig.TLSConfig{CAFile: ca.File}, "", 1},
		{"by name", "svc.test:" + port, promconfig.TLSConfig{CAFile: ca.File}, "", 1},
		{"wrong server_name", addr, promconfig.TLSConfig{CAFile: ca.File, ServerName: "other.test"}, ErrTLS, 0},
		{"system roots", addr, promconfig.TLSConfig{}, ErrTLS, 0},
		{"insecure_skip_verify", addr, promconfig.TLSConfig{InsecureSkipVerify: true}, "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{TLS: true, TLSConfig: c.tls, QueryResponse: []Step{{Expect: "^SSH-2.0-"}}}
			r := probeOnce(t, cfg, c.host, dns, 2*time.Second)
			if r.errTyp != c.wantErr {
				t.Fatalf("error type %q (%v), want %q", r.errTyp, r.err, c.wantErr)
			}
			if got := r.values["tls_cert_expiry_timestamp_seconds"]; got != float64(expiry.Unix()) {
				t.Errorf("expiry %v, want %d (the leaf, earlier than the CA)", got, expiry.Unix())
			}
			if r.values["tls_verified"] != c.wantVerified {
				t.Errorf("verified %v, want %v", r.values["tls_verified"], c.wantVerified)
			}
			m := r.tel.Collect(t)
			if v, ok := testutil.Value(m["netpulse.tls.cert_expiry_timestamp"]); !ok || v != float64(expiry.Unix()) {
				t.Errorf("netpulse.tls.cert_expiry_timestamp = %g, %v", v, ok)
			}
			if _, ok := testutil.Value(m["netpulse.tls.info"], attribute.String("tls.protocol.version", "1.3")); !ok {
				t.Error("netpulse.tls.info has no tls.protocol.version=1.3 series")
			}
		})
	}
}

// A handshake that never happens (refused) leaves no certificate gauges.
func TestNoTLSFactsWithoutHandshake(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	r := probeOnce(t, Config{TLS: true}, closed, "", time.Second)
	if _, ok := testutil.Value(r.tel.Collect(t)["netpulse.tls.verified"]); ok || r.errTyp != probe.ErrRefused {
		t.Errorf("refused run: error type %q, tls gauge present %v", r.errTyp, ok)
	}
}

// source and ip_version come from the platform's dialer: the server sees
// the configured source address; ip_version 6 cannot reach an IPv4 literal.
func TestSourceAndFamily(t *testing.T) {
	peers := make(chan string, 1)
	addr := serve(t, nil, func(c net.Conn) { peers <- c.RemoteAddr().(*net.TCPAddr).IP.String() })
	r := probeOnce(t, Config{Settings: network.Settings{Source: "127.0.0.2"}}, addr, "", 2*time.Second)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := <-peers; got != "127.0.0.2" {
		t.Errorf("the server saw %s, want the source 127.0.0.2", got)
	}
	if r := probeOnce(t, Config{Settings: network.Settings{IPVersion: network.IPv6}}, addr, "", 2*time.Second); r.errTyp != probe.ErrResolve {
		t.Errorf("ip_version 6 to an IPv4 address: %q (%v), want resolve", r.errTyp, r.err)
	}
}
