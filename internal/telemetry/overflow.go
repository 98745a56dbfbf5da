package telemetry

import (
	"context"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// overflowKey is the attribute the SDK puts on the one series into which it
// merges an instrument's attribute sets past its cardinality limit.
const overflowKey = "otel.metric.overflow"

// overflowWatch notices merged series in what is exported (the SDK says
// nothing when it merges), logs each instrument at warn once and counts
// every collection that carried one, so a limit that is too small is seen.
type overflowWatch struct {
	logger  *slog.Logger
	limit   int
	counter metric.Int64Counter

	mu     sync.Mutex
	logged map[string]bool
}

func newOverflowWatch(logger *slog.Logger, limit int) *overflowWatch {
	return &overflowWatch{logger: logger, limit: limit, logged: map[string]bool{}}
}

// count creates the counter, once the meter provider exists (the watch
// wraps its readers, so it is made before).
func (w *overflowWatch) count(mp metric.MeterProvider) error {
	c, err := mp.Meter(scopeName).Int64Counter("netpulse.telemetry.overflows", metric.WithUnit("{collection}"),
		metric.WithDescription("Collections in which an instrument had more series than telemetry.cardinality_limit "+
			"and the SDK merged the excess into one otel_metric_overflow series."))
	if err != nil {
		return err
	}
	c.Add(context.Background(), 0)
	w.counter = c
	return nil
}

func (w *overflowWatch) seen(name string) {
	w.counter.Add(context.Background(), 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.logged[name] {
		w.logged[name] = true
		w.logger.Warn("series merged: an instrument has more series than its cardinality limit",
			"metric", name, "limit", w.limit, "fix", "raise telemetry.cardinality_limit, or set it to 0 (sized from the configuration)")
	}
}

// gatherer wraps the Prometheus registry.
func (w *overflowWatch) gatherer(g prometheus.Gatherer) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := g.Gather()
		for _, mf := range mfs {
			if familyOverflowed(mf) {
				w.seen(mf.GetName())
			}
		}
		return mfs, err
	})
}

func familyOverflowed(mf *dto.MetricFamily) bool {
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "otel_metric_overflow" {
				return true
			}
		}
	}
	return false
}

// exporter wraps an OTLP metric exporter.
func (w *overflowWatch) exporter(e sdkmetric.Exporter) sdkmetric.Exporter {
	return overflowExporter{e, w}
}

type overflowExporter struct {
	sdkmetric.Exporter
	w *overflowWatch
}

func (e overflowExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if dataOverflowed(m.Data) {
				e.w.seen(m.Name)
			}
		}
	}
	return e.Exporter.Export(ctx, rm)
}

// dataOverflowed reports whether a data point of the kinds netpulse
// records carries the overflow attribute.
func dataOverflowed(data metricdata.Aggregation) bool {
	switch d := data.(type) {
	case metricdata.Sum[int64]:
		return anyOverflowed(d.DataPoints, func(p metricdata.DataPoint[int64]) attribute.Set { return p.Attributes })
	case metricdata.Gauge[int64]:
		return anyOverflowed(d.DataPoints, func(p metricdata.DataPoint[int64]) attribute.Set { return p.Attributes })
	case metricdata.Gauge[float64]:
		return anyOverflowed(d.DataPoints, func(p metricdata.DataPoint[float64]) attribute.Set { return p.Attributes })
	case metricdata.Histogram[float64]:
		return anyOverflowed(d.DataPoints, func(p metricdata.HistogramDataPoint[float64]) attribute.Set { return p.Attributes })
	}
	return false
}

func anyOverflowed[P any](points []P, attrs func(P) attribute.Set) bool {
	for _, p := range points {
		if a := attrs(p); a.HasValue(overflowKey) {
			return true
		}
	}
	return false
}
