package http

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/history"
	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probe/tlsinfo/tlstest"
	"github.com/netpulse/netpulse/internal/testutil"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// slowFirstByte is how long /slow waits before answering: the server's
// behaviour under test, not synchronisation.
const slowFirstByte = 150 * time.Millisecond

// handler serves the paths the tests probe.
func handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s", r.Proto)
	})
	mux.HandleFunc("/redirect/{n}", func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscan(r.PathValue("n"), &n)
		if n <= 1 {
			http.Redirect(w, r, "/", http.StatusFound)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/redirect/%d", n-1), http.StatusFound)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(slowFirstByte):
		case <-r.Context().Done():
		}
		io.WriteString(w, "late")
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		var code int
		fmt.Sscan(r.PathValue("code"), &code)
		w.WriteHeader(code)
	})
	mux.HandleFunc("/auth", func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "s3cret" || r.Header.Get("X-Api-Key") != "k3y" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Method", r.Method)
		io.Copy(w, r.Body)
	})
	return mux
}

type servers struct {
	plain, tls *httptest.Server
	ca         *tlstest.CA
	expiry     time.Time
}

// start runs an HTTP server (HTTP/1.1 and h2c) and an HTTPS server
// (HTTP/1.1 and HTTP/2) with a certificate from a test CA that expires in
// three days.
func start(t *testing.T) servers {
	s := servers{ca: tlstest.NewCA(t), expiry: time.Now().Add(72 * time.Hour).Truncate(time.Second)}
	s.plain = httptest.NewUnstartedServer(handler())
	s.plain.Config.Protocols = new(http.Protocols)
	s.plain.Config.Protocols.SetHTTP1(true)
	s.plain.Config.Protocols.SetUnencryptedHTTP2(true)
	s.plain.Start()
	t.Cleanup(s.plain.Close)
	s.tls = httptest.NewUnstartedServer(handler())
	s.tls.EnableHTTP2 = true
	s.tls.TLS = &tls.Config{Certificates: []tls.Certificate{s.ca.Issue(t, s.expiry, "127.0.0.1", "web.test")}}
	s.tls.StartTLS()
	t.Cleanup(s.tls.Close)
	return s
}

type run struct {
	values probe.Values
	err    error
	errTyp string
	tel    *testutil.Telemetry
}

// probeOnce decodes block as a probe's http block (defaults and
// validation included), and runs it once against url.
func probeOnce(t *testing.T, block, url string, timeout time.Duration) run {
	t.Helper()
	return probeConfig(t, parse(t, block, url), timeout)
}

// probeConfig runs a parsed probe once against its first target.
func probeConfig(t *testing.T, pc config.Probe, timeout time.Duration) run {
	t.Helper()
	tel := testutil.NewTelemetry(t)
	dns := testutil.DNSServer(t, map[string]netip.Addr{"web.test": netip.MustParseAddr("127.0.0.1")})
	p, err := New(*pc.Settings.(*Config), probe.Deps{Meters: tel.Meters, Tracers: tel.Traces, Logger: quiet,
		Net: network.New(network.NewResolver(dns), tel.Traces)})
	if err != nil {
		t.Fatal(err)
	}
	target := probe.NewTarget(pc, pc.Targets[0])
	ctx, span := tel.Traces.Tracer("test").Start(context.Background(), "run")
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := p.Probe(ctx, target)
	span.End()
	return run{values: v, err: err, errTyp: probe.ErrorType(ctx, err), tel: tel}
}

func parse(t *testing.T, block, url string) config.Probe {
	t.Helper()
	yml := fmt.Sprintf("probes: [{name: web, type: http, targets: [{host: %q}], http: {%s}}]", url, block)
	cfg, err := config.Parse([]byte(yml), probe.NewRegistry(Type))
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Probes[0]
}

