package telemetry

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/netpulse/netpulse/internal/config"
)

func TestResolveOTLP(t *testing.T) {
	cases := []struct {
		name     string
		env      map[string]string
		cfg      config.OTLP
		enabled  bool
		protocol string
	}{
		{"nothing configured", nil, config.OTLP{Protocol: "grpc"}, false, "grpc"},
		{"config endpoint", nil, config.OTLP{Endpoint: "localhost:4317", Protocol: "grpc"}, true, "grpc"},
		{"env endpoint and protocol", map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		}, config.OTLP{Protocol: "grpc"}, true, "http"},
		{"per-signal env endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"},
			config.OTLP{Protocol: "http"}, true, "http"},
		{"config endpoint wins over env protocol", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
			config.OTLP{Endpoint: "localhost:4317", Protocol: "grpc"}, true, "grpc"},
		{"sdk disabled beats config", map[string]string{"OTEL_SDK_DISABLED": "TRUE"},
			config.OTLP{Endpoint: "localhost:4317", Protocol: "grpc"}, false, "grpc"},
		{"sdk disabled=false is not disabled", map[string]string{"OTEL_SDK_DISABLED": "false"},
			config.OTLP{Endpoint: "localhost:4317", Protocol: "grpc"}, true, "grpc"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
				"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_SDK_DISABLED"} {
				t.Setenv(k, c.env[k])
			}
			got := resolveOTLP(c.cfg)
			if got.enabled != c.enabled || got.protocol != c.protocol {
				t.Errorf("enabled=%v protocol=%s, want %v %s", got.enabled, got.protocol, c.enabled, c.protocol)
			}
		})
	}
}

func TestHTTPURLAppendsSignalPath(t *testing.T) {
	for base, want := range map[string]string{
		"http://c:4318":    "http://c:4318/v1/traces",
		"http://c:4318/":   "http://c:4318/v1/traces",
		"https://gw/otlp":  "https://gw/otlp/v1/traces",
		"https://gw/otlp/": "https://gw/otlp/v1/traces",
	} {
		if got := httpURL(base, "/v1/traces"); got != want {
			t.Errorf("httpURL(%q) = %q, want %q", base, got, want)
		}
	}
}

// Without exported traces there are no exemplars: an exemplar's trace id
// must lead to a trace that exists.
func TestExemplarsOnlyWithExportedTraces(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := config.Telemetry{OTLP: config.OTLP{Protocol: "grpc", Signals: []string{"metrics", "traces"}, MetricsInterval: 1e9, Timeout: 1e9}}
	off, err := Setup(ctx, cfg, config.Global{}, Build{Version: "test"}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer off.Shutdown(ctx)
	if off.Exemplars || off.OTLP != "" {
		t.Errorf("no endpoint: exemplars=%v otlp=%q, want off", off.Exemplars, off.OTLP)
	}
	// Nor are spans recorded for nobody; they keep their ids for results
	// and log lines.
	_, span := off.Tracers().Tracer("test").Start(ctx, "run")
	if span.IsRecording() || !span.SpanContext().TraceID().IsValid() || !span.SpanContext().SpanID().IsValid() {
		t.Errorf("no endpoint: span recording=%v, context %+v, want not recording with valid ids",
			span.IsRecording(), span.SpanContext())
	}
	span.End()

	cfg.OTLP.Endpoint = "127.0.0.1:1" // never dialled before the first export
	cfg.OTLP.Insecure = true
	on, err := Setup(ctx, cfg, config.Global{Labels: map[string]string{"site": "lab"}}, Build{Version: "test"}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 1e8)
		defer cancel()
		_ = on.Shutdown(sctx)
	}()
	if !on.Exemplars || !strings.Contains(on.OTLP, "127.0.0.1:1") {
		t.Errorf("endpoint set: exemplars=%v otlp=%q", on.Exemplars, on.OTLP)
	}
	if _, span := on.Tracers().Tracer("test").Start(ctx, "run"); !span.IsRecording() {
		t.Error("endpoint set: span not recorded")
	}
	// Global labels are on every series, including the export error counter,
	// which exists (at 0) from the start.
	out, err := on.Gatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := false
	for _, mf := range out {
		if mf.GetName() != "netpulse_telemetry_errors_total" {
			continue
		}
		seen = true
		found := false
		for _, l := range mf.GetMetric()[0].GetLabel() {
			found = found || (l.GetName() == "site" && l.GetValue() == "lab")
		}
		if !found {
			t.Errorf("global label site=lab missing from %v", mf.GetMetric()[0].GetLabel())
		}
	}
	if !seen {
		t.Error("netpulse_telemetry_errors_total not exported")
	}
}
