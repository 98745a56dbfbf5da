// Package telemetry builds the OpenTelemetry pipeline: the resource, the
// MeterProvider (read by the Prometheus exporter on /metrics and, when
// configured, pushed over OTLP) and the TracerProvider (spans pushed over
// OTLP). Setup returns one shutdown that flushes and closes everything.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/config"
)

// Build describes the running binary for the resource and build info.
type Build struct {
	Version  string
	Revision string
}

// Telemetry is the running pipeline.
type Telemetry struct {
	MeterProvider  *sdkmetric.MeterProvider
	TracerProvider *sdktrace.TracerProvider
	// Gatherer gathers what /metrics serves; nil when Prometheus export
	// is disabled.
	Gatherer prometheus.Gatherer
	// Metrics serves /metrics (exposition.go); nil when Prometheus export
	// is disabled.
	Metrics http.Handler
	// Exemplars reports whether exemplars are attached: only when spans are
	// exported, so that every exemplar's trace id can be opened.
	Exemplars bool
	// OTLP describes where OTLP goes, or is empty.
	OTLP string

	shutdown []func(context.Context) error
}

// Setup builds the pipeline. On error, whatever was started is shut down.
func Setup(ctx context.Context, cfg config.Telemetry, g config.Global, build Build, logger *slog.Logger) (*Telemetry, error) {
	global := g.Labels
	res, err := newResource(ctx, global, InstanceID(g.Instance), build)
	if err != nil {
		return nil, fmt.Errorf("cannot build resource: %w", err)
	}
	t := &Telemetry{}
	otlp := resolveOTLP(cfg.OTLP)
	pushTraces := otlp.enabled && cfg.OTLP.HasSignal("traces")
	pushMetrics := otlp.enabled && cfg.OTLP.HasSignal("metrics")
	t.Exemplars = pushTraces

	overflow := newOverflowWatch(logger, cfg.CardinalityLimit)
	readers := []sdkmetric.Option{sdkmetric.WithCardinalityLimit(cfg.CardinalityLimit)}
	readers = append(readers, views(cfg)...)
	if cfg.Prometheus.IsEnabled() {
		reg, runtime := prometheus.NewRegistry(), prometheus.NewRegistry()
		runtime.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		resourceLabels := attribute.NewAllowKeysFilter(labelKeys(global)...)
		exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(),
			otelprom.WithResourceAsConstantLabels(resourceLabels))
		if err != nil {
			return nil, fmt.Errorf("cannot create Prometheus exporter: %w", err)
		}
		readers = append(readers, sdkmetric.WithReader(exp))
		t.Gatherer = overflow.gatherer(prometheus.Gatherers{reg, runtime})
		// OpenMetrics is negotiated so exemplars (trace ids) reach Prometheus.
		t.Metrics = promhttp.HandlerFor(t.Gatherer, promhttp.HandlerOpts{
			EnableOpenMetrics: true, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError),
			Timeout: 30 * time.Second,
		})
		if !cfg.ExponentialHistograms {
			t.Metrics = newExposition(exp, runtime, t.Metrics, overflow, resourceLabels)
		}
	}
	if pushMetrics {
		exp, err := newMetricExporter(ctx, otlp)
		if err != nil {
			return nil, fmt.Errorf("cannot create OTLP metric exporter: %w", err)
		}
		readers = append(readers, sdkmetric.WithReader(
			sdkmetric.NewPeriodicReader(overflow.exporter(exp), sdkmetric.WithInterval(cfg.OTLP.MetricsInterval))))
	}
	filter := exemplar.AlwaysOffFilter
	if t.Exemplars {
		filter = exemplar.TraceBasedFilter
	}
	t.MeterProvider = sdkmetric.NewMeterProvider(append(readers,
		sdkmetric.WithResource(res), sdkmetric.WithExemplarFilter(filter))...)
	t.shutdown = append(t.shutdown, t.MeterProvider.Shutdown)
	if err := overflow.count(t.MeterProvider); err != nil {
		_ = t.Shutdown(ctx)
		return nil, err
	}

	dropped, err := spansDropped(t.MeterProvider)
	if err != nil {
		_ = t.Shutdown(ctx)
		return nil, err
	}
	sampler := sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.Traces.Ratio()))
	if !pushTraces {
		// Nothing would read a recorded span: spans are not recorded (no
		// attributes, events or copy at their end, a tenth of the agent's
		// CPU at 1,000 runs/s) but keep their ids, which results, log
		// lines and the API still carry.
		sampler = sdktrace.NeverSample()
	}
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSampler(sampler)}
	if pushTraces {
		exp, err := newTraceExporter(ctx, otlp)
		if err != nil {
			_ = t.Shutdown(ctx)
			return nil, fmt.Errorf("cannot create OTLP trace exporter: %w", err)
		}
		// A probe never waits for export: spans beyond the queues are
		// dropped, and counted (dropCounter).
		sp := newDropCounter(sdktrace.NewBatchSpanProcessor(redactingExporter{exp}, sdktrace.WithBlocking()),
			spanQueueSize, dropped)
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(sp))
	}
	t.TracerProvider = sdktrace.NewTracerProvider(tpOpts...)
	t.shutdown = append(t.shutdown, t.TracerProvider.Shutdown)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))

	if err := t.watchExportErrors(logger); err != nil {
		_ = t.Shutdown(ctx)
		return nil, err
	}
	if otlp.enabled {
		t.OTLP = otlp.describe()
	}
	return t, nil
}

// Shutdown flushes and stops every provider, joining their errors.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range slices.Backward(t.shutdown) {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// Meters returns the meter provider as the API interface probers take.
func (t *Telemetry) Meters() metric.MeterProvider { return t.MeterProvider }

// Tracers returns the tracer provider as the API interface probers take.
func (t *Telemetry) Tracers() trace.TracerProvider { return t.TracerProvider }

// InstanceID is the agent's service.instance.id: global.instance, else the
// host name, so that a restarted agent continues its series instead of
// starting a new set (as a fresh UUID at every start would). Only when the
// host name cannot be read is it a random UUID.
func InstanceID(configured string) string {
	if configured != "" {
		return configured
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return uuid.NewString()
}

// newResource describes the agent. service.instance.id is instance; the
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES environment variables
// override it and every other attribute set here.
func newResource(ctx context.Context, global map[string]string, instance string, build Build) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{
		attribute.String("service.name", "netpulse"),
		attribute.String("service.version", build.Version),
		attribute.String("service.instance.id", instance),
	}
	for _, k := range labelKeys(global) {
		attrs = append(attrs, k.String(global[string(k)]))
	}
	// Later options win: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// override our defaults, as users of every OTel SDK expect.
	return resource.New(ctx,
		resource.WithTelemetrySDK(), resource.WithHost(), resource.WithOS(), resource.WithProcessRuntimeVersion(),
		resource.WithAttributes(attrs...), resource.WithFromEnv())
}

func labelKeys(m map[string]string) []attribute.Key {
	var keys []attribute.Key
	for _, k := range slices.Sorted(maps.Keys(m)) {
		keys = append(keys, attribute.Key(k))
	}
	return keys
}

// sdkDisabled reports OTEL_SDK_DISABLED=true, which the Go SDK does not
// implement itself; for netpulse it turns OTLP export off.
func sdkDisabled() bool {
	return strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true")
}
