package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"

	"github.com/netpulse/netpulse/internal/config"
)

// exponential is the aggregation of histograms recorded as base-2
// exponential histograms: 160 buckets at up to scale 20, about 0.4 %
// relative error per bucket across the 50 µs–10 s an RTT spans (the SDK
// lowers the scale until the observed range fits).
var exponential = sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}

// perProbe are the instruments the lean profile keeps per probe rather than
// per target: a run's duration is the harness's cost, which dashboards show
// per probe; a target's outcome and RTT have their own series.
var perProbe = map[string]bool{"netpulse.probe.duration": true}

// leanDropped are the instruments the lean profile does not export: the
// last run's RTT spread, which the history, the API and the RTT histogram
// carry as well.
var leanDropped = map[string]bool{"netpulse.ping.rtt.stddev": true}

// perProbeKeys are the attributes a per-probe instrument keeps. Global labels
// are resource attributes and stay.
var perProbeKeys = attribute.NewAllowKeysFilter("probe.name", "probe.type")

// views returns the SDK views of the configured profile: none by default;
// exponential histograms when asked for or lean; the lean profile's
// per-probe and dropped instruments. One view function decides every
// instrument, as two views matching one instrument would export it twice.
func views(cfg config.Telemetry) []sdkmetric.Option {
	lean := cfg.Lean()
	expo := cfg.ExponentialHistograms || lean
	if !expo {
		return nil
	}
	view := func(in sdkmetric.Instrument) (sdkmetric.Stream, bool) {
		s := sdkmetric.Stream{Name: in.Name, Description: in.Description, Unit: in.Unit}
		matched := false
		if expo && in.Kind == sdkmetric.InstrumentKindHistogram {
			s.Aggregation, matched = exponential, true
		}
		if lean && leanDropped[in.Name] {
			s.Aggregation, matched = sdkmetric.AggregationDrop{}, true
		}
		if lean && perProbe[in.Name] {
			s.AttributeFilter, matched = perProbeKeys, true
			s.ExemplarReservoirProviderSelector = withoutFilteredAttributes
		}
		return s, matched
	}
	return []sdkmetric.Option{sdkmetric.WithView(view)}
}

// withoutFilteredAttributes keeps the default exemplar reservoirs but not the
// attributes a view filtered out: the SDK would put them on the exemplar,
// and a target's name and labels beside trace_id and span_id can pass the
// 128 characters OpenMetrics allows an exemplar's labels, which loses the
// exemplar and counts an SDK error.
func withoutFilteredAttributes(agg sdkmetric.Aggregation) exemplar.ReservoirProvider {
	provider := sdkmetric.DefaultExemplarReservoirProviderSelector(agg)
	return func(attrs attribute.Set) exemplar.Reservoir { return unfiltered{provider(attrs)} }
}

type unfiltered struct{ exemplar.Reservoir }

func (r unfiltered) Offer(ctx context.Context, t time.Time, v exemplar.Value, _ []attribute.KeyValue) {
	r.Reservoir.Offer(ctx, t, v, nil)
}
