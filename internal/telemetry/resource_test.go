package telemetry

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/netpulse/netpulse/internal/config"
)

// instanceOf starts the pipeline as an agent does, reads the
// service_instance_id of its target_info (the resource every export
// carries) and shuts it down again.
func instanceOf(t *testing.T, g config.Global) string {
	t.Helper()
	ctx := context.Background()
	cfg := config.Telemetry{OTLP: config.OTLP{Protocol: "grpc", MetricsInterval: 1e9, Timeout: 1e9}}
	tel, err := Setup(ctx, cfg, g, Build{Version: "test"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(ctx) }()
	mfs, err := tel.Gatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "target_info" {
			continue
		}
		for _, lp := range mf.GetMetric()[0].GetLabel() {
			if lp.GetName() == "service_instance_id" {
				return lp.GetValue()
			}
		}
	}
	t.Fatal("target_info has no service_instance_id")
	return ""
}

// An agent restarted with the same configuration exports the same
// service.instance.id, so its pushed series continue instead of starting a
// new set at every start.
func TestInstanceIDIsStableAcrossRestarts(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "")
	host, err := os.Hostname()
	if err != nil || host == "" {
		t.Fatalf("os.Hostname: %q, %v", host, err)
	}
	cases := []struct {
		name string
		g    config.Global
		want string
	}{
		{"default is the host name", config.Global{}, host},
		{"global.instance", config.Global{Instance: "edge-7", Labels: map[string]string{"site": "lab"}}, "edge-7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			first, second := instanceOf(t, c.g), instanceOf(t, c.g)
			if first != c.want || second != c.want {
				t.Errorf("service.instance.id of two starts = %q, %q; want %q both times", first, second, c.want)
			}
		})
	}
}

// OTEL_RESOURCE_ATTRIBUTES wins over global.instance, as in every
// OpenTelemetry SDK.
func TestResourceAttributesEnvOverridesInstance(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=from-env")
	if got := instanceOf(t, config.Global{Instance: "edge-7"}); got != "from-env" {
		t.Errorf("service.instance.id = %q, want the environment's from-env", got)
	}
}
