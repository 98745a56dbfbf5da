package telemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// exposition serves /metrics in the OpenMetrics text format straight from
// the SDK's collected data, writing the bytes the OTel Prometheus exporter
// and promhttp would (TestExpositionMatchesExporter), in a fraction of
// the time: the exporter builds a Desc, a const metric and a protobuf
// message for every series and the registry then checks, sorts and
// encodes them (~120 ms for 1,000 ping targets, 62,000 lines). Here each
// series' label block is rendered once and kept while the series exists.
//
// Other formats (the protobuf one Prometheus asks for to get native
// histograms, the classic text format) and exponential histograms are
// served by promhttp from the registry, as before.
type exposition struct {
	reader   sdkmetric.Reader    // the exporter's
	runtime  prometheus.Gatherer // Go and process collectors
	fallback http.Handler
	overflow *overflowWatch
	resource attribute.Filter // resource attributes that label every series

	namer  otlptranslator.MetricNamer
	labels otlptranslator.LabelNamer

	mu sync.Mutex
	// blocks are rendered label blocks (`a="x",b="y"`, sorted by name,
	// with the resource's labels), by attribute set; kept from one
	// collection to the next, dropped when a set is no longer seen.
	blocks   map[attribute.Distinct]*block
	resLabel []labelPair
	info     []byte // the target_info family
	gen      uint64
	size     int // the last answer's size, to size the next
	rm       metricdata.ResourceMetrics
}

type labelPair struct{ name, value string }

type block struct {
	text  string      // rendered pairs, without braces
	order string      // sorts series as the registry does (blockOrder)
	gen   uint64      // last collection that saw it
	pairs []labelPair // sorted
}

// blockOrder is a string whose order is the registry's order of series:
// fewer labels first, then label values in label-name order.
func blockOrder(pairs []labelPair) string {
	b := []byte{byte(min(len(pairs), 255))}
	for _, p := range pairs {
		b = append(b, p.value...)
		b = append(b, 0)
	}
	return string(b)
}

func newExposition(reader sdkmetric.Reader, runtime prometheus.Gatherer, fallback http.Handler, overflow *overflowWatch,
	resource attribute.Filter) *exposition {
	return &exposition{reader: reader, runtime: runtime, fallback: fallback, overflow: overflow, resource: resource,
		namer:  otlptranslator.NewMetricNamer("", otlptranslator.UnderscoreEscapingWithSuffixes),
		labels: otlptranslator.LabelNamer{}, blocks: map[attribute.Distinct]*block{}}
}

func (e *exposition) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultOpenMetricsAcceptedFormats()...)
	if format.FormatType() != expfmt.TypeOpenMetrics {
		e.fallback.ServeHTTP(w, r)
		return
	}
	body, ok := e.render(r.Context())
	if !ok {
		e.fallback.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", string(format))
	if gzipAccepted(r.Header.Get("Accept-Encoding")) {
		w.Header().Set("Content-Encoding", "gzip")
		gz := gzipPool.Get().(*gzip.Writer)
		gz.Reset(w)
		_, _ = gz.Write(body)
		_ = gz.Close()
		gzipPool.Put(gz)
	} else {
		_, _ = w.Write(body)
	}
	body = body[:0]
	outPool.Put(&body)
}

// gzipPool holds writers at BestSpeed: 7 MB of exposition compress ~3x
// faster than at the default level, to ~3 % of their size instead of ~2 %.
var gzipPool = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return w
}}

func gzipAccepted(h string) bool {
	for _, part := range strings.Split(h, ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && !strings.Contains(strings.ReplaceAll(q, " ", ""), "q=0") {
			return true
		}
	}
	return false
}

// family is one metric family to write: an instrument's data, or
// bytes encoded already (target_info, the Go and process collectors').
type family struct {
	name string
	m    *metricdata.Metrics
	text []byte
}

// outPool holds answer buffers (7 MB for 1,000 ping targets).
var outPool sync.Pool

