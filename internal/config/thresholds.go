package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
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
}

// IsZero reports whether no threshold is set (yaml's omitempty).
func (t Thresholds) IsZero() bool { return t.Latency == 0 && t.Jitter == 0 && t.Loss == nil }

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
}

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
