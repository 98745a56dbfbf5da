package telemetry

// The OpenMetrics text encoding of exposition.go: what expfmt writes for
// the exporter's families, byte for byte (TestExpositionMatchesExporter).

import (
	"bytes"
	"encoding/hex"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func appendPair(b []byte, p labelPair) []byte {
	b = appendName(b, p.name)
	b = append(b, `="`...)
	b = appendEscaped(b, p.value)
	return append(b, '"')
}

// appendBlock appends {pairs[,extra="v"]}, or nothing when both are
// empty, as expfmt writes a sample's labels.
func appendBlock(b []byte, pairs []labelPair, extra string, extraValue float64) []byte {
	if len(pairs) == 0 && extra == "" {
		return b
	}
	b = append(b, '{')
	for i, p := range pairs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendPair(b, p)
	}
	if extra != "" {
		if len(pairs) > 0 {
			b = append(b, ',')
		}
		b = append(b, extra...)
		b = append(b, `="`...)
		b = appendFloat(b, extraValue)
		b = append(b, '"')
	}
	return append(b, '}')
}

// appendName writes a metric or label name, quoted when it is not a
// legacy Prometheus name (never, after the exporter's escaping).
func appendName(b []byte, name string) []byte {
	if model.LegacyValidation.IsValidMetricName(name) {
		return append(b, name...)
	}
	return strconv.AppendQuote(b, name)
}

var quotedEscaper = strings.NewReplacer("\\", `\\`, "\n", `\n`, "\"", `\"`)

func appendEscaped(b []byte, s string) []byte {
	if !strings.ContainsAny(s, "\\\n\"") {
		return append(b, s...)
	}
	return append(b, quotedEscaper.Replace(s)...)
}

// appendFloat writes f as expfmt's OpenMetrics encoder does.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case f == 1:
		return append(b, "1.0"...)
	case f == 0:
		return append(b, "0.0"...)
	case f == -1:
		return append(b, "-1.0"...)
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, +1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'g', -1, 64)
	if !bytes.ContainsAny(b[start:], "e.") {
		b = append(b, '.', '0')
	}
	return b
}

// point is one series of a family, to be sorted and written: its label
// block and its index in the family's data points.
type point struct {
	blk *block
	i   int
}

// kind returns an instrument's naming type and its OpenMetrics type; ok
// is false for what only the exporter writes.
func kind(m metricdata.Metrics) (otlptranslator.MetricType, string, bool) {
	switch d := m.Data.(type) {
	case metricdata.Gauge[float64], metricdata.Gauge[int64]:
		return otlptranslator.MetricTypeGauge, "gauge", true
	case metricdata.Sum[float64]:
		return sumKind(d.IsMonotonic), sumType(d.IsMonotonic), true
	case metricdata.Sum[int64]:
		return sumKind(d.IsMonotonic), sumType(d.IsMonotonic), true
	case metricdata.Histogram[float64], metricdata.Histogram[int64]:
		return otlptranslator.MetricTypeHistogram, "histogram", true
	}
	return 0, "", false
}

// name is the family name the exporter gives an instrument.
func (e *exposition) name(m metricdata.Metrics) (string, bool) {
	typ, _, ok := kind(m)
	if !ok {
		return "", false
	}
	name, err := e.namer.Build(otlptranslator.Metric{Name: m.Name, Unit: m.Unit, Type: typ})
	return name, err == nil
}

// encode writes one instrument's family, named name (nothing when it has
// no series), spilling to gzip between series.
func (e *exposition) encode(s *sink, m metricdata.Metrics, name string) {
	switch d := m.Data.(type) {
	case metricdata.Gauge[float64]:
		e.points = pointsOf(e, d.DataPoints, e.points[:0])
	case metricdata.Gauge[int64]:
		e.points = pointsOf(e, d.DataPoints, e.points[:0])
	case metricdata.Sum[float64]:
		e.points = pointsOf(e, d.DataPoints, e.points[:0])
	case metricdata.Sum[int64]:
		e.points = pointsOf(e, d.DataPoints, e.points[:0])
	case metricdata.Histogram[float64]:
		e.points = histPointsOf(e, d.DataPoints, e.points[:0])
	case metricdata.Histogram[int64]:
		e.points = histPointsOf(e, d.DataPoints, e.points[:0])
	}
	points := e.points
	if len(points) == 0 {
		return
	}
	for _, p := range points {
		if p.blk.overflowed() {
			e.overflow.seen(name)
			break
		}
	}
	slices.SortFunc(points, func(a, b point) int { return strings.Compare(a.blk.order, b.blk.order) })
	_, typ, _ := kind(m)
	compliant := name
	if typ == "counter" {
		compliant = strings.TrimSuffix(name, "_total")
	}
	b := s.buf
	b = append(b, "# HELP "...)
	b = appendName(b, compliant)
	b = append(b, ' ')
	b = appendEscaped(b, m.Description)
	b = append(b, "\n# TYPE "...)
	b = appendName(b, compliant)
	b = append(b, ' ')
	b = append(b, typ...)
	s.buf = append(b, '\n')
	switch d := m.Data.(type) {
	case metricdata.Gauge[float64]:
		writeValues(e, s, name, d.DataPoints, points, false)
	case metricdata.Gauge[int64]:
		writeValues(e, s, name, d.DataPoints, points, false)
	case metricdata.Sum[float64]:
		writeValues(e, s, name, d.DataPoints, points, d.IsMonotonic)
	case metricdata.Sum[int64]:
		writeValues(e, s, name, d.DataPoints, points, d.IsMonotonic)
	case metricdata.Histogram[float64]:
		writeHistograms(e, s, name, d.DataPoints, points)
	case metricdata.Histogram[int64]:
		writeHistograms(e, s, name, d.DataPoints, points)
	}
	clear(points) // no block kept alive past its series
}

