package config

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// TypeSpeedtest is the speed-test probe type (speedtest-go).
const TypeSpeedtest = "speedtest"

// Speedtest configures a speed-test probe. Each target's host names the
// server to test against:
//
//	auto                  the lowest-latency of the nearest speedtest.net servers
//	12345                 the speedtest.net server with that id
//	http://host:8080      a custom server, e.g. `netpulse speedtest-server`
//
// A run measures idle latency (and packet loss when the server supports
// it), then downloads and uploads for Duration each while measuring loaded
// latency on separate connections.
type Speedtest struct {
	// Duration is how long each direction transfers.
	Duration time.Duration `yaml:"duration"`
	// MaxBytes stops a direction's transfer once this much has moved, so a
	// fast link cannot spend more than 2 × MaxBytes per run.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// Connections is the number of parallel TCP connections per direction.
	Connections int `yaml:"connections"`
	// LatencyInterval is how often a loaded-latency probe (a new connection
	// and a small HTTP request) starts while the link is loaded.
	LatencyInterval time.Duration `yaml:"latency_interval"`
	// PacketLoss runs speedtest-go's UDP packet-loss test during the idle
	// latency test when the server supports it (default true).
	PacketLoss *bool `yaml:"packet_loss"`
	// Budget caps the bytes this probe's runs may use.
	Budget Budget `yaml:"budget"`
}

// Budget is a data budget shared by a speed-test probe's targets, in local
// calendar days and months. A run starts only if the bytes it may use
// (2 × max_bytes until a run has happened, then 1.25 × the last run's
// bytes, at most 2 × max_bytes) fit in what is left of both.
type Budget struct {
	Daily   ByteSize `yaml:"daily"`   // 0: no daily limit
	Monthly ByteSize `yaml:"monthly"` // 0: no monthly limit
}

// PacketLossEnabled reports whether the packet-loss test runs.
func (s Speedtest) PacketLossEnabled() bool { return s.PacketLoss == nil || *s.PacketLoss }

// Speed-test defaults: an hourly test of 10 s per direction on 4 connections
// fills links up to about 1 Gbit/s; 1 GB per direction covers 10 s of that.
const (
	DefaultSpeedtestInterval        = time.Hour
	DefaultSpeedtestTimeout         = time.Minute
	DefaultSpeedtestDuration        = 10 * time.Second
	DefaultSpeedtestMaxBytes        = ByteSize(1e9)
	DefaultSpeedtestConnections     = 4
	DefaultSpeedtestLatencyInterval = 100 * time.Millisecond
	// SpeedtestOverhead is the share of a run's timeout that is not
	// transfer: server selection (up to ~5 s), idle latency and packet loss.
	SpeedtestOverhead = 10 * time.Second
)

// applySpeedtestDefaults runs before the generic probe defaults, which
// suit ping and would make a speed test run every 30 s.
func (p *Probe) applySpeedtestDefaults() {
	if p.Interval == 0 {
		p.Interval = DefaultSpeedtestInterval
	}
	if p.Timeout == 0 {
		p.Timeout = DefaultSpeedtestTimeout
	}
	if p.Speedtest == nil {
		p.Speedtest = &Speedtest{}
	}
	s := p.Speedtest
	if s.Duration == 0 {
		s.Duration = DefaultSpeedtestDuration
	}
	if s.MaxBytes == 0 {
		s.MaxBytes = DefaultSpeedtestMaxBytes
	}
	if s.Connections == 0 {
		s.Connections = DefaultSpeedtestConnections
	}
	if s.LatencyInterval == 0 {
		s.LatencyInterval = DefaultSpeedtestLatencyInterval
	}
}