func TestHTTPS(t *testing.T) {
	s := start(t)
	_, port, _ := net.SplitHostPort(s.tls.Listener.Addr().String())
	for _, c := range []struct {
		name, block, url string
		version          float64
	}{
		{"HTTP/2 by ALPN", fmt.Sprintf("tls_config: {ca_file: %q}", s.ca.File), s.tls.URL, 2},
		{"HTTP/1.1 only", fmt.Sprintf(`tls_config: {ca_file: %q}, http_version: "1.1"`, s.ca.File), s.tls.URL, 1.1},
		{"by name", fmt.Sprintf("tls_config: {ca_file: %q}", s.ca.File), "https://web.test:" + port + "/", 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := probeOnce(t, c.block, c.url, 3*time.Second)
			if r.err != nil {
				t.Fatal(r.err)
			}
			v := r.values
			if v["status_code"] != 200 || v["http_version"] != c.version || v["tls_verified"] != 1 ||
				v["tls_cert_expiry_timestamp_seconds"] != float64(s.expiry.Unix()) {
				t.Errorf("values %v: want 200, HTTP %v, verified, expiry %d", v, c.version, s.expiry.Unix())
			}
			if want := len(map[float64]string{2: "hello from HTTP/2.0", 1.1: "hello from HTTP/1.1"}[c.version]); v["content_length_bytes"] != float64(want) {
				t.Errorf("content length %v, want %d", v["content_length_bytes"], want)
			}
			for _, ph := range []string{"resolve", "connect", "tls", "processing", "transfer"} {
				if _, ok := v[ph+"_seconds"]; !ok {
					t.Errorf("no %s phase in %v", ph, v)
				}
			}
			m := r.tel.Collect(t)
			if _, ok := testutil.Value(m["netpulse.http.duration"], KeyPhase.String("tls")); !ok {
				t.Error("no netpulse.http.duration{phase=tls}")
			}
			if got, ok := testutil.Value(m["netpulse.tls.cert_expiry_timestamp"]); !ok || got != float64(s.expiry.Unix()) {
				t.Errorf("netpulse.tls.cert_expiry_timestamp = %v, %v", got, ok)
			}
			spans := byName(r.tel.Spans.Ended())
			for _, n := range []string{"resolve", "GET", "connect", "tls", "processing", "transfer"} {
				if spans[n] == nil {
					t.Errorf("no %s span (have %v)", n, keys(spans))
				}
			}
			if get := spans["GET"]; get != nil && attr(get, "http.response.status_code") != "200" {
				t.Errorf("GET span attributes %v", get.Attributes())
			}
		})
	}
}

// h2c: http_version 2 over http:// speaks HTTP/2 with prior knowledge.
func TestH2C(t *testing.T) {
	s := start(t)
	r := probeOnce(t, `http_version: "2"`, s.plain.URL, 3*time.Second)
	if r.err != nil || r.values["http_version"] != 2 {
		t.Errorf("h2c: %v %v", r.values, r.err)
	}
}

// Redirects are followed up to max_redirects, their phases summed; a
// request span per hop.
func TestRedirects(t *testing.T) {
	s := start(t)
	r := probeOnce(t, "", s.plain.URL+"/redirect/3", 3*time.Second)
	if r.err != nil || r.values["redirects_followed"] != 3 || r.values["status_code"] != 200 {
		t.Fatalf("values %v, %v: want 3 redirects then 200", r.values, r.err)
	}
	gets := 0
	for _, sp := range r.tel.Spans.Ended() {
		if sp.Name() == "GET" {
			gets++
		}
	}
	if gets != 4 {
		t.Errorf("%d GET spans, want 4 (one per hop)", gets)
	}
	if r := probeOnce(t, "max_redirects: 2", s.plain.URL+"/redirect/3", 3*time.Second); r.errTyp != ErrRedirect {
		t.Errorf("over the limit: %q (%v), want redirect", r.errTyp, r.err)
	}
	r = probeOnce(t, `max_redirects: 0, valid_status_codes: ["300-399"]`, s.plain.URL+"/redirect/1", 3*time.Second)
	if r.err != nil || r.values["status_code"] != 302 || r.values["redirects_followed"] != 0 {
		t.Errorf("not followed: %v %v", r.values, r.err)
	}
}

