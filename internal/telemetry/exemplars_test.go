package telemetry

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/netpulse/netpulse/internal/config"
)

// sampled returns a context in a sampled span whose trace id starts with n.
func sampled(n byte) context.Context {
	return trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{n, 1}, SpanID: trace.SpanID{n, 2}, TraceFlags: trace.FlagsSampled}))
}

// exemplarProvider is the agent's meter provider as Setup builds it when
// spans are exported (views and trace-based exemplars), read by hand.
func exemplarProvider(t *testing.T, cfg config.Telemetry) (metric.Meter, *sdkmetric.ManualReader) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(append(views(cfg), sdkmetric.WithReader(reader),
		sdkmetric.WithExemplarFilter(exemplar.TraceBasedFilter))...)
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp.Meter("test"), reader
}

func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Aggregation {
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// Each bucket keeps the latest measurement made in a sampled span, with
// its trace and span ids; the runs counter keeps its latest; a packet
// counter and measurements outside a sampled span keep none.
func TestExemplarsKeepTheLatestPerBucket(t *testing.T) {
	m, reader := exemplarProvider(t, config.Telemetry{})
	rtt, _ := m.Float64Histogram("netpulse.ping.rtt", metric.WithExplicitBucketBoundaries(0.01, 0.1))
	runs, _ := m.Int64Counter("netpulse.probe.runs")
	sent, _ := m.Int64Counter("netpulse.ping.packets.sent")
	attrs := metric.WithAttributes(attribute.String("target.name", "a"))

	rtt.Record(sampled(1), 0.005, attrs)
	rtt.Record(sampled(2), 0.007, attrs) // same bucket: replaces 1
	rtt.Record(sampled(3), 0.05, attrs)
	rtt.Record(context.Background(), 0.5, attrs) // no span: no exemplar
	runs.Add(sampled(4), 1, attrs)
	runs.Add(sampled(5), 1, attrs)
	sent.Add(sampled(6), 10, attrs)

	data := collect(t, reader)
	h := data["netpulse.ping.rtt"].(metricdata.Histogram[float64]).DataPoints[0]
	type kept struct {
		value float64
		trace byte
	}
	var got []kept
	for _, e := range h.Exemplars {
		got = append(got, kept{e.Value, e.TraceID[0]})
		if !bytes.Equal(e.SpanID, []byte{e.TraceID[0], 2, 0, 0, 0, 0, 0, 0}) || len(e.TraceID) != 16 {
			t.Errorf("exemplar %v: trace %x span %x, want the ids of one span", e.Value, e.TraceID, e.SpanID)
		}
	}
	if want := []kept{{0.007, 2}, {0.05, 3}}; !equal(got, want) {
		t.Errorf("RTT exemplars %v, want %v (the latest per bucket, none without a span)", got, want)
	}
	r := data["netpulse.probe.runs"].(metricdata.Sum[int64]).DataPoints[0]
	if len(r.Exemplars) != 1 || r.Exemplars[0].TraceID[0] != 5 {
		t.Errorf("runs exemplars %+v, want the latest run's", r.Exemplars)
	}
	if s := data["netpulse.ping.packets.sent"].(metricdata.Sum[int64]).DataPoints[0]; len(s.Exemplars) != 0 {
		t.Errorf("packets sent has %d exemplars, want none", len(s.Exemplars))
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A collection's exemplars are not changed by later measurements or
// collections (a reader may still be writing them out), and an exemplar
// nothing replaced is collected again.
func TestCollectedExemplarsStayPut(t *testing.T) {
	m, reader := exemplarProvider(t, config.Telemetry{})
	rtt, _ := m.Float64Histogram("netpulse.ping.rtt", metric.WithExplicitBucketBoundaries(0.01, 0.1))
	rtt.Record(sampled(1), 0.005)
	rtt.Record(sampled(2), 0.05)
	first := collect(t, reader)["netpulse.ping.rtt"].(metricdata.Histogram[float64]).DataPoints[0].Exemplars
	rtt.Record(sampled(3), 0.006)
	second := collect(t, reader)["netpulse.ping.rtt"].(metricdata.Histogram[float64]).DataPoints[0].Exemplars
	if first[0].TraceID[0] != 1 || first[1].TraceID[0] != 2 || first[0].SpanID[0] != 1 {
		t.Errorf("first collection's ids changed: %x %x", first[0].TraceID, first[1].TraceID)
	}
	if len(second) != 2 || second[0].TraceID[0] != 3 || second[1].TraceID[0] != 2 {
		t.Errorf("second collection: %+v, want span 3 then span 2", second)
	}
}

// Measurements and collections at once: every collected exemplar has the
// trace and span ids of one span (none torn), under -race as well.
func TestExemplarsUnderConcurrentRecording(t *testing.T) {
	m, reader := exemplarProvider(t, config.Telemetry{})
	rtt, _ := m.Float64Histogram("netpulse.ping.rtt", metric.WithExplicitBucketBoundaries(0.01, 0.1))
	runs, _ := m.Int64Counter("netpulse.probe.runs")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx := sampled(byte(w*50 + i%50 + 1))
				rtt.Record(ctx, float64(i%3)*0.04)
				runs.Add(ctx, 1)
			}
		})
	}
	for range 200 {
		data := collect(t, reader)
		var exs []metricdata.Exemplar[float64]
		if h, ok := data["netpulse.ping.rtt"].(metricdata.Histogram[float64]); ok {
			exs = h.DataPoints[0].Exemplars
		}
		for _, e := range exs {
			if e.TraceID[0] != e.SpanID[0] || e.TraceID[1] != 1 || e.SpanID[1] != 2 {
				t.Fatalf("torn exemplar: trace %x span %x", e.TraceID, e.SpanID)
			}
		}
	}
	close(stop)
	wg.Wait()
}

