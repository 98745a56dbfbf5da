package speedtest

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/netpulse/netpulse/internal/probe"
)

// Attribute keys of speed-test series (Prometheus labels direction, phase,
// period). Their values are the constants below: cardinality is fixed.
const (
	KeyDirection = attribute.Key("direction") // download, upload
	KeyPhase     = attribute.Key("phase")     // idle, download, upload
	KeyPeriod    = attribute.Key("period")    // day, month
	// KeyComponent is an RPM component: foreign, loaded.
	KeyComponent = attribute.Key("component")
	// KeyBound is a bound of RPM's 95 % interval: low, high.
	KeyBound = attribute.Key("bound")
)

// Directions and phases.
const (
	Download = "download"
	Upload   = "upload"
	Idle     = "idle"
)

// rttBuckets (seconds) span LAN round trips to the seconds of a bloated
// queue.
var rttBuckets = []float64{
	0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5,
}

// metrics are the speed-test instruments. Rates, latencies, loss and
// responsiveness are observable gauges fed from each target's last result
// (one entry per configured target, so cardinality is bounded by the
// config); a figure the last run did not measure is absent. Round trips go
// to a histogram, recorded with the run's context so exemplars link to its
// trace; bytes to a counter.
type metrics struct {
	rtt   metric.Float64Histogram
	bytes metric.Int64Counter

	last probe.Last[*Result]
}

func newMetrics(m metric.Meter, b *budget, probeName string) (*metrics, error) {
	in := probe.Instruments{Meter: m}
	ms := &metrics{
		rtt: in.Histogram("netpulse.speedtest.rtt", "s",
			"Round-trip times measured by speed tests, idle and under load (phase).", rttBuckets),
		bytes: in.Counter("netpulse.speedtest.bytes", "By",
			"Bytes speed tests transferred, by direction (what the data budget counts)."),
	}
	throughput := in.Gauge("netpulse.speedtest.throughput", "By/s",
		"Steady-state throughput of the last speed test, by direction, in bytes per second (x8 for bit/s).")
	latency := in.Gauge("netpulse.speedtest.latency", "s",
		"Latency of the last speed test: idle (phase=idle) and while downloading or uploading.")
	jitter := in.Gauge("netpulse.speedtest.jitter", "s",
		"Mean absolute difference of consecutive round trips in the last speed test, by phase.")
	increase := in.Gauge("netpulse.speedtest.latency.increase", "s",
		"Loaded minus idle latency of the last speed test, by direction (bufferbloat).")
	rpm := in.Gauge("netpulse.speedtest.responsiveness.rpm", "{rpm}",
		"Responsiveness (RPM, draft-ietf-ippm-responsiveness-09) of the last speed test, by loaded direction.")
	rpmPart := in.Gauge("netpulse.speedtest.responsiveness.component", "{rpm}",
		"The foreign and loaded components of the last speed test's RPM (component), by direction.")
	rpmBound := in.Gauge("netpulse.speedtest.responsiveness.bound", "{rpm}",
		"The low and high bounds (bound) of the 95 % confidence interval of the last speed test's RPM, by direction.")
	loss := in.Gauge("netpulse.speedtest.packet_loss", "1",
		"Share of the last speed test's UDP datagrams that did not arrive (0-1), when the server supports it.")
	used := in.Gauge("netpulse.speedtest.budget.used", "By", "Bytes speed tests used this local day or month (period).")
	limit := in.Gauge("netpulse.speedtest.budget.limit", "By", "The configured data budget per day or month (period).")
	if in.Err != nil {
		return nil, in.Err
	}
	budgetAttrs := func(period string) metric.ObserveOption {
		return metric.WithAttributes(probe.KeyProbeName.String(probeName), probe.KeyProbeType.String("speedtest"),
			KeyPeriod.String(period))
	}
	_, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		day, month := b.used()
		o.ObserveFloat64(used, float64(day), budgetAttrs("day"))
		o.ObserveFloat64(used, float64(month), budgetAttrs("month"))
		if b.daily > 0 {
			o.ObserveFloat64(limit, float64(b.daily), budgetAttrs("day"))
		}
		if b.monthly > 0 {
			o.ObserveFloat64(limit, float64(b.monthly), budgetAttrs("month"))
		}

		for t, r := range ms.last.All() {
			with := func(k attribute.Key, v string) metric.ObserveOption {
				return metric.WithAttributeSet(attribute.NewSet(append(t.Attrs.ToSlice(), k.String(v))...))
			}
			if r.Idle.Samples > 0 {
				o.ObserveFloat64(latency, r.Idle.Mean, with(KeyPhase, Idle))
				o.ObserveFloat64(jitter, r.Idle.Jitter, with(KeyPhase, Idle))
			}
			if r.PacketLoss != nil {
				o.ObserveFloat64(loss, *r.PacketLoss, metric.WithAttributeSet(t.Attrs))
			}
			for _, d := range []*Direction{r.Download, r.Upload} {
				if d == nil {
					continue
				}
				if d.Rate > 0 {
					o.ObserveFloat64(throughput, d.Rate, with(KeyDirection, d.Name))
				}
				if d.Loaded.Samples > 0 {
					o.ObserveFloat64(latency, d.Loaded.Mean, with(KeyPhase, d.Name))
					o.ObserveFloat64(jitter, d.Loaded.Jitter, with(KeyPhase, d.Name))
					if r := d.Responsiveness; r.RPM > 0 {
						o.ObserveFloat64(rpm, r.RPM, with(KeyDirection, d.Name))
						with2 := func(k attribute.Key, v string) metric.ObserveOption {
							return metric.WithAttributeSet(attribute.NewSet(append(t.Attrs.ToSlice(),
								KeyDirection.String(d.Name), k.String(v))...))
						}
						if r.ForeignRPM > 0 {
							o.ObserveFloat64(rpmPart, r.ForeignRPM, with2(KeyComponent, "foreign"))
						}
						if r.LoadedRPM > 0 {
							o.ObserveFloat64(rpmPart, r.LoadedRPM, with2(KeyComponent, "loaded"))
						}
						o.ObserveFloat64(rpmBound, r.Low, with2(KeyBound, "low"))
						o.ObserveFloat64(rpmBound, r.High, with2(KeyBound, "high"))
					}
					if r.Idle.Samples > 0 {
						o.ObserveFloat64(increase, d.LatencyIncrease, with(KeyDirection, d.Name))
					}
				}
			}
		}
		return nil
	}, throughput, latency, jitter, increase, rpm, rpmPart, rpmBound, loss, used, limit)
	if err != nil {
		return nil, err
	}
	return ms, nil
}

func (ms *metrics) recordRTT(ctx context.Context, t *probe.Target, phase string, seconds float64) {
	ms.rtt.Record(ctx, seconds, metric.WithAttributeSet(t.Attrs), metric.WithAttributes(KeyPhase.String(phase)))
}

// count adds a run's bytes, including zero, so every target's series exist
// from its first run.
func (ms *metrics) count(ctx context.Context, t *probe.Target, down, up int64) {
	ms.bytes.Add(ctx, down, metric.WithAttributeSet(t.Attrs), metric.WithAttributes(KeyDirection.String(Download)))
	ms.bytes.Add(ctx, up, metric.WithAttributeSet(t.Attrs), metric.WithAttributes(KeyDirection.String(Upload)))
}

func (ms *metrics) remember(t *probe.Target, r *Result) {
	ms.last.Set(t, r)
}
