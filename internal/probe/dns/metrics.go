package dns

import (
	"context"

	miekg "github.com/miekg/dns"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/netpulse/netpulse/internal/probe"
)

// lookupBuckets (seconds): a cached answer on the LAN takes under a
// millisecond, a recursive lookup tens to hundreds, a retry seconds.
var lookupBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// keyRcode labels responses by their response code: a name from the
// registry of RFC 6895 (at most ~25 values) or "other", never free text.
const keyRcode = attribute.Key("rcode")

// metrics are the DNS probe's instruments. The lookup histogram and the
// response counter accumulate; the last answer's figures are observable
// gauges with one entry per target that last got an answer, so a server
// that stops answering loses its lookup time rather than keeping a stale one.
type metrics struct {
	lookup    metric.Float64Histogram
	responses metric.Int64Counter
	truncated metric.Int64Counter

	last probe.Last[answer]
}

// answer is what a run's answer said.
type answer struct {
	lookup  float64 // seconds
	rcode   int
	answers int
}

func newMetrics(m metric.Meter) (*metrics, error) {
	in := probe.Instruments{Meter: m}
	ms := &metrics{
		lookup:    in.Histogram("netpulse.dns.lookup.duration", "s", "Time from sending the question to the answer (TCP retries of truncated answers included), per answer.", lookupBuckets),
		responses: in.Counter("netpulse.dns.responses", "{response}", "DNS answers received, by response code (rcode)."),
		truncated: in.Counter("netpulse.dns.truncated", "{response}", "Truncated UDP answers, each asked again over TCP."),
	}
	lookupTime := in.Gauge("netpulse.dns.lookup.time", "s", "Lookup time of the last answer.")
	rcodeG := in.Gauge("netpulse.dns.rcode", "{rcode}", "Response code of the last answer (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED).")
	answers := in.Gauge("netpulse.dns.answers", "{record}", "Records in the answer section of the last answer.")
	if in.Err != nil {
		return nil, in.Err
	}
	_, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for t, a := range ms.last.All() {
			attrs := metric.WithAttributeSet(t.Attrs)
			o.ObserveFloat64(lookupTime, a.lookup, attrs)
			o.ObserveFloat64(rcodeG, float64(a.rcode), attrs)
			o.ObserveFloat64(answers, float64(a.answers), attrs)
		}
		return nil
	}, lookupTime, rcodeG, answers)
	if err != nil {
		return nil, err
	}
	return ms, nil
}

// record counts a run's answer (nil: none arrived) and keeps its figures.
func (ms *metrics) record(ctx context.Context, t *probe.Target, r *miekg.Msg, a answer, truncated bool) {
	if truncated {
		ms.truncated.Add(ctx, 1, metric.WithAttributeSet(t.Attrs))
	} else {
		ms.truncated.Add(ctx, 0, metric.WithAttributeSet(t.Attrs)) // the series exists from the first run
	}
	if r == nil {
		ms.last.Delete(t)
		return
	}
	ms.last.Set(t, a)
	attrs := metric.WithAttributes(append(t.Attrs.ToSlice(), keyRcode.String(rcodeName(r.Rcode)))...)
	ms.responses.Add(ctx, 1, attrs)
	ms.lookup.Record(ctx, a.lookup, metric.WithAttributeSet(t.Attrs))
}

// rcodeName is the registered name of rc, or "other": a bounded label.
func rcodeName(rc int) string {
	if s, ok := miekg.RcodeToString[rc]; ok {
		return s
	}
	return "other"
}
