package speedtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/speedtestserver"
	"github.com/netpulse/netpulse/internal/tcpcc"
	"github.com/netpulse/netpulse/internal/testutil"
)

var quiet = slog.New(slog.DiscardHandler)

func startServer(t testing.TB, opts speedtestserver.Options) *speedtestserver.Server {
	t.Helper()
	s, err := speedtestserver.Listen("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func testConfig(d time.Duration) Config {
	yes := true
	return Config{Duration: d, MaxBytes: 1e12, Connections: 2, LatencyInterval: 50 * time.Millisecond,
		PacketLoss: &yes}
}

func newTestProber(t testing.TB, cfg Config, opts Options) (*Prober, *testutil.Telemetry) {
	t.Helper()
	tel := testutil.NewTelemetry(t)
	p, err := New("speed", cfg, probe.Deps{Meters: tel.Meters, Tracers: tel.Traces, Logger: quiet,
		Net: network.New(network.NewResolver(""), tel.Traces)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p, tel
}

func target(host string) *probe.Target {
	return probe.NewTarget(config.Probe{Name: "speed", Type: TypeName}, config.Target{Name: "lan", Host: host})
}

// A full run against the built-in server: every phase, its span, its
// metrics, and byte counts that agree with the server's.
func TestLoopbackRun(t *testing.T) {
	srv := startServer(t, speedtestserver.Options{})
	cfg := testConfig(2 * time.Second)
	p, tel := newTestProber(t, cfg, Options{})
	tg := target(srv.URL())
	ctx, span := tel.Traces.Tracer("test").Start(t.Context(), "speedtest speed")
	r, err := p.Measure(ctx, tg)
	span.End()
	if err != nil {
		t.Fatal(err)
	}
	st := srv.Stats()
	t.Logf("loopback: download %.0f Mbit/s, upload %.0f Mbit/s, idle %.3f ms, loaded %.3f/%.3f ms, RPM %.0f/%.0f, loss %v, bytes %d",
		r.Download.Rate*8/1e6, r.Upload.Rate*8/1e6, r.Idle.Mean*1e3, r.Download.Loaded.Mean*1e3, r.Upload.Loaded.Mean*1e3,
		r.Download.RPM, r.Upload.RPM, *r.PacketLoss, r.Bytes)

	if r.Server.ID != "Custom" || r.Server.Host != srv.Addr().String() {
		t.Errorf("server %+v", r.Server)
	}
	if r.Idle.Samples != 10 || r.Idle.Mean <= 0 || r.Idle.Mean > 0.05 {
		t.Errorf("idle latency %+v, want 10 samples under 50 ms", r.Idle)
	}
	if r.PacketLoss == nil || *r.PacketLoss != 0 {
		t.Errorf("packet loss %v, want 0 on loopback", r.PacketLoss)
	}
	for _, d := range []*Direction{r.Download, r.Upload} {
		// Loopback moves gigabits; 100 Mbit/s would mean the probe is the bottleneck.
		if d.Rate < 100e6/8 {
			t.Errorf("%s: %.0f Mbit/s on loopback", d.Name, d.Rate*8/1e6)
		}
		if d.Loaded.Samples < 5 || d.RPM <= 0 || d.LatencyIncrease < 0 {
			t.Errorf("%s: loaded latency %+v, RPM %g, increase %g", d.Name, d.Loaded, d.RPM, d.LatencyIncrease)
		}
		if d.Capped {
			t.Errorf("%s capped without a cap", d.Name)
		}
		if r := d.Responsiveness; r.ForeignRPM <= 0 || r.LoadedRPM <= 0 || r.Samples.TCP < 5 || r.Samples.Loaded < 5 ||
			r.Samples.TLS != 0 || !(r.Low <= r.RPM && r.RPM <= r.High) {
			t.Errorf("%s: responsiveness %+v", d.Name, r)
		}
	}
	// The client's counts (bodies plus HTTP headers) against the server's
	// (bodies): within 2 %, plus what the socket buffers of connections
	// cut at the end of a phase held (up to a few MB each on loopback; a
	// slow machine moves less, so it weighs more).
	inFlight := float64(cfg.Connections * 8 << 20)
	if diff := math.Abs(float64(r.Download.Bytes - st.BytesSent)); diff > 0.02*float64(st.BytesSent)+inFlight {
		t.Errorf("download: client read %d bytes, server wrote %d", r.Download.Bytes, st.BytesSent)
	}
	if diff := math.Abs(float64(r.Upload.Bytes - st.BytesReceived)); diff > 0.02*float64(st.BytesReceived)+inFlight {
		t.Errorf("upload: client wrote %d bytes, server read %d", r.Upload.Bytes, st.BytesReceived)
	}

	children := map[string]bool{}
	for _, s := range tel.Spans.Ended() {
		if s.Parent().SpanID() == span.SpanContext().SpanID() {
			children[s.Name()] = true
		}
	}
	for _, want := range []string{"server_selection", "latency", Download, Upload} {
		if !children[want] {
			t.Errorf("no child span %q (children: %v)", want, children)
		}
	}

	m := tel.Collect(t)
	dir := func(d string) attribute.KeyValue { return KeyDirection.String(d) }
	for _, d := range []string{Download, Upload} {
		if v, ok := testutil.Value(m["netpulse.speedtest.throughput"], dir(d)); !ok || v <= 0 {
			t.Errorf("throughput{%s} = %g, %v", d, v, ok)
		}
		if v, _ := testutil.Value(m["netpulse.speedtest.bytes"], dir(d)); v <= 0 {
			t.Errorf("bytes{%s} = %g", d, v)
		}
		if _, ok := testutil.Value(m["netpulse.speedtest.latency.increase"], dir(d)); !ok {
			t.Errorf("latency increase{%s} missing", d)
		}
		if _, ok := testutil.Value(m["netpulse.speedtest.responsiveness.rpm"], dir(d)); !ok {
			t.Errorf("responsiveness{%s} missing", d)
		}
		for _, c := range []string{"foreign", "loaded"} {
			if v, _ := testutil.Value(m["netpulse.speedtest.responsiveness.component"], dir(d), KeyComponent.String(c)); v <= 0 {
				t.Errorf("responsiveness component{%s,%s} = %g", d, c, v)
			}
		}
		if v, _ := testutil.Value(m["netpulse.speedtest.responsiveness.bound"], dir(d), KeyBound.String("low")); v <= 0 {
			t.Errorf("responsiveness bound{%s,low} = %g", d, v)
		}
	}
	for _, ph := range []string{Idle, Download, Upload} {
		if n, _ := testutil.Value(m["netpulse.speedtest.rtt"], KeyPhase.String(ph)); n == 0 {
			t.Errorf("no rtt observation for phase %s", ph)
		}
		if _, ok := testutil.Value(m["netpulse.speedtest.latency"], KeyPhase.String(ph)); !ok {
			t.Errorf("latency{phase=%s} missing", ph)
		}
	}
	if v, ok := testutil.Value(m["netpulse.speedtest.packet_loss"]); !ok || v != 0 {
		t.Errorf("packet loss gauge %g, %v", v, ok)
	}
	if v, _ := testutil.Value(m["netpulse.speedtest.budget.used"], KeyPeriod.String("day")); v != float64(r.Bytes) {
		t.Errorf("budget used today %g, want the run's %d bytes", v, r.Bytes)
	}
	if _, ok := m["netpulse.speedtest.budget.limit"]; ok && len(m["netpulse.speedtest.budget.limit"].Data.(metricdata.Gauge[float64]).DataPoints) > 0 {
		t.Error("budget limit exported without a budget")
	}
}

// max_bytes stops each transfer exactly at the cap: a 30 s transfer on
// loopback reaches 3 MB long before its end, however loaded the machine,
// and the application moves not a byte more (the meter refuses reads and
// writes past it), so the server receives no more either. The budget
// counts the bytes on the wire: at least what the application moved.
func TestByteCap(t *testing.T) {
	srv := startServer(t, speedtestserver.Options{})
	const limit = 3e6
	cfg := testConfig(30 * time.Second)
	cfg.MaxBytes = limit
	cfg.PacketLoss = new(bool)
	p, _ := newTestProber(t, cfg, Options{})
	r, err := p.Measure(t.Context(), target(srv.URL()))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*Direction{r.Download, r.Upload} {
		if !d.Capped || d.Rate <= 0 {
			t.Errorf("%s: capped %v, rate %g; want capped with a rate", d.Name, d.Capped, d.Rate)
		}
		if d.Bytes > limit || d.Bytes < limit-uploadWriteSize {
			t.Errorf("%s moved %d bytes with max_bytes %d", d.Name, d.Bytes, int64(limit))
		}
	}
	t.Logf("cap %d: download %d, upload %d bytes (overshoot %d, %d); the server received %d; on the wire %d (%.3f × the application's)",
		int64(limit), r.Download.Bytes, r.Upload.Bytes, r.Download.Bytes-limit, r.Upload.Bytes-limit, srv.Stats().BytesReceived,
		r.Bytes, float64(r.Bytes)/float64(r.Download.Bytes+r.Upload.Bytes))
	if st := srv.Stats(); st.BytesReceived > limit {
		t.Errorf("the server received %d bytes with max_bytes %d", st.BytesReceived, int64(limit))
	}
	// Bytes the client read and bytes the server read certainly crossed
	// the wire (written bytes still in a socket buffer when the cap closed
	// the connection did not).
	if crossed := r.Download.Bytes + srv.Stats().BytesReceived; r.Bytes < crossed {
		t.Errorf("the budget counted %d bytes on the wire, less than the %d that crossed it", r.Bytes, crossed)
	}
}

// A server that cannot be reached, or does not speak the protocol, fails
// the run within the preflight timeout with a bounded error type.
func TestBadServers(t *testing.T) {
	closed := testutil.FreeAddr(t)
	garbage := listen(t, func(c net.Conn) { fmt.Fprint(c, "SSH-2.0-OpenSSH_9.2\r\n"); c.Close() })
	silent := listen(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	notFound := http.Server{Handler: http.NotFoundHandler()}
	nfl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = notFound.Serve(nfl) }()
	t.Cleanup(func() { _ = notFound.Close() })

	cases := []struct {
		name, url, errType string
		within             time.Duration // from the start of the run
	}{
		{"connection refused", "http://" + closed, probe.ErrRefused, preflightTimeout},
		{"not HTTP", "http://" + garbage, ErrProtocol, preflightTimeout},
		{"HTTP without the files", "http://" + nfl.Addr().String(), ErrProtocol, preflightTimeout},
		{"silent", "http://" + silent, probe.ErrNoReply, preflightTimeout},
		{"endless latency.txt", lyingServer(t, "endless"), ErrProtocol, preflightTimeout},
		{"stalled latency.txt", lyingServer(t, "stalled"), probe.ErrNoReply, preflightTimeout},
		{"redirect loop", lyingServer(t, "loop"), ErrProtocol, preflightTimeout},
		// The idle latency test (~2 s), then a download of 1 s that moves nothing.
		{"stalled download", lyingServer(t, "stalldown"), probe.ErrNoReply, 2*time.Second + preflightTimeout},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, tel := newTestProber(t, testConfig(time.Second), Options{})
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			start := time.Now()
			_, err := p.Probe(ctx, target(c.url))
			took := time.Since(start)
			if got := probe.ErrorType(ctx, err); got != c.errType {
				t.Errorf("error type %q (%v), want %q", got, err, c.errType)
			}
			if took > c.within+time.Second {
				t.Errorf("failing took %v", took)
			}
			if _, ok := testutil.Value(tel.Collect(t)["netpulse.speedtest.throughput"]); ok {
				t.Error("a failed run reported a throughput")
			}
			t.Logf("%s: %v after %v", c.name, err, took.Round(time.Millisecond))
		})
	}
}

// Cancelling a run mid-transfer returns at once, although speedtest-go's
// workers run on to their capture time; the next run waits for them and
// measures normally.
func TestCancelMidTransfer(t *testing.T) {
	srv := startServer(t, speedtestserver.Options{})
	cfg := testConfig(2 * time.Second)
	cfg.PacketLoss = new(bool)
	ctx, cancel := context.WithCancel(t.Context())
	canceledAt := make(chan time.Time, 1)
	p, _ := newTestProber(t, cfg, Options{Progress: func(pr Progress) {
		if pr.Phase == Download && pr.Bytes > 0 {
			select {
			case canceledAt <- time.Now():
				cancel()
			default:
			}
		}
	}})
	_, err := p.Measure(ctx, target(srv.URL()))
	returned := time.Now()
	if probe.ErrorType(ctx, err) != probe.ErrCanceled {
		t.Fatalf("err %v, want cancellation", err)
	}
	if d := returned.Sub(<-canceledAt); d > 500*time.Millisecond {
		t.Errorf("Measure returned %v after cancellation", d)
	}
	cfg.Duration = time.Second
	p2, _ := newTestProber(t, cfg, Options{})
	r, err := p2.Measure(t.Context(), target(srv.URL()))
	if err != nil || r.Download.Rate <= 0 {
		t.Fatalf("run after a cancelled one: %v, %+v", err, r.Download)
	}
}

// lyingServer serves a speed test server that lies: endless (latency.txt
// never ends), stalled (its body stalls after the headers), loop
// (latency.txt redirects to itself), stalldown (answers latency.txt, but
// download bodies stall after the headers).
func lyingServer(t *testing.T, kind string) string {
	done := make(chan struct{})
	stall := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("te"))
		http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/endless/latency.txt", func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 32<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/stalled/latency.txt", stall)
	mux.HandleFunc("/loop/latency.txt", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/speedtest/latency.txt", http.StatusFound)
	})
	mux.HandleFunc("/stalldown/latency.txt", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("test=test\n"))
	})
	mux.HandleFunc("/stalldown/", stall)
	srv := httptest.NewServer(http.StripPrefix("/speedtest", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = "/" + kind + r.URL.Path
		mux.ServeHTTP(w, r)
	})))
	t.Cleanup(func() { close(done); srv.Close() })
	return srv.URL
}

