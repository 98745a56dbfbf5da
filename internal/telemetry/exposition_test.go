package telemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/config"
)

const openMetricsAccept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

// exemplarLabels matches an exemplar's label block, whose order the
// exporter leaves to map iteration.
var exemplarLabels = regexp.MustCompile(` # \{([^}]*)\}`)

// overflowsLine is the overflow counter's sample, which each scrape that
// finds a merged series raises: two scrapes in a row differ there.
var overflowsLine = regexp.MustCompile(`(?m)^netpulse_telemetry_overflows_total.*\n`)

// canonical sorts each exemplar's labels and drops the overflow counter,
// so two encodings compare.
func canonical(s string) string {
	s = overflowsLine.ReplaceAllString(s, "")
	return exemplarLabels.ReplaceAllStringFunc(s, func(m string) string {
		inner := m[4 : len(m)-1]
		parts := strings.Split(inner, ",")
		slices.Sort(parts)
		return " # {" + strings.Join(parts, ",") + "}"
	})
}

func scrape(t testing.TB, h http.Handler, accept, encoding string) (string, http.Header) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", accept)
	if encoding != "" {
		req.Header.Set("Accept-Encoding", encoding)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	body := rec.Body.Bytes()
	if rec.Header().Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	return string(body), rec.Header()
}

// TestExpositionMatchesExporter: the direct encoder writes what the OTel
// Prometheus exporter and promhttp write for the same data: counters with
// exemplars, up-down counters, gauges, histograms with exemplars in their
// buckets and past the last bound, label values to escape, attribute
// keys to sanitize, series with more and fewer labels, a series without
// attributes, a merged overflow series, resource labels and target_info.
func TestExpositionMatchesExporter(t *testing.T) {
	reg := prometheus.NewRegistry()
	allow := attribute.NewAllowKeysFilter("site")
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithResourceAsConstantLabels(allow))
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", "netpulse"), attribute.String("site", `home "lab"`),
		attribute.String("host.name", "h1"))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res),
		sdkmetric.WithExemplarFilter(exemplar.AlwaysOnFilter), sdkmetric.WithCardinalityLimit(6))
	defer mp.Shutdown(context.Background())
	watch := newOverflowWatch(slog.New(slog.NewTextHandler(io.Discard, nil)), 6)
	if err := watch.count(mp); err != nil {
		t.Fatal(err)
	}
	fallback := promhttp.HandlerFor(watch.gatherer(reg), promhttp.HandlerOpts{EnableOpenMetrics: true})
	fast := newExposition(exp, prometheus.NewRegistry(), fallback, watch, allow)

	m := mp.Meter("test")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5}, TraceFlags: trace.FlagsSampled}))
	runs, _ := m.Int64Counter("netpulse.probe.runs", metric.WithUnit("{run}"), metric.WithDescription(`Runs, "quoted"`+"\nand a second line \\ ."))
	bytesC, _ := m.Float64Counter("netpulse.speed.bytes", metric.WithUnit("By"))
	inflight, _ := m.Int64UpDownCounter("netpulse.inflight")
	rtt, _ := m.Float64Histogram("netpulse.ping.rtt", metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(0.001, 0.01, 0.1))
	wide, _ := m.Int64Counter("netpulse.wide") // overflows its limit of 6
	_, _ = m.Float64ObservableGauge("netpulse.ping.loss", metric.WithUnit("1"), metric.WithFloat64Callback(
		func(_ context.Context, o metric.Float64Observer) error {
			o.Observe(0.25, metric.WithAttributes(attribute.String("target_name", "b")))
			o.Observe(1, metric.WithAttributes(attribute.String("target_name", "a"), attribute.String("tier", "lan")))
			o.Observe(0)
			return nil
		}))
	for i, v := range []string{"plain", `quo"te`, "new\nline", `back\slash`, "ünï"} {
		attrs := metric.WithAttributes(attribute.String("target_name", v), attribute.String("server.address", "10.0.0.1"),
			attribute.Int("a-b", i))
		runs.Add(ctx, int64(i+1), attrs)
		bytesC.Add(ctx, 1.5e9*float64(i), attrs)
		inflight.Add(ctx, int64(i)-2, attrs)
		for _, x := range []float64{0.0005, 0.02, 0.5, float64(i) / 1000} {
			rtt.Record(ctx, x, attrs)
		}
	}
	runs.Add(context.Background(), 7, metric.WithAttributes(attribute.String("outcome", "failure")))
	rtt.Record(context.Background(), 0.003)
	for i := range 10 {
		wide.Add(ctx, 1, metric.WithAttributes(attribute.Int("i", i)))
	}

	for range 2 { // the second collection reuses the rendered label blocks
		want, wh := scrape(t, fallback, openMetricsAccept, "")
		got, h := scrape(t, fast, openMetricsAccept, "")
		if h.Get("Content-Type") != wh.Get("Content-Type") {
			t.Errorf("content type %q, promhttp's %q", h.Get("Content-Type"), wh.Get("Content-Type"))
		}
		if g, w := canonical(got), canonical(want); g != w {
			t.Fatalf("direct encoding differs from the exporter's:\n%s", lineDiff(w, g))
		}
	}
	if !strings.Contains(canonical(fast.mustRender(t)), `otel_metric_overflow="true"`) {
		t.Errorf("no overflow series: the test does not test it")
	}
	// Each direct scrape counts the 3 instruments with merged series.
	before := overflowsLine.FindString(fast.mustRender(t))
	after := overflowsLine.FindString(fast.mustRender(t))
	if before == after || !strings.Contains(before, "_total{") {
		t.Errorf("overflow counter did not move across a scrape: %q then %q", before, after)
	}
	gz, h := scrape(t, fast, openMetricsAccept, "gzip")
	if h.Get("Content-Encoding") != "gzip" || !strings.Contains(gz, "# EOF") {
		t.Errorf("gzip: %q, %d bytes", h.Get("Content-Encoding"), len(gz))
	}
	// The classic text format goes to promhttp.
	text, h := scrape(t, fast, "text/plain;version=0.0.4", "")
	if !strings.HasPrefix(h.Get("Content-Type"), "text/plain") || strings.Contains(text, "# EOF") {
		t.Errorf("text format: %q", h.Get("Content-Type"))
	}
}

