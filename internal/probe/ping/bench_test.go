package ping

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/telemetry"
	"github.com/netpulse/netpulse/internal/testutil"
)

// recordingProber records a fixed burst through the real instruments without
// touching the network, so the benchmarks measure recording alone.
type recordingProber struct {
	m       *metrics
	replies []reply
}

func (r recordingProber) Probe(ctx context.Context, t *probe.Target) (probe.Values, error) {
	attrs := t.RecordOptions() // as echoShared records
	for _, rp := range r.replies {
		r.m.rtt.Record(ctx, rp.rtt.Seconds(), attrs...)
	}
	s := summarize(len(r.replies), r.replies, 0)
	r.m.count(t, s)
	r.m.remember(t, s)
	return values(s), nil
}

// setup builds the production pipeline (Prometheus exporter, exemplars on as
// with OTLP traces, always-sampled spans) and a probe recording n targets.
func setup(b *testing.B, n int) (*telemetry.Telemetry, *probe.Runner, recordingProber, []*probe.Target) {
	return setupWith(b, n, false)
}

// setupWith is setup; with exemplars, spans are pushed over OTLP/HTTP to
// a sink of the benchmark's own (so exemplars are attached, as they are
// when traces are exported).
func setupWith(b *testing.B, n int, exemplars bool) (*telemetry.Telemetry, *probe.Runner, recordingProber, []*probe.Target) {
	b.Helper()
	ratio := 1.0
	otlp := config.OTLP{Protocol: "grpc", MetricsInterval: time.Minute, Timeout: time.Second}
	if exemplars {
		sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
		}))
		b.Cleanup(sink.Close)
		otlp = config.OTLP{Endpoint: sink.URL, Protocol: "http", Insecure: true, Signals: []string{"traces"},
			MetricsInterval: time.Minute, Timeout: time.Second}
	}
	tel, err := telemetry.Setup(context.Background(), config.Telemetry{
		Traces: config.Traces{SamplingRatio: &ratio},
		OTLP:   otlp,
	}, config.Global{Labels: map[string]string{"site": "bench"}}, telemetry.Build{Version: "bench"}, quiet)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	runner, err := probe.NewRunner(tel.Meters(), tel.Tracers(), quiet, 0)
	if err != nil {
		b.Fatal(err)
	}
	m, err := newMetrics(tel.Meters().Meter(ScopeName))
	if err != nil {
		b.Fatal(err)
	}
	p := recordingProber{m: m}
	for i := range 10 {
		p.replies = append(p.replies, reply{seq: i, rtt: time.Duration(10+i%3) * time.Millisecond})
	}
	pc := config.Probe{Name: "wan", Type: TypeName}
	var targets []*probe.Target
	for i := range n {
		targets = append(targets, probe.NewTarget(pc, config.Target{
			Name: fmt.Sprintf("target-%04d", i), Host: fmt.Sprintf("198.18.%d.%d", i/250, i%250+1),
			Labels: map[string]string{"region": fmt.Sprintf("r%d", i%5)}}))
	}
	return tel, runner, p, targets
}

// BenchmarkRecordRun is the cost of one ping run's bookkeeping: the run span,
// 10 RTT observations, 3 counters, the last-run state and the run metrics.
func BenchmarkRecordRun(b *testing.B) {
	_, runner, p, targets := setup(b, 100)
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		runner.Run(ctx, p, targets[i%len(targets)], time.Second)
		i++
	}
}

// BenchmarkScrape1000Targets serves /metrics (OpenMetrics, as Prometheus
// negotiates it) for 1,000 ping targets that have each run once: through
// the agent's handler (direct: telemetry's own encoder) and through
// promhttp on the exporter's registry (exporter: how /metrics was served
// before), without and with exemplars (attached when traces are pushed),
// and with gzip, which Prometheus asks for. The fresh case runs every
// target again before each scrape (not counted), as between two of
// Prometheus' scrapes, so that each scrape collects new exemplars.
func BenchmarkScrape1000Targets(b *testing.B) {
	for _, exemplars := range []bool{false, true} {
		tel, runner, p, targets := setupWith(b, 1000, exemplars)
		if tel.Exemplars != exemplars {
			b.Fatalf("exemplars %v, want %v", tel.Exemplars, exemplars)
		}
		runAll := func() {
			for _, t := range targets {
				runner.Run(context.Background(), p, t, time.Second)
			}
		}
		runAll()
		exporter := promhttp.HandlerFor(tel.Gatherer, promhttp.HandlerOpts{EnableOpenMetrics: true})
		for _, path := range []struct {
			name  string
			h     http.Handler
			gzip  bool
			fresh bool
		}{{"direct", tel.Metrics, false, false}, {"exporter", exporter, false, false},
			{"direct-gzip", tel.Metrics, true, false}, {"direct-gzip-fresh", tel.Metrics, true, true}} {
			b.Run(fmt.Sprintf("%s/exemplars=%v", path.name, exemplars), func(b *testing.B) {
				req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
				req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
				if path.gzip {
					req.Header.Set("Accept-Encoding", "gzip")
				}
				var size int
				var cpu time.Duration
				b.ReportAllocs()
				for b.Loop() {
					if path.fresh {
						b.StopTimer()
						runAll()
						b.StartTimer()
					}
					rec := httptest.NewRecorder()
					cpu0 := processCPU()
					path.h.ServeHTTP(rec, req)
					cpu += processCPU() - cpu0
					if rec.Code != http.StatusOK {
						b.Fatalf("status %d", rec.Code)
					}
					size = rec.Body.Len()
				}
				b.ReportMetric(float64(size), "bytes/scrape")
				// CPU time (the process's, GC included) reads the same on a
				// busy machine, where ns/op, a wall time, grows with the load.
				b.ReportMetric(float64(cpu)/float64(b.N)/1e6, "cpu-ms/scrape")
			})
		}
	}
}

// BenchmarkLoopbackRTT pings 127.0.0.1 for real (bursts of 10, 1 ms apart)
// and reports the median RTT pro-bing measured; bench/rtt-loopback.sh sets
// it against iputils ping, whose kernel receive timestamps approximate the
// true loopback RTT, to give netpulse's RTT error.
func BenchmarkLoopbackRTT(b *testing.B) {
	if !rawAllowed() {
		b.Skip("raw ICMP needs root")
	}
	tel := testutil.NewTelemetry(b)
	cfg := Config{Settings: network.Settings{IPVersion: "4"}, Count: 10, PacketInterval: time.Millisecond, Size: 56, TTL: 64, Privileged: "true"}
	p, err := New(cfg, testDeps(b, tel.Meters, tel.Traces, ""))
	if err != nil {
		b.Fatal(err)
	}
	target := probe.NewTarget(config.Probe{Name: "lo", Type: "ping"}, config.Target{Name: "lo", Host: "127.0.0.1"})
	var rtts []float64
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		v, err := p.Probe(ctx, target)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		rtts = append(rtts, v["rtt_avg_seconds"])
	}
	slices.Sort(rtts)
	b.ReportMetric(rtts[len(rtts)/2]*1e6, "µs-median-rtt")
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
