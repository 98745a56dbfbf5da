package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Thresholds are the limits past which a target that answers is
// *degraded* rather than up: its last run's latency, jitter or loss
// exceeded one of them. A probe's block applies to its targets; a target's
// own block overrides it key by key. They are exported as metrics
// (netpulse_threshold_*), so the shipped alert rules and the status page
// compare with the same values instead of keeping two copies.
type Thresholds struct {
	// Latency is the highest acceptable headline latency (a ping's mean
	// RTT, an HTTP request's duration); 0: none.
	Latency time.Duration `yaml:"latency,omitempty"`
	// Jitter is the highest acceptable jitter; 0: none.
	Jitter time.Duration `yaml:"jitter,omitempty"`
	// Loss is the highest acceptable loss ratio (2% or 0.02); unset: none.
	// A pointer, because 0% ("any loss degrades") is a threshold.
	Loss *Ratio `yaml:"loss,omitempty"`
	// Download and Upload are the rates a speed test is expected to reach
	// (your plan: 100Mbit/s); below one, it is degraded. 0: none.
	Download Rate `yaml:"download,omitempty"`
	Upload   Rate `yaml:"upload,omitempty"`
}

// IsZero reports whether no threshold is set (yaml's omitempty).
func (t Thresholds) IsZero() bool {
	return t.Latency == 0 && t.Jitter == 0 && t.Loss == nil && t.Download == 0 && t.Upload == 0
}

// Over returns t with each key that o sets replaced by o's: a target's
// thresholds over its probe's.
func (t Thresholds) Over(o Thresholds) Thresholds {
	if o.Latency != 0 {
		t.Latency = o.Latency
	}
	if o.Jitter != 0 {
		t.Jitter = o.Jitter
	}
	if o.Loss != nil {
		t.Loss = o.Loss
	}
	if o.Download != 0 {
		t.Download = o.Download
	}
	if o.Upload != 0 {
		t.Upload = o.Upload
	}
	return t
}

func (t Thresholds) validate(p *Problems, path string) {
	if t.Latency < 0 {
		p.Add(path+".latency", "must not be negative, not %s", t.Latency)
	}
	if t.Jitter < 0 {
		p.Add(path+".jitter", "must not be negative, not %s", t.Jitter)
	}
	if t.Loss != nil && (*t.Loss < 0 || *t.Loss > 1) {
		p.Add(path+".loss", "must be between 0%% and 100%%, not %s", t.Loss)
	}
	if t.Download < 0 {
		p.Add(path+".download", "must not be negative, not %s", t.Download)
	}
	if t.Upload < 0 {
		p.Add(path+".upload", "must not be negative, not %s", t.Upload)
	}
}

// Rate is a data rate in bytes per second, written with its unit as plans
// and speed tests quote it: 100Mbit/s, 1.5Gbit/s, 500kbit/s, 12.5MB/s.
type Rate float64

var rateUnits = []struct {
	suffix string
	factor float64 // bytes per second
}{
	{"gbit/s", 1e9 / 8}, {"mbit/s", 1e6 / 8}, {"kbit/s", 1e3 / 8}, {"bit/s", 1.0 / 8},
	{"gbps", 1e9 / 8}, {"mbps", 1e6 / 8}, {"kbps", 1e3 / 8},
	{"gb/s", 1e9}, {"mb/s", 1e6}, {"kb/s", 1e3}, {"b/s", 1},
}

// ParseRate parses a rate with its unit; a bare number is refused (bits
// or bytes?).
func ParseRate(s string) (Rate, error) {
	str := strings.ToLower(strings.TrimSpace(s))
	for _, u := range rateUnits {
		if num, ok := strings.CutSuffix(str, u.suffix); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
			if err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
				return Rate(v * u.factor), nil
			}
			break
		}
	}
	return 0, fmt.Errorf("%q is not a rate (a number with a unit: 100Mbit/s, 1.5Gbit/s, 12.5MB/s)", s)
}

// UnmarshalYAML accepts a rate with its unit.
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseRate(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %q is not a rate (a number with a unit: 100Mbit/s, 1.5Gbit/s, 12.5MB/s)", n.Line, n.Value)
	}
	*r = v
	return nil
}

// MarshalYAML writes the rate in Mbit/s.
func (r Rate) MarshalYAML() (any, error) { return r.String(), nil }

// String formats the rate in Mbit/s (100Mbit/s).
func (r Rate) String() string { return strconv.FormatFloat(float64(r)*8/1e6, 'f', -1, 64) + "Mbit/s" }

// Ratio is a share between 0 and 1, written as a percentage (2%, 0.5 %)
// or as a ratio (0.02).
type Ratio float64

// ParseRatio parses "2%", "0.5 %" or "0.02". A bare number above 1 is
// refused rather than guessed at: "2" could mean 2 % or 200 %.
func ParseRatio(s string) (Ratio, error) {
	str := strings.TrimSpace(s)
	pct := strings.HasSuffix(str, "%")
	str = strings.TrimSpace(strings.TrimSuffix(str, "%"))
	v, err := strconv.ParseFloat(str, 64)
	switch {
	case err != nil || math.IsNaN(v) || math.IsInf(v, 0):
		return 0, fmt.Errorf("%q is not a percentage (2%%) or a ratio (0.02)", s)
	case pct:
		return Ratio(v / 100), nil
	case v > 1:
		return 0, fmt.Errorf("%q is ambiguous: write a percentage (%s%%) or a ratio between 0 and 1", s, str)
	}
	return Ratio(v), nil
}

// UnmarshalYAML accepts a percentage or a ratio.
func (r *Ratio) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a percentage (2%%) or a ratio (0.02) is expected", n.Line)
	}
	v, err := ParseRatio(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*r = v
	return nil
}

// MarshalYAML writes the ratio as a percentage, as people write it.
func (r Ratio) MarshalYAML() (any, error) { return r.String(), nil }

// String formats the ratio as a percentage (2%).
func (r Ratio) String() string { return strconv.FormatFloat(float64(r)*100, 'f', -1, 64) + "%" }

// Float returns the ratio, or -1 when r is nil (no threshold).
func (r *Ratio) Float() float64 {
	if r == nil {
		return -1
	}
	return float64(*r)
}