// render collects and encodes everything; ok is false when something
// needs the exporter's own path (an exponential histogram). The answer
// goes back to outPool once written.
func (e *exposition) render(ctx context.Context) ([]byte, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	// The SDK refills the slices of the last collection where they are
	// large enough: at 1,000 targets with exemplars, a fresh one cost
	// ~50 MB of allocations a scrape.
	rm := &e.rm
	if err := e.reader.Collect(ctx, rm); err != nil {
		return nil, false
	}
	e.gen++
	if e.info == nil {
		e.setResource(rm)
	}
	fams := []family{{name: "target_info", text: e.info}}
	for _, sm := range rm.ScopeMetrics {
		for i := range sm.Metrics {
			name, ok := e.name(sm.Metrics[i])
			if !ok {
				return nil, false
			}
			fams = append(fams, family{name: name, m: &sm.Metrics[i]})
		}
	}
	if mfs, err := e.runtime.Gather(); err == nil {
		for _, mf := range mfs {
			var buf bytes.Buffer
			if _, err := expfmt.MetricFamilyToOpenMetrics(&buf, mf); err == nil {
				fams = append(fams, family{name: mf.GetName(), text: buf.Bytes()})
			}
		}
	}
	// Stable: of two instruments with one name, the exporter keeps the
	// first collected.
	slices.SortStableFunc(fams, func(a, b family) int { return strings.Compare(a.name, b.name) })
	var out []byte
	if p, ok := outPool.Get().(*[]byte); ok {
		out = *p
	}
	if cap(out) < e.size {
		out = make([]byte, 0, e.size+e.size/8)
	}
	out = out[:0]
	for i, f := range fams {
		if i > 0 && f.name == fams[i-1].name {
			continue // a name clash, which the exporter drops too
		}
		if f.m == nil {
			out = append(out, f.text...)
			continue
		}
		out = e.encode(out, *f.m, f.name)
	}
	for d, b := range e.blocks {
		if b.gen != e.gen {
			delete(e.blocks, d)
		}
	}
	out = append(out, "# EOF\n"...)
	e.size = len(out)
	return out, true
}

// setResource renders target_info and the resource labels every series
// carries.
func (e *exposition) setResource(rm *metricdata.ResourceMetrics) {
	all := e.pairs(rm.Resource.Set().ToSlice(), nil)
	b := []byte("# HELP target_info Target metadata\n# TYPE target_info gauge\ntarget_info")
	b = appendBlock(b, all, "", 0)
	e.info = append(b, " 1.0\n"...)
	kept, _ := rm.Resource.Set().Filter(e.resource)
	e.resLabel = e.pairs(kept.ToSlice(), nil)
}

// pairs translates attributes to label pairs as the exporter does
// (sanitized names; values of names that collide joined with ";" in
// sorted order), sorted by name, merged with extra (already sorted).
func (e *exposition) pairs(kvs []attribute.KeyValue, extra []labelPair) []labelPair {
	byName := map[string][]string{}
	for _, kv := range kvs {
		name, err := e.labels.Build(string(kv.Key))
		if err != nil {
			continue
		}
		byName[name] = append(byName[name], kv.Value.String())
	}
	out := make([]labelPair, 0, len(byName)+len(extra))
	for name, vals := range byName {
		slices.Sort(vals)
		out = append(out, labelPair{name, strings.Join(vals, ";")})
	}
	out = append(out, extra...)
	slices.SortFunc(out, func(a, b labelPair) int { return strings.Compare(a.name, b.name) })
	return out
}

// series returns the label block of an attribute set.
func (e *exposition) series(set attribute.Set) *block {
	d := set.Equivalent()
	if b, ok := e.blocks[d]; ok {
		b.gen = e.gen
		return b
	}
	b := &block{gen: e.gen, pairs: e.pairs(set.ToSlice(), e.resLabel)}
	var text []byte
	for i, p := range b.pairs {
		if i > 0 {
			text = append(text, ',')
		}
		text = appendPair(text, p)
	}
	b.text, b.order = string(text), blockOrder(b.pairs)
	e.blocks[d] = b
	return b
}

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

