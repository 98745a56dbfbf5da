package telemetry

import (
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

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

// views returns the one SDK view, which decides every instrument (two
// views matching one instrument would export it twice): its exemplar
// reservoirs (exemplars.go); exponential histograms when asked for or
// lean; the lean profile's per-probe and dropped instruments.
func views(cfg config.Telemetry) []sdkmetric.Option {
	lean := cfg.Lean()
	expo := cfg.ExponentialHistograms || lean
	view := func(in sdkmetric.Instrument) (sdkmetric.Stream, bool) {
		s := sdkmetric.Stream{Name: in.Name, Description: in.Description, Unit: in.Unit,
			ExemplarReservoirProviderSelector: exemplarReservoirs(in, false)}
		if expo && in.Kind == sdkmetric.InstrumentKindHistogram {
			s.Aggregation = exponential
		}
		if lean && leanDropped[in.Name] {
			s.Aggregation = sdkmetric.AggregationDrop{}
		}
		if lean && perProbe[in.Name] {
			s.AttributeFilter = perProbeKeys
			s.ExemplarReservoirProviderSelector = exemplarReservoirs(in, true)
		}
		return s, true
	}
	return []sdkmetric.Option{sdkmetric.WithView(view)}
}