// A compressed answer passes through gzip in chunks, cut between series:
// decompressed, it is the uncompressed answer and the exporter's, on
// enough series to take many chunks.
func TestExpositionGzipInChunks(t *testing.T) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithExemplarFilter(exemplar.AlwaysOnFilter))
	defer mp.Shutdown(context.Background())
	watch := newOverflowWatch(slog.New(slog.DiscardHandler), 0)
	if err := watch.count(mp); err != nil {
		t.Fatal(err)
	}
	fallback := promhttp.HandlerFor(watch.gatherer(reg), promhttp.HandlerOpts{EnableOpenMetrics: true})
	fast := newExposition(exp, prometheus.NewRegistry(), fallback, watch, attribute.NewAllowKeysFilter())
	m := mp.Meter("test")
	rtt, _ := m.Float64Histogram("netpulse.ping.rtt", metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(0.001, 0.01, 0.1))
	runs, _ := m.Int64Counter("netpulse.probe.runs")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled}))
	for i := range 1500 {
		attrs := metric.WithAttributes(attribute.String("target.name", fmt.Sprintf("target-%04d", i)))
		rtt.Record(ctx, float64(i%200)/1000, attrs)
		runs.Add(ctx, 1, attrs)
	}
	gz, h := scrape(t, fast, openMetricsAccept, "gzip")
	plain, _ := scrape(t, fast, openMetricsAccept, "")
	want, _ := scrape(t, fallback, openMetricsAccept, "")
	if h.Get("Content-Encoding") != "gzip" || len(plain) < 10*chunk {
		t.Fatalf("encoding %q, %d bytes: the test does not test chunks", h.Get("Content-Encoding"), len(plain))
	}
	if canonical(gz) != canonical(plain) {
		t.Errorf("compressed answer differs from the uncompressed one:\n%s", lineDiff(canonical(plain), canonical(gz)))
	}
	if canonical(plain) != canonical(want) {
		t.Errorf("direct encoding differs from the exporter's:\n%s", lineDiff(canonical(want), canonical(plain)))
	}
}