// point is one series of a family, to be sorted and written.
type point struct {
	blk  *block
	line func(b []byte, name, labels string) []byte
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

// encode appends one instrument's family, named name (nothing when it
// has no series).
func (e *exposition) encode(b []byte, m metricdata.Metrics, name string) []byte {
	var points []point
	switch d := m.Data.(type) {
	case metricdata.Gauge[float64]:
		points = gaugePoints(e, d.DataPoints, nil)
	case metricdata.Gauge[int64]:
		points = gaugePoints(e, d.DataPoints, nil)
	case metricdata.Sum[float64]:
		points = sumPoints(e, d.DataPoints, d.IsMonotonic)
	case metricdata.Sum[int64]:
		points = sumPoints(e, d.DataPoints, d.IsMonotonic)
	case metricdata.Histogram[float64]:
		points = histPoints(e, d.DataPoints)
	case metricdata.Histogram[int64]:
		points = histPoints(e, d.DataPoints)
	}
	if len(points) == 0 {
		return b
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
	b = append(b, "# HELP "...)
	b = appendName(b, compliant)
	b = append(b, ' ')
	b = appendEscaped(b, m.Description)
	b = append(b, "\n# TYPE "...)
	b = appendName(b, compliant)
	b = append(b, ' ')
	b = append(b, typ...)
	b = append(b, '\n')
	for _, p := range points {
		b = p.line(b, name, p.blk.text)
	}
	return b
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

func gaugePoints[N int64 | float64](e *exposition, dps []metricdata.DataPoint[N], _ any) []point {
	out := make([]point, 0, len(dps))
	for _, dp := range dps {
		v := float64(dp.Value)
		out = append(out, point{blk: e.series(dp.Attributes), line: func(b []byte, name, labels string) []byte {
			b = sample(b, name, "", labels, "", 0)
			b = appendFloat(b, v)
			return append(b, '\n')
		}})
	}
	return out
}

func sumPoints[N int64 | float64](e *exposition, dps []metricdata.DataPoint[N], monotonic bool) []point {
	out := make([]point, 0, len(dps))
	for _, dp := range dps {
		v := float64(dp.Value)
		var ex []metricdata.Exemplar[N]
		if monotonic {
			ex = dp.Exemplars
		}
		out = append(out, point{blk: e.series(dp.Attributes), line: func(b []byte, name, labels string) []byte {
			b = sample(b, name, "", labels, "", 0)
			b = appendFloat(b, v)
			if len(ex) > 0 { // the exporter keeps the last
				b = appendExemplar(b, e, ex[len(ex)-1])
			}
			return append(b, '\n')
		}})
	}
	return out
}

func histPoints[N int64 | float64](e *exposition, dps []metricdata.HistogramDataPoint[N]) []point {
	out := make([]point, 0, len(dps))
	for _, dp := range dps {
		out = append(out, point{blk: e.series(dp.Attributes), line: func(b []byte, name, labels string) []byte {
			// Each exemplar goes to the first bucket that holds its
			// value (a later one replaces an earlier), past the last
			// bound to +Inf, as client_golang places them.
			var exAt map[int]int
			if len(dp.Exemplars) > 0 {
				exAt = make(map[int]int, len(dp.Exemplars))
			}
			for i, ex := range dp.Exemplars {
				j, _ := slices.BinarySearch(dp.Bounds, float64(ex.Value))
				exAt[j] = i
			}
			var cum uint64
			for i, bound := range dp.Bounds {
				cum += dp.BucketCounts[i]
				b = sample(b, name, "_bucket", labels, "le", bound)
				b = strconv.AppendUint(b, cum, 10)
				if x, ok := exAt[i]; ok {
					b = appendExemplar(b, e, dp.Exemplars[x])
				}
				b = append(b, '\n')
			}
			b = sample(b, name, "_bucket", labels, "le", math.Inf(1))
			b = strconv.AppendUint(b, dp.Count, 10)
			if x, ok := exAt[len(dp.Bounds)]; ok {
				b = appendExemplar(b, e, dp.Exemplars[x])
			}
			b = append(b, '\n')
			b = sample(b, name, "_sum", labels, "", 0)
			b = appendFloat(b, float64(dp.Sum))
			b = append(b, '\n')
			b = sample(b, name, "_count", labels, "", 0)
			b = strconv.AppendUint(b, dp.Count, 10)
			return append(b, '\n')
		}})
	}
	return out
}