func (pr *Probe) validateSpeedtest(p *problems, path string) {
	if pr.Interval < time.Minute && pr.Interval >= time.Second {
		p.add(path+".interval", "must be at least 1m for a speedtest probe (a run fills the link), not %s", pr.Interval)
	}
	for i, t := range pr.Targets {
		if t.Host != "" && !ValidSpeedtestServer(t.Host) {
			p.add(fmt.Sprintf("%s.targets[%d].host", path, i),
				"must be auto, a speedtest.net server id or the http(s):// URL of a speed test server, not %q", t.Host)
		}
	}
	s := pr.Speedtest
	if s == nil {
		return
	}
	sp := path + ".speedtest"
	if s.Duration < time.Second || s.Duration > time.Minute {
		p.add(sp+".duration", "must be between 1s and 1m, not %s", s.Duration)
	} else if need := 2*s.Duration + SpeedtestOverhead; pr.Timeout > 0 && need > pr.Timeout {
		p.add(sp+".duration", "two transfers of %s plus %s for server selection and latency do not fit in the probe's timeout (%s)",
			s.Duration, SpeedtestOverhead, pr.Timeout)
	}
	if s.MaxBytes < 1e6 {
		p.add(sp+".max_bytes", "must be at least 1MB, not %s", s.MaxBytes)
	}
	if s.Connections < 1 || s.Connections > 32 {
		p.add(sp+".connections", "must be between 1 and 32, not %d", s.Connections)
	}
	if s.LatencyInterval < 10*time.Millisecond || s.LatencyInterval > 5*time.Second {
		p.add(sp+".latency_interval", "must be between 10ms and 5s, not %s", s.LatencyInterval)
	}
	run := 2 * s.MaxBytes
	for _, b := range []struct {
		name  string
		limit ByteSize
	}{{"daily", s.Budget.Daily}, {"monthly", s.Budget.Monthly}} {
		switch {
		case b.limit < 0:
			p.add(sp+".budget."+b.name, "must not be negative, not %s", b.limit)
		case b.limit > 0 && b.limit < run && s.MaxBytes >= 1e6:
			p.add(sp+".budget."+b.name, "%s is less than one run may use (2 × max_bytes = %s)", b.limit, run)
		}
	}
}

// ValidSpeedtestServer reports whether host is "auto", a speedtest.net
// server id or an http(s) URL.
func ValidSpeedtestServer(host string) bool {
	if host == "auto" {
		return true
	}
	if _, err := strconv.ParseUint(host, 10, 32); err == nil {
		return true
	}
	u, err := url.Parse(host)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// ByteSize is a number of bytes, written as an integer or with a unit:
// 500MB, 1.5GB (powers of 1000), 10GiB (powers of 1024).
type ByteSize int64

var byteUnits = []struct {
	suffix string
	factor float64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12}, {"b", 1},
}

// ParseByteSize parses "500MB", "1.5GB", "10GiB" or a plain number of bytes.
func ParseByteSize(s string) (ByteSize, error) {
	str := strings.ToLower(strings.TrimSpace(s))
	factor := 1.0
	for _, u := range byteUnits {
		if strings.HasSuffix(str, u.suffix) {
			str, factor = strings.TrimSpace(strings.TrimSuffix(str, u.suffix)), u.factor
			break
		}
	}
	v, err := strconv.ParseFloat(str, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v*factor) > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is not a byte size (a number with an optional unit: 500MB, 1.5GB, 10GiB)", s)
	}
	return ByteSize(math.Round(v * factor)), nil
}

// UnmarshalYAML accepts an integer or a string with a unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %q is not a byte size (a number with an optional unit: 500MB, 1.5GB, 10GiB)", n.Line, n.Value)
	}
	*b = v
	return nil
}

// String formats b with the largest decimal unit that keeps it >= 1 (2GB, 1.5MB).
func (b ByteSize) String() string {
	v := float64(b)
	for _, u := range []struct {
		suffix string
		factor float64
	}{{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}} {
		if math.Abs(v) >= u.factor {
			return strconv.FormatFloat(v/u.factor, 'f', -1, 64) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}