func (b *block) overflowed() bool {
	for _, p := range b.pairs {
		if p.name == "otel_metric_overflow" {
			return true
		}
	}
	return false
}

func sumKind(monotonic bool) otlptranslator.MetricType {
	if monotonic {
		return otlptranslator.MetricTypeMonotonicCounter
	}
	return otlptranslator.MetricTypeNonMonotonicCounter
}

func sumType(monotonic bool) string {
	if monotonic {
		return "counter"
	}
	return "gauge"
}

// sample appends `name{labels} ` (the value follows).
func sample(b []byte, name, suffix, labels, extra string, extraValue float64) []byte {
	b = append(b, name...)
	b = append(b, suffix...)
	if labels != "" || extra != "" {
		b = append(b, '{')
		b = append(b, labels...)
		if extra != "" {
			if labels != "" {
				b = append(b, ',')
			}
			b = append(b, extra...)
			b = append(b, `="`...)
			b = appendFloat(b, extraValue)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	return append(b, ' ')
}

// appendExemplar writes ` # {span_id="…",trace_id="…"} value time`.
func appendExemplar[N int64 | float64](b []byte, e *exposition, ex metricdata.Exemplar[N]) []byte {
	b = append(b, " # "...)
	if len(ex.FilteredAttributes) == 0 {
		// The usual exemplar, written without allocating.
		b = append(b, `{span_id="`...)
		b = hex.AppendEncode(b, ex.SpanID)
		b = append(b, `",trace_id="`...)
		b = hex.AppendEncode(b, ex.TraceID)
		b = append(b, `"}`...)
	} else {
		b = appendBlock(b, e.pairs(ex.FilteredAttributes, []labelPair{
			{otlptranslator.ExemplarSpanIDKey, hex.EncodeToString(ex.SpanID)},
			{otlptranslator.ExemplarTraceIDKey, hex.EncodeToString(ex.TraceID)}}), "", 0)
	}
	b = append(b, ' ')
	b = appendFloat(b, float64(ex.Value))
	b = append(b, ' ')
	return appendFloat(b, float64(ex.Time.UnixNano())/1e9)
}

func pointsOf[N int64 | float64](e *exposition, dps []metricdata.DataPoint[N], out []point) []point {
	for i := range dps {
		out = append(out, point{blk: e.series(dps[i].Attributes), i: i})
	}
	return out
}

func histPointsOf[N int64 | float64](e *exposition, dps []metricdata.HistogramDataPoint[N], out []point) []point {
	for i := range dps {
		out = append(out, point{blk: e.series(dps[i].Attributes), i: i})
	}
	return out
}

// writeValues writes gauges' and sums' samples; a monotonic sum's (a
// counter's) carries its last exemplar, as the exporter keeps the last.
func writeValues[N int64 | float64](e *exposition, s *sink, name string, dps []metricdata.DataPoint[N], points []point,
	exemplars bool) {
	for _, p := range points {
		dp := &dps[p.i]
		b := sample(s.buf, name, "", p.blk.text, "", 0)
		b = appendFloat(b, float64(dp.Value))
		if exemplars && len(dp.Exemplars) > 0 {
			b = appendExemplar(b, e, dp.Exemplars[len(dp.Exemplars)-1])
		}
		s.buf = append(b, '\n')
		s.spill()
	}
}

// writeHistograms writes each series' buckets, sum and count. Each
// exemplar goes to the first bucket that holds its value (a later one
// replaces an earlier), past the last bound to +Inf, as client_golang
// places them.
func writeHistograms[N int64 | float64](e *exposition, s *sink, name string, dps []metricdata.HistogramDataPoint[N],
	points []point) {
	for _, p := range points {
		dp := &dps[p.i]
		labels := p.blk.text
		// exAt[j] is the exemplar of bucket j, +1 (0: none).
		exAt := e.exAt[:0]
		if len(dp.Exemplars) > 0 {
			exAt = slices.Grow(exAt, len(dp.Bounds)+1)[:len(dp.Bounds)+1]
			clear(exAt)
			for i, ex := range dp.Exemplars {
				j, _ := slices.BinarySearch(dp.Bounds, float64(ex.Value))
				exAt[j] = i + 1
			}
			e.exAt = exAt
		}
		b := s.buf
		var cum uint64
		for i, bound := range dp.Bounds {
			cum += dp.BucketCounts[i]
			b = sample(b, name, "_bucket", labels, "le", bound)
			b = strconv.AppendUint(b, cum, 10)
			if len(exAt) > 0 && exAt[i] > 0 {
				b = appendExemplar(b, e, dp.Exemplars[exAt[i]-1])
			}
			b = append(b, '\n')
		}
		b = sample(b, name, "_bucket", labels, "le", math.Inf(1))
		b = strconv.AppendUint(b, dp.Count, 10)
		if last := len(dp.Bounds); len(exAt) > 0 && exAt[last] > 0 {
			b = appendExemplar(b, e, dp.Exemplars[exAt[last]-1])
		}
		b = append(b, '\n')
		b = sample(b, name, "_sum", labels, "", 0)
		b = appendFloat(b, float64(dp.Sum))
		b = append(b, '\n')
		b = sample(b, name, "_count", labels, "", 0)
		b = strconv.AppendUint(b, dp.Count, 10)
		s.buf = append(b, '\n')
		s.spill()
	}
}
