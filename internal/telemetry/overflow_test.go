package telemetry

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/netpulse/netpulse/internal/config"
)

// Series past the cardinality limit are merged by the SDK without a word;
// netpulse says so once per instrument and counts every collection that
// carried a merged series.
func TestOverflowIsLoggedAndCounted(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	tel, err := Setup(context.Background(), config.Telemetry{CardinalityLimit: 5}, config.Global{}, Build{Version: "test"}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	c, err := tel.MeterProvider.Meter("test").Int64Counter("test.targets")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		c.Add(context.Background(), 1, metric.WithAttributes(attribute.String("target", fmt.Sprint(i))))
	}
	for range 2 {
		if _, err := tel.Gatherer.Gather(); err != nil {
			t.Fatal(err)
		}
	}
	mfs, err := tel.Gatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var overflows float64
	for _, mf := range mfs {
		if mf.GetName() == "netpulse_telemetry_overflows_total" {
			overflows = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if overflows < 2 {
		t.Errorf("netpulse_telemetry_overflows_total = %v after 3 collections with merged series, want >= 2", overflows)
	}
	if n := strings.Count(logs.String(), "series merged"); n != 1 {
		t.Errorf("%d warnings, want one for the instrument:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "metric=test_targets_total") || !strings.Contains(logs.String(), "limit=5") {
		t.Errorf("warning does not name the metric and the limit:\n%s", logs.String())
	}
}

// With exponential_histograms, histograms reach /metrics as Prometheus
// native histograms (a schema and spans instead of le buckets).
func TestExponentialHistograms(t *testing.T) {
	for _, exponential := range []bool{false, true} {
		tel, err := Setup(context.Background(), config.Telemetry{ExponentialHistograms: exponential}, config.Global{},
			Build{Version: "test"}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		h, err := tel.MeterProvider.Meter("test").Float64Histogram("test.rtt", metric.WithUnit("s"),
			metric.WithExplicitBucketBoundaries(0.001, 0.01))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []float64{0.0001, 0.0002, 0.02} {
			h.Record(context.Background(), v)
		}
		mfs, err := tel.Gatherer.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, mf := range mfs {
			if mf.GetName() != "test_rtt_seconds" {
				continue
			}
			found = true
			hist := mf.GetMetric()[0].GetHistogram()
			native := hist.Schema != nil && len(hist.GetPositiveSpan()) > 0
			if native != exponential || hist.GetSampleCount() != 3 {
				t.Errorf("exponential_histograms=%v: native %v (schema %v), count %d", exponential, native, hist.Schema, hist.GetSampleCount())
			}
		}
		if !found {
			t.Errorf("exponential_histograms=%v: test_rtt_seconds not gathered", exponential)
		}
		_ = tel.Shutdown(context.Background())
	}
}
