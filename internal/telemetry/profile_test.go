package telemetry

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/netpulse/netpulse/internal/config"
)

// The lean profile keeps a run's duration per probe (the target's name and
// labels dropped, with no exemplar carrying them back), records it as an
// exponential histogram, and drops the RTT spread gauge; other instruments
// are untouched.
func TestLeanProfile(t *testing.T) {
	// Exemplars are attached only while spans are exported: an endpoint
	// nothing is sent to (the test's spans come from another provider).
	cfg := config.Telemetry{Profile: config.ProfileLean, OTLP: config.OTLP{Endpoint: "127.0.0.1:1", Protocol: "grpc",
		Insecure: true, Signals: []string{"traces"}, Timeout: time.Second, MetricsInterval: time.Second}}
	tel, err := Setup(context.Background(), cfg, config.Global{},
		Build{Version: "test"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	m := tel.MeterProvider.Meter("test")
	duration, err := m.Float64Histogram("netpulse.probe.duration", metric.WithUnit("s"))
	if err != nil {
		t.Fatal(err)
	}
	runs, err := m.Int64Counter("netpulse.probe.runs")
	if err != nil {
		t.Fatal(err)
	}
	stddev, err := m.Float64Gauge("netpulse.ping.rtt.stddev", metric.WithUnit("s"))
	if err != nil {
		t.Fatal(err)
	}
	// A sampled span makes the run's exemplar.
	ctx, span := sdktrace.NewTracerProvider().Tracer("test").Start(context.Background(), "run")
	defer span.End()
	for _, target := range []string{"a", "b", strings.Repeat("long-target-name-", 8)} {
		attrs := metric.WithAttributes(attribute.String("probe.name", "lan"), attribute.String("probe.type", "ping"),
			attribute.String("target.name", target), attribute.String("role", "self"))
		duration.Record(ctx, 0.01, attrs)
		runs.Add(ctx, 1, attrs)
		stddev.Record(ctx, 0.001, attrs)
	}
	mfs, err := tel.Gatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]*dto.Metric{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetMetric()
	}
	if d := got["netpulse_probe_duration_seconds"]; len(d) != 1 {
		t.Errorf("netpulse_probe_duration_seconds: %d series, want one for the probe", len(d))
	} else {
		if names := labelNames(d[0]); names != "probe_name,probe_type" {
			t.Errorf("netpulse_probe_duration_seconds labels %s, want probe_name,probe_type", names)
		}
		h := d[0].GetHistogram()
		if h.Schema == nil || h.GetSampleCount() != 3 {
			t.Errorf("netpulse_probe_duration_seconds: schema %v, count %d: want a native histogram of 3 runs", h.Schema, h.GetSampleCount())
		}
		if len(h.GetExemplars()) == 0 {
			t.Error("netpulse_probe_duration_seconds: no exemplar")
		}
		for _, e := range h.GetExemplars() {
			for _, l := range e.GetLabel() {
				if l.GetName() != "trace_id" && l.GetName() != "span_id" {
					t.Errorf("exemplar label %s=%s: a filtered attribute came back", l.GetName(), l.GetValue())
				}
			}
		}
	}
	if r := got["netpulse_probe_runs_total"]; len(r) != 3 {
		t.Errorf("netpulse_probe_runs_total: %d series, want one per target", len(r))
	}
	if s, ok := got["netpulse_ping_rtt_stddev_seconds"]; ok {
		t.Errorf("netpulse_ping_rtt_stddev_seconds exported (%d series): the lean profile drops it", len(s))
	}
}

func labelNames(m *dto.Metric) string {
	var names []string
	for _, l := range m.GetLabel() {
		names = append(names, l.GetName())
	}
	return strings.Join(names, ",")
}