func listen(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return l.Addr().String()
}

// The speed test honours the platform's network settings on every
// connection: ip_version restricts the family (an IPv4 server with
// ip_version 6 is a resolve failure, nothing is sent) and source is the
// address connections leave from.
func TestNetworkSettings(t *testing.T) {
	seen := make(chan string, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		select {
		case seen <- host:
		default:
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()

	cfg := testConfig(time.Second)
	cfg.IPVersion = network.IPv6
	p, _ := newTestProber(t, cfg, Options{})
	_, err := p.Measure(t.Context(), target(srv.URL))
	if got := probe.ErrorType(t.Context(), err); got != probe.ErrResolve || len(seen) != 0 {
		t.Errorf("ip_version 6 to an IPv4 server: %v (%s), %d requests; want a resolve failure and none", err, got, len(seen))
	}

	cfg = testConfig(time.Second)
	cfg.IPVersion, cfg.Source = network.IPAuto, "127.0.0.2"
	p, _ = newTestProber(t, cfg, Options{})
	_, err = p.Measure(t.Context(), target(srv.URL))
	if len(seen) == 0 {
		t.Fatalf("no request reached the server: %v", err)
	}
	if from := <-seen; from != "127.0.0.2" {
		t.Errorf("source 127.0.0.2: the server saw a request from %s", from)
	}
}

// tcp_congestion picks each sender's algorithm: the client's for uploads,
// the netpulse server's (its own setting) for downloads; the result says
// which ran. One the system lacks stops the probe at its start.
func TestTCPCongestion(t *testing.T) {
	testutil.Need(t, testutil.IsRoot(), "root, to pick any available TCP congestion control")
	testutil.Need(t, tcpcc.Check("cubic") == nil && tcpcc.Check("reno") == nil, "cubic and reno available")
	srv := startServer(t, speedtestserver.Options{TCPCongestion: "cubic"})
	cfg := testConfig(time.Second)
	cfg.PacketLoss = new(bool)
	cfg.TCPCongestion = "reno"
	p, _ := newTestProber(t, cfg, Options{})
	r, err := p.Measure(t.Context(), target(srv.URL()))
	if err != nil {
		t.Fatal(err)
	}
	if r.Download.TCPCongestion != "cubic" || r.Upload.TCPCongestion != "reno" {
		t.Errorf("download sent with %q, upload with %q; want cubic (server) and reno (client)",
			r.Download.TCPCongestion, r.Upload.TCPCongestion)
	}

	cfg.TCPCongestion = "nosuchcc"
	tel := testutil.NewTelemetry(t)
	_, err = New("speed", cfg, probe.Deps{Meters: tel.Meters, Tracers: tel.Traces, Logger: quiet,
		Net: network.New(network.NewResolver(""), tel.Traces)}, Options{})
	if err == nil || !strings.Contains(err.Error(), "tcp_congestion nosuchcc is not available") {
		t.Errorf("New with tcp_congestion nosuchcc: %v", err)
	}
}
