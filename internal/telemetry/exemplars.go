package telemetry

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/trace"
)

// Exemplars exist so that a point on a dashboard opens the trace of the run
// that made it (Grafana → Tempo). netpulse attaches them where that click
// means something, and keeps them cheap enough for a scrape of 1,000 targets
// to stay within its budget (BenchmarkScrape1000Targets in
// internal/probe/ping).
//
// Where: every explicit-bucket histogram (RTTs, run durations, lookup
// times: the panels with exemplars turned on) and the runs counter (a
// failed run's trace says why). Packet and byte counters get none: a
// packet count has no run to open that the RTT histogram's exemplar
// does not open already, and each exemplar takes a place in Prometheus'
// exemplar storage (a ring of 100,000 by default) that a useful one
// would otherwise keep.
//
// How: the latest measurement per histogram bucket (one slot for a
// counter) instead of the SDK's default reservoirs, which sample
// uniformly (Algorithm L) and so draw three random numbers, three
// logarithms and two exponentials per bucket at every collection,
// allocate each exemplar's trace and span ids anew, and leave the SDK's
// pooled exemplar slice as long as a histogram's buckets, which then sizes
// every counter point's exemplars (2.7 KB each, ~10 MB a scrape): at
// 1,000 targets with exemplars this doubled a scrape's CPU. The latest is also what
// a user looking at a recent spike wants to open; the exporters write
// one exemplar per bucket or counter anyway.

// exemplarCounters are the counters that carry an exemplar.
var exemplarCounters = map[string]bool{"netpulse.probe.runs": true}

// exemplarReservoirs is the views' reservoir selector for an instrument.
// dropFiltered leaves out the attributes a view filtered from the series:
// the SDK would put them on the exemplar, and a target's name and labels
// beside trace_id and span_id can pass the 128 characters OpenMetrics
// allows an exemplar's labels, which loses the exemplar and counts an SDK
// error.
func exemplarReservoirs(in sdkmetric.Instrument, dropFiltered bool) sdkmetric.ExemplarReservoirProviderSelector {
	return func(agg sdkmetric.Aggregation) exemplar.ReservoirProvider {
		switch a := agg.(type) {
		case sdkmetric.AggregationExplicitBucketHistogram:
			if len(a.Boundaries) > 0 {
				bounds := slices.Sorted(slices.Values(a.Boundaries))
				return func(attribute.Set) exemplar.Reservoir { return newLatest(bounds, dropFiltered) }
			}
		case sdkmetric.AggregationBase2ExponentialHistogram:
			// Served by the exporter (native histograms take several
			// exemplars): the SDK's default, only without filtered
			// attributes when asked.
			provider := sdkmetric.DefaultExemplarReservoirProviderSelector(agg)
			if !dropFiltered {
				return provider
			}
			return func(attrs attribute.Set) exemplar.Reservoir { return unfiltered{provider(attrs)} }
		}
		if in.Kind == sdkmetric.InstrumentKindHistogram || exemplarCounters[in.Name] {
			return func(attribute.Set) exemplar.Reservoir { return newLatest(nil, dropFiltered) }
		}
		return noExemplars
	}
}

// noExemplars keeps nothing.
func noExemplars(attribute.Set) exemplar.Reservoir { return none{} }

type none struct{}

func (none) Offer(context.Context, time.Time, exemplar.Value, []attribute.KeyValue) {}

// Collect leaves dest without capacity: the SDK gives each data point an
// exemplar slice as large as dest's capacity, even an empty one.
func (none) Collect(dest *[]exemplar.Exemplar) { *dest = nil }

type unfiltered struct{ exemplar.Reservoir }

func (r unfiltered) Offer(ctx context.Context, t time.Time, v exemplar.Value, _ []attribute.KeyValue) {
	r.Reservoir.Offer(ctx, t, v, nil)
}

// latest keeps the latest measurement of each histogram bucket, or the
// latest of all with no bounds. Its own lock makes it safe whatever the
// SDK does (it also serialises reservoirs that do not declare themselves
// concurrent-safe); Offer holds it for a few stores.
//
// Slots exist only for buckets that were hit, in bucket order: a target's
// RTTs fill two or three of 25 buckets, and a slot per bucket would take
// ~3 KB per series (5 MB at 1,000 targets) for nothing.
type latest struct {
	bounds       []float64 // sorted; nil: one slot
	dropFiltered bool

	mu    sync.Mutex
	slots []slot
}

type slot struct {
	bucket   int
	time     time.Time
	value    exemplar.Value
	filtered []attribute.KeyValue
	traceID  trace.TraceID
	spanID   trace.SpanID
	// ids holds traceID then spanID as Collect last handed them out
	// (nil when neither is set). Handed-out bytes may still be read by
	// the reader that collected them, so they are never written again:
	// an Offer marks them stale, and the next Collect allocates anew.
	ids   []byte
	stale bool
}

func newLatest(bounds []float64, dropFiltered bool) *latest {
	return &latest{bounds: bounds, dropFiltered: dropFiltered}
}

func (r *latest) Offer(ctx context.Context, t time.Time, v exemplar.Value, filtered []attribute.KeyValue) {
	bucket := 0
	if r.bounds != nil {
		var f float64
		switch v.Type() {
		case exemplar.Int64ValueType:
			f = float64(v.Int64())
		case exemplar.Float64ValueType:
			f = v.Float64()
		}
		// The bucket whose upper bound holds f, as the histogram counts it.
		bucket = sort.SearchFloat64s(r.bounds, f)
	}
	if r.dropFiltered {
		filtered = nil
	}
	sc := trace.SpanContextFromContext(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	i := 0
	for i < len(r.slots) && r.slots[i].bucket < bucket {
		i++
	}
	if i == len(r.slots) || r.slots[i].bucket != bucket {
		r.slots = slices.Insert(r.slots, i, slot{bucket: bucket})
	}
	s := &r.slots[i]
	s.time, s.value, s.filtered = t, v, filtered
	s.traceID, s.spanID, s.stale = sc.TraceID(), sc.SpanID(), true
}

// Collect returns the kept exemplars in bucket order. The ids of the slots
// offered to since the last Collect share one new allocation; the others
// reuse what they handed out before. dest is left no longer than needed:
// the SDK sizes each data point's exemplars to it.
func (r *latest) Collect(dest *[]exemplar.Exemplar) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fresh := 0
	for i := range r.slots {
		if r.slots[i].stale && (r.slots[i].traceID.IsValid() || r.slots[i].spanID.IsValid()) {
			fresh++
		}
	}
	var buf []byte
	if fresh > 0 {
		buf = make([]byte, 0, fresh*(len(trace.TraceID{})+len(trace.SpanID{})))
	}
	out := (*dest)[:0]
	for i := range r.slots {
		s := &r.slots[i]
		if s.stale {
			s.stale, s.ids = false, nil
			if s.traceID.IsValid() || s.spanID.IsValid() {
				start := len(buf)
				buf = append(append(buf, s.traceID[:]...), s.spanID[:]...)
				s.ids = buf[start:len(buf):len(buf)]
			}
		}
		e := exemplar.Exemplar{FilteredAttributes: s.filtered, Time: s.time, Value: s.value}
		if s.ids != nil {
			if s.traceID.IsValid() {
				e.TraceID = s.ids[:len(s.traceID):len(s.traceID)]
			}
			if s.spanID.IsValid() {
				e.SpanID = s.ids[len(s.traceID):]
			}
		}
		out = append(out, e)
	}
	*dest = out[:len(out):len(out)]
}
