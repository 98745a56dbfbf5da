package speedtest

import (
	"math"
	"slices"
	"time"
)

// Responsiveness is RPM (round trips per minute under working conditions)
// as draft-ietf-ippm-responsiveness-09 defines it, for one loaded
// direction:
//
//	Foreign_RPM = 60000 / ((TM(tcp_f) + TM(tls_f) + TM(http_f)) / 3)
//	Loaded_RPM  = 60000 / TM(http_l)
//	RPM         = (Foreign_RPM + Loaded_RPM) / 2
//
// with times in ms and TM the trimmed mean that drops the slowest 5 %.
// The foreign samples come from the loaded-latency probes (a new
// connection every latency_interval: its TCP handshake, TLS handshake on
// https servers, and HTTP request/response); a component without samples
// (TLS on an http:// server) is left out of the foreign mean. The load's
// connections are HTTP/1.1, busy with one transfer each, so http_l is, as
// the draft allows, the TCP stack's RTT estimate on them (the sender's
// smoothed RTT for uploads, the receiver's rcv_rtt for downloads), read
// every latency_interval.
type Responsiveness struct {
	RPM        float64 `json:"rpm"`
	ForeignRPM float64 `json:"foreign_rpm"`
	LoadedRPM  float64 `json:"loaded_rpm"`
	// Low and High bound RPM with 95 % confidence, from the spread of the
	// kept samples (mean ± 1.96 standard errors of each component, the
	// bounds of the two halves added). Consecutive RTT estimates of a
	// connection are correlated, so the bounds are optimistic; they say
	// mostly how many samples the figure stands on: back-to-back runs of
	// one link can differ by a third.
	Low  float64 `json:"rpm_low"`
	High float64 `json:"rpm_high"`
	// Samples per component: tcp_f, tls_f, http_f and http_l.
	Samples RPMSamples `json:"samples"`
}

// RPMSamples counts the samples behind each component.
type RPMSamples struct {
	TCP    int `json:"tcp_foreign"`
	TLS    int `json:"tls_foreign"`
	HTTP   int `json:"http_foreign"`
	Loaded int `json:"http_loaded"`
}

// rpmTrim is the share of the slowest samples the trimmed mean drops.
const rpmTrim = 0.05

// z95 is the normal quantile of a two-sided 95 % interval.
const z95 = 1.96

// trimmed is a component's trimmed mean and its standard error, seconds.
type trimmed struct {
	mean, se float64
	n        int
}

func trimmedMean(samples []time.Duration) trimmed {
	if len(samples) == 0 {
		return trimmed{}
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	keep := sorted[:max(1, len(sorted)-int(float64(len(sorted))*rpmTrim))]
	var sum float64
	for _, s := range keep {
		sum += s.Seconds()
	}
	t := trimmed{mean: sum / float64(len(keep)), n: len(samples)}
	if len(keep) > 1 {
		var ss float64
		for _, s := range keep {
			ss += (s.Seconds() - t.mean) * (s.Seconds() - t.mean)
		}
		t.se = math.Sqrt(ss/float64(len(keep)-1)) / math.Sqrt(float64(len(keep)))
	}
	return t
}

// rpmBounds turns a mean latency and its standard error into RPM and
// its 95 % bounds.
func rpmBounds(mean, se float64) (rpm, low, high float64) {
	if mean <= 0 {
		return 0, 0, 0
	}
	rpm = 60 / mean
	low = 60 / (mean + z95*se)
	high = rpm * 10 // no useful upper bound when the interval reaches 0
	if lo := mean - z95*se; lo > mean/10 {
		high = 60 / lo
	}
	return rpm, low, high
}

// responsiveness computes RPM from the foreign components and the loaded
// RTTs; zero when there is no sample at all.
func responsiveness(tcpF, tlsF, httpF, httpL []time.Duration) Responsiveness {
	r := Responsiveness{Samples: RPMSamples{TCP: len(tcpF), TLS: len(tlsF), HTTP: len(httpF), Loaded: len(httpL)}}
	var fmean, fvar float64
	k := 0
	for _, c := range [][]time.Duration{tcpF, tlsF, httpF} {
		if len(c) == 0 {
			continue
		}
		t := trimmedMean(c)
		fmean += t.mean
		fvar += t.se * t.se
		k++
	}
	var fLow, fHigh, lLow, lHigh float64
	if k > 0 {
		r.ForeignRPM, fLow, fHigh = rpmBounds(fmean/float64(k), math.Sqrt(fvar)/float64(k))
	}
	if len(httpL) > 0 {
		t := trimmedMean(httpL)
		r.LoadedRPM, lLow, lHigh = rpmBounds(t.mean, t.se)
	}
	switch {
	case r.ForeignRPM > 0 && r.LoadedRPM > 0:
		r.RPM, r.Low, r.High = (r.ForeignRPM+r.LoadedRPM)/2, (fLow+lLow)/2, (fHigh+lHigh)/2
	case r.ForeignRPM > 0:
		r.RPM, r.Low, r.High = r.ForeignRPM, fLow, fHigh
	case r.LoadedRPM > 0:
		r.RPM, r.Low, r.High = r.LoadedRPM, lLow, lHigh
	}
	return r
}
