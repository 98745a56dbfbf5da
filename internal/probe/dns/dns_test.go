package dns

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	promconfig "github.com/prometheus/common/config"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/testutil"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testConfig is a defaulted block asking name of the given type.
func testConfig(name, qtype string) Config {
	c := Config{QueryName: name, QueryType: qtype}
	c.Defaults(nil)
	return c
}

// testNames are the names the agent's resolver knows in these tests: a
// server given by name is resolved with it, like any probe's target.
var testNames = map[string]netip.Addr{"dot.test": netip.MustParseAddr("127.0.0.1")}

func newTestProber(t testing.TB, cfg Config) (*Prober, *testutil.Telemetry) {
	t.Helper()
	tel := testutil.NewTelemetry(t)
	p, err := New(cfg, probe.Deps{Meters: tel.Meters, Tracers: tel.Traces, Logger: quiet,
		Net: network.New(network.NewResolver(testutil.DNSServer(t, testNames)), tel.Traces)})
	if err != nil {
		t.Fatal(err)
	}
	return p, tel
}

// targets live as long as the test binary, as an agent's do: a prober
// keeps its last-answer gauges by target.
var targets = map[string]*probe.Target{}

// run probes host once within timeout and returns the values, the error
// and its error type as the harness would count it.
func run(t *testing.T, p *Prober, tel *testutil.Telemetry, host string, timeout time.Duration) (probe.Values, error, string) {
	t.Helper()
	target := targets[host]
	if target == nil {
		target = probe.NewTarget(config.Probe{Name: "dns", Type: TypeName}, config.Target{Name: "server", Host: host})
		targets[host] = target
	}
	ctx, span := tel.Traces.Tracer("test").Start(context.Background(), "run")
	defer span.End()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := p.Probe(ctx, target)
	return v, err, probe.ErrorType(ctx, err)
}

// Every query type is asked and its answer checked by value.
func TestQueryTypes(t *testing.T) {
	srv := startServer(t, &testServer{})
	for typ, rr := range testZone {
		t.Run(typ, func(t *testing.T) {
			cfg := testConfig("ok.test", typ)
			value := strings.SplitN(rr, " ", 2)[1]
			cfg.Answers = AnswerChecks{Min: 1, Max: new(1), MustMatch: []string{"^" + regexp.QuoteMeta(value) + "$"},
				MustNotMatch: []string{"198\\.51\\.100\\."}}
			cfg.Authoritative = true
			p, tel := newTestProber(t, cfg)
			v, err, _ := run(t, p, tel, srv.addr, 5*time.Second)
			if err != nil {
				t.Fatalf("%s ok.test: %v", typ, err)
			}
			if v["answer_records"] != 1 || v["response_code"] != 0 || v["lookup_seconds"] <= 0 || v["truncated_responses"] != 0 {
				t.Errorf("values %v", v)
			}
		})
	}
}

// Each failure mode maps to its bounded error type.
func TestFailureModes(t *testing.T) {
	srv := startServer(t, &testServer{})
	closedUDP := func() string {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().String()
	}()
	closedTCP := testutil.FreeAddr(t)
	silent, err := net.ListenPacket("udp", "127.0.0.1:0") // reads nothing, answers nothing
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	garbage, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer garbage.Close()
	go func() { // answers every query with three bytes
		buf := make([]byte, 1500)
		for {
			_, from, err := garbage.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = garbage.WriteTo([]byte("abc"), from)
		}
	}()
	for _, c := range []struct {
		name, host, query, want string
		edit                    func(*Config)
	}{
		{"nxdomain", srv.addr, "nx.test", ErrRcode, nil},
		{"servfail", srv.addr, "fail.test", ErrRcode, nil},
		{"nxdomain expected", srv.addr, "nx.test", "", func(c *Config) { c.ValidRcodes = []string{"NXDOMAIN"} }},
		{"too few answers", srv.addr, "nx.test", ErrAnswer, func(c *Config) { c.ValidRcodes = []string{"nxdomain"}; c.Answers.Min = 1 }},
		{"too many answers", srv.addr, "big.test", ErrAnswer, func(c *Config) { c.Answers.Max = new(2) }},
		{"must match", srv.addr, "ok.test", ErrAnswer, func(c *Config) { c.Answers.MustMatch = []string{`^192\.0\.2\.9$`} }},
		{"must not match", srv.addr, "ok.test", ErrAnswer, func(c *Config) { c.Answers.MustNotMatch = []string{`^192\.0\.2\.`} }},
		{"not authoritative", srv.addr, "nonauth.test", ErrNotAuthoritative, func(c *Config) { c.Authoritative = true }},
		{"truncated over tcp", srv.addr, "alwaystc.test", ErrTruncated, func(c *Config) { c.Transport = TransportTCP }},
		{"truncated after fallback", srv.addr, "alwaystc.test", ErrTruncated, nil},
		{"silent server", silent.LocalAddr().String(), "ok.test", probe.ErrNoReply, nil},
		{"hanging server over tcp", srv.addr, "hang.test", probe.ErrNoReply, func(c *Config) { c.Transport = TransportTCP }},
		{"udp port closed", closedUDP, "ok.test", probe.ErrRefused, nil},
		{"tcp port closed", closedTCP, "ok.test", probe.ErrRefused, func(c *Config) { c.Transport = TransportTCP }},
		{"not dns", garbage.LocalAddr().String(), "ok.test", ErrProtocol, nil},
		{"server name does not resolve", "gone.test:53", "ok.test", probe.ErrResolve, nil},
		{"server not of ip_version", srv.addr, "ok.test", probe.ErrResolve, func(c *Config) { c.IPVersion = "6" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(c.query, "A")
			if c.edit != nil {
				c.edit(&cfg)
			}
			p, tel := newTestProber(t, cfg)
			_, err, typ := run(t, p, tel, c.host, time.Second)
			if typ != c.want {
				t.Errorf("error type %q (%v), want %q", typ, err, c.want)
			}
		})
	}
}