func (e *exposition) mustRender(t *testing.T) string {
	b, ok := e.render(context.Background(), false)
	if !ok {
		t.Fatal("render refused")
	}
	return string(*b)
}

// TestSetupServesDirectExposition: the agent's /metrics handler is the
// direct encoder, unless exponential histograms need the exporter.
func TestSetupServesDirectExposition(t *testing.T) {
	for _, expo := range []bool{false, true} {
		tel, err := Setup(context.Background(), config.Telemetry{ExponentialHistograms: expo}, config.Global{Labels: map[string]string{"site": "x"}},
			Build{Version: "test"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		_, direct := tel.Metrics.(*exposition)
		if direct == expo {
			t.Errorf("exponential_histograms=%v: direct encoder %v", expo, direct)
		}
		body, _ := scrape(t, tel.Metrics, openMetricsAccept, "")
		for _, want := range []string{"# TYPE go_goroutines gauge", "# TYPE target_info gauge", `netpulse_telemetry_overflows_total{site="x"} 0`} {
			if !strings.Contains(body, want) {
				t.Errorf("exponential_histograms=%v: no %q in\n%s", expo, want, body)
			}
		}
		_ = tel.Shutdown(context.Background())
	}
}

// BenchmarkExposition1000Targets compares the direct encoder with the
// exporter's path on 1,000 targets' worth of ping-like series (see also
// internal/probe/ping's BenchmarkScrape1000Targets, through the agent's
// real instruments).
func BenchmarkExposition1000Targets(b *testing.B) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		b.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	defer mp.Shutdown(context.Background())
	watch := newOverflowWatch(slog.New(slog.NewTextHandler(io.Discard, nil)), 0)
	if err := watch.count(mp); err != nil {
		b.Fatal(err)
	}
	fallback := promhttp.HandlerFor(watch.gatherer(reg), promhttp.HandlerOpts{EnableOpenMetrics: true})
	fast := newExposition(exp, prometheus.NewRegistry(), fallback, watch, attribute.NewAllowKeysFilter())
	m := mp.Meter("bench")
	h, _ := m.Float64Histogram("netpulse.ping.rtt", metric.WithUnit("s"))
	c, _ := m.Int64Counter("netpulse.ping.packets.sent")
	for i := range 1000 {
		attrs := metric.WithAttributes(attribute.String("probe_name", "wan"), attribute.String("target_name", fmt.Sprintf("t-%04d", i)))
		h.Record(context.Background(), 0.01, attrs)
		c.Add(context.Background(), 10, attrs)
	}
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"exporter", fallback}, {"direct", fast}} {
		b.Run(bc.name, func(b *testing.B) {
			start := time.Now()
			var size int
			for b.Loop() {
				body, _ := scrape(b, bc.h, openMetricsAccept, "")
				size = len(body)
			}
			_ = start
			b.ReportMetric(float64(size), "bytes/scrape")
		})
	}
}

// lineDiff lists the lines only one of two encodings has.
func lineDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out strings.Builder
	for _, l := range wl {
		if !slices.Contains(gl, l) {
			fmt.Fprintf(&out, "- %s\n", l)
		}
	}
	for _, l := range gl {
		if !slices.Contains(wl, l) {
			fmt.Fprintf(&out, "+ %s\n", l)
		}
	}
	if out.Len() == 0 {
		return "the same lines in another order:\n--- exporter\n" + want + "--- direct\n" + got
	}
	return out.String()
}
