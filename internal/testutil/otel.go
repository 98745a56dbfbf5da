package testutil

import (
	"context"
	"os"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Telemetry is an in-memory OpenTelemetry pipeline for tests: a manual
// metric reader and a span recorder on real SDK providers.
type Telemetry struct {
	Reader *sdkmetric.ManualReader
	Meters *sdkmetric.MeterProvider
	Spans  *tracetest.SpanRecorder
	Traces *sdktrace.TracerProvider
}

// NewTelemetry returns SDK providers that record into memory.
func NewTelemetry(t testing.TB) *Telemetry {
	tel := &Telemetry{Reader: sdkmetric.NewManualReader(), Spans: tracetest.NewSpanRecorder()}
	tel.Meters = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.Reader))
	tel.Traces = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.Spans))
	t.Cleanup(func() {
		_ = tel.Meters.Shutdown(context.Background())
		_ = tel.Traces.Shutdown(context.Background())
	})
	return tel
}

// Collect reads every metric, keyed by instrument name.
func (tel *Telemetry) Collect(t testing.TB) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.Reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collect: %v", err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// Value returns the value of the data point of a gauge or sum whose
// attributes include all of want, and whether one was found.
func Value(m metricdata.Metrics, want ...attribute.KeyValue) (float64, bool) {
	match := func(s attribute.Set) bool {
		for _, kv := range want {
			if v, ok := s.Value(kv.Key); !ok || v != kv.Value {
				return false
			}
		}
		return true
	}
	switch d := m.Data.(type) {
	case metricdata.Gauge[float64]:
		for _, p := range d.DataPoints {
			if match(p.Attributes) {
				return p.Value, true
			}
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			if match(p.Attributes) {
				return float64(p.Value), true
			}
		}
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			if match(p.Attributes) {
				return float64(p.Value), true
			}
		}
	case metricdata.Sum[float64]:
		for _, p := range d.DataPoints {
			if match(p.Attributes) {
				return p.Value, true
			}
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			if match(p.Attributes) {
				return float64(p.Count), true
			}
		}
	}
	return 0, false
}

// RequireReal reports whether tests that need real components (root, the
// ping sysctl, Prometheus, the collector) must run: they fail instead of
// skipping when NETPULSE_REQUIRE_REAL=1, as .ci/run sets it.
func RequireReal() bool { return os.Getenv("NETPULSE_REQUIRE_REAL") == "1" }

// Need skips (or, when real components are required, fails) a test whose
// prerequisite is missing, saying how to provide it.
func Need(t testing.TB, ok bool, how string) {
	t.Helper()
	if ok {
		return
	}
	if RequireReal() {
		t.Fatalf("prerequisite missing (NETPULSE_REQUIRE_REAL=1): %s", how)
	}
	t.Skipf("prerequisite missing: %s (run .ci/run to set everything up)", how)
}
