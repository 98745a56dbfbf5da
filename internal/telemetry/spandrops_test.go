package telemetry

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/netpulse/netpulse/internal/config"
)

// stuckCollector is an OTLP/HTTP trace receiver on loopback that holds
// every export until released, then counts the spans it receives.
type stuckCollector struct {
	*httptest.Server
	release chan struct{}
	Release func() // lets held and later exports through
	mu      sync.Mutex
	spans   int
}

func newStuckCollector(t *testing.T) *stuckCollector {
	c := &stuckCollector{release: make(chan struct{})}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-c.release
		body, err := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err != nil || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		n := 0
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				n += len(ss.GetSpans())
			}
		}
		c.mu.Lock()
		c.spans += n
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(nil)
	}))
	c.Release = sync.OnceFunc(func() { close(c.release) })
	t.Cleanup(c.Close)
	t.Cleanup(c.Release) // runs first: Close waits for held exports
	return c
}

// A collector that stops taking exports makes the queues fill: every span
// ended is then either received by the collector or counted in
// netpulse_telemetry_spans_dropped_total, none lost uncounted.
func TestDroppedSpansAreCounted(t *testing.T) {
	const spans = 10000 // more than the queues hold (2 × 2048 + a batch of 512)
	collector := newStuckCollector(t)
	ctx := context.Background()
	cfg := config.Telemetry{OTLP: config.OTLP{Endpoint: collector.URL, Protocol: "http", Signals: []string{"traces"},
		MetricsInterval: time.Minute, Timeout: time.Minute}}
	tel, err := Setup(ctx, cfg, config.Global{}, Build{Version: "test"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tracer := tel.TracerProvider.Tracer("test")
	for range spans {
		_, span := tracer.Start(ctx, "run")
		span.End()
	}
	dropped := gatherCounter(t, tel, "netpulse_telemetry_spans_dropped_total")
	collector.Release()
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := tel.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	collector.mu.Lock()
	received := collector.spans
	collector.mu.Unlock()
	t.Logf("%d spans: %d received, %d counted as dropped", spans, received, int(dropped))
	if dropped < spans/2 {
		t.Errorf("dropped %v, want most of %d counted while the collector was stuck", dropped, spans)
	}
	if received+int(dropped) != spans {
		t.Errorf("received %d + dropped %v != %d ended: spans lost without being counted", received, dropped, spans)
	}
}

// gatherCounter reads a counter's value from the /metrics registry.
func gatherCounter(t *testing.T, tel *Telemetry, name string) float64 {
	t.Helper()
	mfs, err := tel.Gatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("%s not exported", name)
	return 0
}