// The question leaves from the configured source, over UDP and TCP: the
// platform's dialer, as for every probe type.
func TestSource(t *testing.T) {
	srv := startServer(t, &testServer{})
	for _, transport := range []string{TransportUDP, TransportTCP} {
		cfg := testConfig("ok.test", "A")
		cfg.Transport, cfg.Source = transport, "127.0.0.2"
		p, tel := newTestProber(t, cfg)
		if _, err, _ := run(t, p, tel, srv.addr, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if got := srv.client.Load(); got != "127.0.0.2" {
			t.Errorf("%s: the server saw the query from %v, want 127.0.0.2", transport, got)
		}
	}
}

// A truncated UDP answer is asked again over TCP; the fallback is counted
// and the TCP answer checked.
func TestTruncatedFallsBackToTCP(t *testing.T) {
	srv := startServer(t, &testServer{})
	cfg := testConfig("big.test", "A")
	cfg.Answers.Min = 3
	p, tel := newTestProber(t, cfg)
	v, err, _ := run(t, p, tel, srv.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v["truncated_responses"] != 1 || v["answer_records"] != 3 {
		t.Errorf("values %v, want 1 truncated response and 3 answers", v)
	}
	if srv.udp.Load() != 1 || srv.tcp.Load() != 1 {
		t.Errorf("server saw %d UDP and %d TCP queries, want one each", srv.udp.Load(), srv.tcp.Load())
	}
	ms := tel.Collect(t)
	if n, ok := testutil.Value(ms["netpulse.dns.truncated"]); !ok || n != 1 {
		t.Errorf("netpulse.dns.truncated = %v (%v), want 1", n, ok)
	}
	var transports []string
	for _, s := range tel.Spans.Ended() {
		if s.Name() == "query" {
			for _, a := range s.Attributes() {
				if a.Key == "network.transport" {
					transports = append(transports, a.Value.AsString())
				}
			}
		}
	}
	if !slices.Equal(transports, []string{"udp", "tcp"}) {
		t.Errorf("query spans over %v, want udp then tcp", transports)
	}
}

// A slow answer within the timeout succeeds and its lookup time covers
// the server's delay; the metrics carry the answer.
func TestSlowAnswer(t *testing.T) {
	srv := startServer(t, &testServer{delay: 200 * time.Millisecond})
	p, tel := newTestProber(t, testConfig("slow.test", "A"))
	v, err, _ := run(t, p, tel, srv.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v["lookup_seconds"] < 0.2 {
		t.Errorf("lookup %gs, want at least the server's 0.2s", v["lookup_seconds"])
	}
	ms := tel.Collect(t)
	if got, ok := testutil.Value(ms["netpulse.dns.lookup.time"]); !ok || got < 0.2 {
		t.Errorf("netpulse.dns.lookup.time = %v (%v)", got, ok)
	}
	if n, ok := testutil.Value(ms["netpulse.dns.responses"], attribute.String("rcode", "NOERROR")); !ok || n != 1 {
		t.Errorf("netpulse.dns.responses{rcode=NOERROR} = %v (%v), want 1", n, ok)
	}
	// An answer slower than the run is no answer: no_reply, and the
	// last-answer gauges go away.
	p.cfg.QueryName = "hang.test"
	_, err, typ := run(t, p, tel, srv.addr, time.Second)
	if typ != probe.ErrNoReply {
		t.Errorf("no answer within the timeout: %q (%v), want no_reply", typ, err)
	}
	if _, ok := testutil.Value(tel.Collect(t)["netpulse.dns.lookup.time"]); ok {
		t.Error("netpulse.dns.lookup.time still reported after a run without answer")
	}
}

// DNS over TLS against a server whose certificate the test CA signed:
// verified with ca_file; refused without it or for another name.
func TestDNSOverTLS(t *testing.T) {
	ca := newTestCA(t)
	srv := startServer(t, &testServer{tlsConfig: &tls.Config{Certificates: []tls.Certificate{ca.Server}}})
	for _, c := range []struct {
		name string
		tls  promconfig.TLSConfig
		want string
	}{
		{"verified", promconfig.TLSConfig{CAFile: ca.CAFile}, ""},
		{"server name", promconfig.TLSConfig{CAFile: ca.CAFile, ServerName: "dot.test"}, ""},
		{"host name", promconfig.TLSConfig{CAFile: ca.CAFile}, ""}, // dot.test:port, verified by its name
		{"unknown CA", promconfig.TLSConfig{}, ErrTLS},
		{"wrong name", promconfig.TLSConfig{CAFile: ca.CAFile, ServerName: "other.test"}, ErrTLS},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig("ok.test", "A")
			cfg.Transport, cfg.TLS = TransportTLS, c.tls
			p, tel := newTestProber(t, cfg)
			host := srv.addr
			if c.name == "host name" {
				_, port, _ := net.SplitHostPort(srv.addr)
				host = net.JoinHostPort("dot.test", port)
			}
			_, err, typ := run(t, p, tel, host, 5*time.Second)
			if typ != c.want {
				t.Fatalf("error type %q (%v), want %q", typ, err, c.want)
			}
			if c.want != "" {
				return
			}
			for _, s := range tel.Spans.Ended() {
				if s.Name() == "query" && !slices.Contains(s.Attributes(), attribute.String("tls.protocol.version", "1.3")) {
					t.Errorf("query span without tls.protocol.version 1.3: %v", s.Attributes())
				}
			}
		})
	}
}

// "system" asks the servers of resolv.conf in turn: a silent first one
// costs its timeout, the second answers, and the run says which did.
func TestSystemServersInTurn(t *testing.T) {
	srv := startServer(t, &testServer{})
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	p, tel := newTestProber(t, testConfig("ok.test", "A"))
	p.systemServers = func() ([]string, time.Duration, error) {
		return []string{silent.LocalAddr().String(), srv.addr}, time.Second, nil
	}
	v, err, _ := run(t, p, tel, System, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v["servers_tried"] != 2 || v["lookup_seconds"] >= 1 {
		t.Errorf("values %v: want 2 servers tried, the lookup time of the second alone", v)
	}
	for _, s := range tel.Spans.Ended() {
		if s.Name() == "run" && !slices.Contains(s.Attributes(), attribute.String("dns.server", srv.addr)) {
			t.Errorf("run span does not name the server that answered (%s): %v", srv.addr, s.Attributes())
		}
	}
}

// resolv.conf's name servers, on the transport's port, and its timeout.
func TestSystemServersFromResolvConf(t *testing.T) {
	file := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(file, []byte("search lan\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions timeout:2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for transport, want := range map[string][]string{
		TransportUDP: {"192.0.2.53:53", "[2001:db8::53]:53"},
		TransportTLS: {"192.0.2.53:853", "[2001:db8::53]:853"},
	} {
		servers, wait, err := systemServers(file, transport)
		if err != nil || !slices.Equal(servers, want) || wait != 2*time.Second {
			t.Errorf("%s: %v, %s, %v; want %v, 2s", transport, servers, wait, err, want)
		}
	}
	if _, _, err := systemServers(filepath.Join(t.TempDir(), "none"), TransportUDP); probe.ErrorType(context.Background(), err) != probe.ErrResolve {
		t.Errorf("missing resolv.conf: %v, want a resolve error", err)
	}
}

func TestServerAddr(t *testing.T) {
	for host, want := range map[string]string{
		"192.0.2.1":        "192.0.2.1:53",
		"192.0.2.1:5353":   "192.0.2.1:5353",
		"::1":              "[::1]:53",
		"[::1]:5353":       "[::1]:5353",
		"dns.example":      "dns.example:53",
		"system":           "system",
		"dns.example:0":    "",
		"dns.example:http": "",
	} {
		got, err := ServerAddr(host, TransportUDP)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("ServerAddr(%q) = %q, %v; want %q", host, got, err, want)
		}
	}
	if got, _ := ServerAddr("192.0.2.1", TransportTLS); got != "192.0.2.1:853" {
		t.Errorf("ServerAddr over tls = %q, want port 853", got)
	}
}