// The processing phase is the server's think time.
func TestSlowFirstByte(t *testing.T) {
	s := start(t)
	r := probeOnce(t, "", s.plain.URL+"/slow", 3*time.Second)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if p := r.values["processing_seconds"]; p < slowFirstByte.Seconds() {
		t.Errorf("processing %gs, want at least the server's %s", p, slowFirstByte)
	}
	if r := probeOnce(t, "", s.plain.URL+"/slow", slowFirstByte/3); r.errTyp != probe.ErrTimeout {
		t.Errorf("deadline before the first byte: %q (%v), want timeout", r.errTyp, r.err)
	}
}

// Each failure mode maps to its error type.
func TestFailures(t *testing.T) {
	s := start(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	notHTTP := serveBanner(t)
	for _, c := range []struct{ name, block, url, want string }{
		{"refused", "", "http://" + closed + "/", probe.ErrRefused},
		{"resolve", "", "http://missing.test/", probe.ErrResolve},
		{"status", "", s.plain.URL + "/status/503", ErrStatus},
		{"status range", `valid_status_codes: ["200", "500-502"]`, s.plain.URL + "/status/503", ErrStatus},
		{"body matches", `fail_if_body_matches_regexp: ["hello"]`, s.plain.URL, ErrBody},
		{"body does not match", `fail_if_body_not_matches_regexp: ["^goodbye"]`, s.plain.URL, ErrBody},
		{"body too large", "body_size_limit: 5B", s.plain.URL, ErrBody},
		{"untrusted certificate", "", s.tls.URL, ErrTLS},
		{"wrong name", fmt.Sprintf("tls_config: {ca_file: %q, server_name: other.test}", s.ca.File), s.tls.URL, ErrTLS},
		{"https to plain http", "", strings.Replace(s.plain.URL, "http:", "https:", 1), ErrTLS},
		{"not http", "", "http://" + notHTTP + "/", ErrProtocol},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := probeOnce(t, c.block, c.url, 2*time.Second)
			if r.errTyp != c.want {
				t.Errorf("error type %q (%v), want %q", r.errTyp, r.err, c.want)
			}
		})
	}
	// An untrusted chain still reports its expiry, unverified.
	r := probeOnce(t, "", s.tls.URL, 2*time.Second)
	if r.values["tls_verified"] != 0 || r.values["tls_cert_expiry_timestamp_seconds"] != float64(s.expiry.Unix()) {
		t.Errorf("untrusted: values %v", r.values)
	}
	if r := probeOnce(t, "tls_config: {insecure_skip_verify: true}", s.tls.URL, 2*time.Second); r.err != nil || r.values["tls_verified"] != 0 {
		t.Errorf("insecure_skip_verify: %v %v, want success, unverified", r.values, r.err)
	}
}

// A POST with a body and headers; the body comes back.
func TestMethodBodyHeaders(t *testing.T) {
	s := start(t)
	r := probeOnce(t, `method: post, body: "ping", fail_if_body_not_matches_regexp: ["^ping$"]`, s.plain.URL+"/echo", 2*time.Second)
	if r.err != nil || r.values["content_length_bytes"] != 4 {
		t.Errorf("POST: %v %v", r.values, r.err)
	}
}

