package speedtest

import (
	"math"
	"testing"
	"time"
)

func ms(v ...float64) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x * float64(time.Millisecond))
	}
	return out
}

func repeat(d []time.Duration, n int) []time.Duration {
	var out []time.Duration
	for range n {
		out = append(out, d...)
	}
	return out
}

// The draft's formulas: Foreign_RPM from the mean of the components'
// trimmed means (TLS left out when absent), Loaded_RPM from the loaded
// RTTs, RPM their mean; the slowest 5 % of each component is dropped.
func TestResponsiveness(t *testing.T) {
	tcp := append(repeat(ms(10), 19), ms(1000)...) // one outlier of 20: trimmed
	http := repeat(ms(20), 20)
	loaded := append(repeat(ms(29, 31), 20), ms(5000, 5000)...) // 2 of 42 trimmed
	r := responsiveness(tcp, nil, http, loaded)
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-6*want }
	if !near(r.ForeignRPM, 60000.0/15) || !near(r.LoadedRPM, 60000.0/30) || !near(r.RPM, (4000+2000)/2.0) {
		t.Errorf("foreign %g (want 4000), loaded %g (want 2000), RPM %g (want 3000)", r.ForeignRPM, r.LoadedRPM, r.RPM)
	}
	if r.Samples != (RPMSamples{TCP: 20, HTTP: 20, Loaded: 42}) {
		t.Errorf("samples %+v", r.Samples)
	}
	if !(r.Low < r.RPM && r.RPM < r.High) {
		t.Errorf("bounds %g-%g around %g", r.Low, r.High, r.RPM)
	}
	// Identical foreign samples have no spread: the interval is the loaded
	// part's alone, ±1.96 × 1 ms / √40 around 30 ms.
	se := 0.001 * math.Sqrt(40.0/39) / math.Sqrt(40)
	if want := (4000 + 60/(0.030+z95*se)) / 2; !near(r.Low, want) {
		t.Errorf("low bound %g, want %g", r.Low, want)
	}

	with := responsiveness(ms(10), ms(40), ms(10), nil)
	if !near(with.RPM, 60000.0/20) || with.LoadedRPM != 0 {
		t.Errorf("with TLS, no loaded samples: %+v; want RPM 3000 from the foreign part", with)
	}
	if none := responsiveness(nil, nil, nil, nil); none.RPM != 0 || none.Low != 0 {
		t.Errorf("no samples: %+v", none)
	}
}
