package telemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
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