// Credentials in the URL and secret-looking headers reach the server and
// nothing else: not the target's name or host, not the spans, not the
// debug view's rendering of the configuration.
func TestSecretsAreRedacted(t *testing.T) {
	s := start(t)
	u := strings.Replace(s.plain.URL, "http://", "http://alice:s3cret@", 1) + "/auth"
	block := `headers: {X-Api-Key: k3y, Authorization-Extra: hunter2, Accept: text/plain}`
	r := probeOnce(t, block, u, 2*time.Second)
	if r.err != nil {
		t.Fatalf("the server did not get the credentials: %v", r.err)
	}
	pc := parse(t, block, u)
	if h := pc.Targets[0].Host; strings.Contains(h, "s3cret") || !strings.Contains(h, "alice:xxxxx@") {
		t.Errorf("target host %q: want the password redacted", h)
	}
	if n := pc.Targets[0].Name; strings.Contains(n, "s3cret") {
		t.Errorf("target name %q shows the password", n)
	}
	for _, sp := range r.tel.Spans.Ended() {
		for _, kv := range sp.Attributes() {
			if v := kv.Value.String(); strings.Contains(v, "s3cret") || strings.Contains(v, "k3y") || strings.Contains(v, "hunter2") {
				t.Errorf("span %s attribute %s = %s shows a secret", sp.Name(), kv.Key, v)
			}
		}
	}
	if spans := byName(r.tel.Spans.Ended()); spans["GET"] == nil || !strings.Contains(attr(spans["GET"], "http.request.header.accept"), "text/plain") {
		t.Errorf("non-secret headers should stay visible on the request span")
	}
	// What the debug view shows (and the history stores) of a run's configuration.
	js, err := json.Marshal(history.RenderConfig(probe.NewTarget(pc, pc.Targets[0]).Config))
	if err != nil {
		t.Fatal(err)
	}
	out := string(js)
	if strings.Contains(out, "s3cret") || strings.Contains(out, "k3y") || strings.Contains(out, "hunter2") {
		t.Errorf("rendered configuration shows a secret:\n%s", out)
	}
}

// serveBanner is a TCP service that does not speak HTTP: it answers the
// request's first line with an SSH banner.
func serveBanner(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				bufio.NewReader(c).ReadString('\n')
				io.WriteString(c, "SSH-2.0-OpenSSH_9.2\r\n")
			}()
		}
	}()
	return ln.Addr().String()
}

func byName(spans []sdktrace.ReadOnlySpan) map[string]sdktrace.ReadOnlySpan {
	out := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		out[s.Name()] = s
	}
	return out
}

func keys(m map[string]sdktrace.ReadOnlySpan) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if kv.Key == attribute.Key(key) {
			return kv.Value.String()
		}
	}
	return ""
}

// proxy_url: the request goes through a forward proxy (on loopback) that
// relays it to the target.
func TestProxy(t *testing.T) {
	s := start(t)
	var relayed atomic.Int64
	relay := &http.Transport{}
	t.Cleanup(relay.CloseIdleConnections)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.IsAbs() {
			http.Error(w, "not a proxy request", http.StatusBadRequest)
			return
		}
		relayed.Add(1)
		out := r.Clone(r.Context())
		out.RequestURI = ""
		resp, err := relay.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(proxy.Close)
	r := probeOnce(t, fmt.Sprintf("proxy_url: %q", proxy.URL), s.plain.URL+"/", 2*time.Second)
	if r.err != nil || relayed.Load() != 1 || r.values["status_code"] != 200 {
		t.Errorf("through the proxy: %v %v, %d requests relayed", r.values, r.err, relayed.Load())
	}
}

// The requests leave through the platform's dialer: from the configured
// source address.
func TestSource(t *testing.T) {
	peers := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		peers <- host
	}))
	t.Cleanup(srv.Close)
	pc := parse(t, "", srv.URL)
	// 127.0.0.2 is not assigned (so check-config refuses it) but loopback
	// answers it: set after validation, as the network package's test does.
	pc.Settings.(*Config).Source = "127.0.0.2"
	r := probeConfig(t, pc, 2*time.Second)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := <-peers; got != "127.0.0.2" {
		t.Errorf("the server saw %s, want the source 127.0.0.2", got)
	}
}
