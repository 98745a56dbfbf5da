package probe

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/netpulse/netpulse/internal/config"
)

// Degraded says why a successful run's values exceed the target's
// thresholds ("loss 10% > 2%, latency 149 ms > 100 ms", "download 40 Mbit/s
// < 100 Mbit/s"), or "" when they do not. The values compared are those of
// the type's latency, jitter, loss, download and upload roles: a type
// without one (a speed test has no headline latency) ignores that
// threshold. The API's status and the page's badge use it;
// the alert rules compare the same thresholds through their metrics.
func Degraded(th config.Thresholds, typ *Type, v Values) string {
	if typ == nil || th.IsZero() {
		return ""
	}
	var why []string
	check := func(role, what string, limit float64, format func(float64) string) {
		name := typ.valueOf(role)
		got, ok := v[name]
		if name == "" || !ok || got <= limit {
			return
		}
		why = append(why, what+" "+format(got)+" > "+format(limit))
	}
	if th.Latency > 0 {
		check(RoleLatency, "latency", th.Latency.Seconds(), formatSeconds)
	}
	if th.Jitter > 0 {
		check(RoleJitter, "jitter", th.Jitter.Seconds(), formatSeconds)
	}
	if th.Loss != nil {
		check(RoleLoss, "loss", float64(*th.Loss), func(r float64) string { return config.Ratio(r).String() })
	}
	// Rates: degraded below the expected (a plan's) rate.
	for _, r := range []struct {
		role, what string
		limit      config.Rate
	}{{RoleDownload, "download", th.Download}, {RoleUpload, "upload", th.Upload}} {
		name := typ.valueOf(r.role)
		if got, ok := v[name]; r.limit > 0 && name != "" && ok && got < float64(r.limit) {
			why = append(why, r.what+" "+formatRate(got)+" < "+formatRate(float64(r.limit)))
		}
	}
	return strings.Join(why, ", ")
}

// valueOf is the name of the type's value with role, or "".
func (t *Type) valueOf(role string) string {
	for _, v := range t.Values {
		if v.Role == role {
			return v.Name
		}
	}
	return ""
}

// formatRate writes bytes per second in Mbit/s, as plans are quoted.
func formatRate(b float64) string {
	return strconv.FormatFloat(b*8/1e6, 'g', 3, 64) + " Mbit/s"
}

// formatSeconds writes a latency as people read it: 149 ms, 1.2 ms, 2.5 s.
func formatSeconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	if d >= time.Second {
		return strconv.FormatFloat(s, 'f', -1, 64) + " s"
	}
	ms := s * 1000
	if ms >= 10 {
		return fmt.Sprintf("%.0f ms", ms)
	}
	return strconv.FormatFloat(ms, 'g', 3, 64) + " ms"
}

// thresholdGauges export each target's thresholds (netpulse_threshold_*),
// beside its success gauge: the alert rules compare a target's values with
// them, so rules and page agree. A target without a threshold has no
// series for it (the rules fall back to tuning.yml's defaults).
type thresholdGauges struct {
	latency, jitter, loss, rate metric.Float64ObservableGauge
}

func newThresholdGauges(m metric.Meter) (*thresholdGauges, error) {
	in := Instruments{Meter: m}
	g := &thresholdGauges{
		latency: in.Gauge("netpulse.threshold.latency", "s", "Latency past which the target is degraded (thresholds.latency)."),
		jitter:  in.Gauge("netpulse.threshold.jitter", "s", "Jitter past which the target is degraded (thresholds.jitter)."),
		loss:    in.Gauge("netpulse.threshold.loss", "1", "Loss ratio past which the target is degraded (thresholds.loss, 0-1)."),
		rate: in.Gauge("netpulse.threshold.throughput", "By/s",
			"Rate by direction below which a speed test is degraded (thresholds.download, thresholds.upload)."),
	}
	return g, in.Err
}

func (g *thresholdGauges) observe(o metric.Observer, t *Target, opt metric.ObserveOption) {
	th := t.Thresholds
	if th.Latency > 0 {
		o.ObserveFloat64(g.latency, th.Latency.Seconds(), opt)
	}
	if th.Jitter > 0 {
		o.ObserveFloat64(g.jitter, th.Jitter.Seconds(), opt)
	}
	if th.Loss != nil {
		o.ObserveFloat64(g.loss, float64(*th.Loss), opt)
	}
	if th.Download > 0 {
		o.ObserveFloat64(g.rate, float64(th.Download), opt, metric.WithAttributes(keyDirection.String("download")))
	}
	if th.Upload > 0 {
		o.ObserveFloat64(g.rate, float64(th.Upload), opt, metric.WithAttributes(keyDirection.String("upload")))
	}
}

// keyDirection is the direction of a rate threshold, as on the speed
// test's throughput series.
const keyDirection = attribute.Key("direction")