// The lean profile's per-probe run duration keeps exemplars without the
// target attributes its view filtered out.
func TestLeanExemplarsDropFilteredAttributes(t *testing.T) {
	m, reader := exemplarProvider(t, config.Telemetry{Profile: config.ProfileLean})
	d, _ := m.Float64Histogram("netpulse.probe.duration")
	d.Record(sampled(1), 0.2, metric.WithAttributes(attribute.String("probe.name", "p"), attribute.String("target.name", "t")))
	h := collect(t, reader)["netpulse.probe.duration"].(metricdata.ExponentialHistogram[float64]).DataPoints[0]
	if len(h.Exemplars) == 0 || len(h.Exemplars[0].FilteredAttributes) != 0 {
		t.Errorf("exemplars %+v, want one without filtered attributes", h.Exemplars)
	}
}

// Pushed over OTLP, the RTT histogram and the runs counter carry the
// exemplar of the run's span, whose trace is pushed too.
func TestOTLPMetricsCarryExemplars(t *testing.T) {
	var mu sync.Mutex
	var got []*colmetricpb.ExportMetricsServiceRequest
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if r.URL.Path == "/v1/metrics" {
			var req colmetricpb.ExportMetricsServiceRequest
			if err := proto.Unmarshal(body, &req); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			mu.Lock()
			got = append(got, &req)
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer sink.Close()
	ctx := context.Background()
	cfg := config.Telemetry{OTLP: config.OTLP{Endpoint: sink.URL, Protocol: "http", Signals: []string{"metrics", "traces"},
		MetricsInterval: time.Hour, Timeout: 10 * time.Second}}
	tel, err := Setup(ctx, cfg, config.Global{}, Build{Version: "test"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(ctx)
	m := tel.MeterProvider.Meter("test")
	rtt, _ := m.Float64Histogram("netpulse.ping.rtt", metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(0.01, 0.1))
	runs, _ := m.Int64Counter("netpulse.probe.runs")
	runCtx, span := tel.TracerProvider.Tracer("test").Start(ctx, "ping lan")
	rtt.Record(runCtx, 0.02)
	runs.Add(runCtx, 1)
	span.End()
	if err := tel.MeterProvider.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	want := span.SpanContext().TraceID()
	exemplars := map[string]string{} // metric name → trace id of its first exemplar
	mu.Lock()
	defer mu.Unlock()
	for _, req := range got {
		for _, rm := range req.GetResourceMetrics() {
			for _, sm := range rm.GetScopeMetrics() {
				for _, mt := range sm.GetMetrics() {
					for _, dp := range mt.GetHistogram().GetDataPoints() {
						for _, e := range dp.GetExemplars() {
							exemplars[mt.GetName()] = hex.EncodeToString(e.GetTraceId())
						}
					}
					for _, dp := range mt.GetSum().GetDataPoints() {
						for _, e := range dp.GetExemplars() {
							exemplars[mt.GetName()] = hex.EncodeToString(e.GetTraceId())
						}
					}
				}
			}
		}
	}
	for _, name := range []string{"netpulse.ping.rtt", "netpulse.probe.runs"} {
		if exemplars[name] != want.String() {
			t.Errorf("%s: exemplar trace %q, want the run's %s (%d exports)", name, exemplars[name], want, len(got))
		}
	}
}
