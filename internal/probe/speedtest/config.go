package speedtest

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/tcpcc"
)

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
type Config struct {
	// Network: ip_version and source, for every connection of a run.
	network.Settings `yaml:",inline"`

	// Duration is how long each direction transfers.
	Duration time.Duration `yaml:"duration"`
	// MaxBytes stops a direction's transfer once this much has moved, so a
	// fast link cannot spend more than 2 × MaxBytes per run.
	MaxBytes config.ByteSize `yaml:"max_bytes"`
	// Connections is the number of parallel TCP connections per direction.
	Connections int `yaml:"connections"`
	// LatencyInterval is how often a loaded-latency probe (a new connection
	// and a small HTTP request) starts while the link is loaded.
	LatencyInterval time.Duration `yaml:"latency_interval"`
	// PacketLoss runs speedtest-go's UDP packet-loss test during the idle
	// latency test when the server supports it (default true).
	PacketLoss *bool `yaml:"packet_loss"`
	// TCPCongestion is the congestion control algorithm of the client's
	// connections (what uploads use; a netpulse server takes its own
	// --tcp-congestion for downloads): cubic, as most clients use, or bbr,
	// ...; empty: the system's default. Checked when the probe starts.
	TCPCongestion string `yaml:"tcp_congestion"`
	// Budget caps the bytes this probe's runs may use.
	Budget Budget `yaml:"budget"`
	// Servers are the servers of a target whose host is "servers" (auto,
	// ids or URLs): each run tests one of them, chosen by ServerChoice, so
	// the probe's data budget covers them all.
	Servers []string `yaml:"servers"`
	// ServerChoice is how: rotate (the next one each run, in turn) or
	// lowest_latency (best of N: each answers one latency.txt request
	// before the run, and the fastest is tested). Default rotate.
	ServerChoice string `yaml:"server_choice"`
}

// ServersHost is the target host that stands for the probe's servers list.
const ServersHost = "servers"

// Server choices.
const (
	ChoiceRotate        = "rotate"
	ChoiceLowestLatency = "lowest_latency"
)

// Budget is a data budget shared by a speed-test probe's targets, in local
// calendar days and months. A run starts only if the bytes it may use
// (2 × max_bytes until a run has happened, then 1.25 × the last run's
// bytes, at most 2 × max_bytes) fit in what is left of both.
type Budget struct {
	Daily   config.ByteSize `yaml:"daily"`   // 0: no daily limit
	Monthly config.ByteSize `yaml:"monthly"` // 0: no monthly limit
}

// PacketLossEnabled reports whether the packet-loss test runs.
func (s Config) PacketLossEnabled() bool { return s.PacketLoss == nil || *s.PacketLoss }

// Speed-test defaults: an hourly test of 10 s per direction on 4 connections
// fills links up to about 1 Gbit/s; 1 GB per direction covers 10 s of that.
const (
	DefaultSpeedtestInterval        = time.Hour
	DefaultSpeedtestTimeout         = time.Minute
	DefaultSpeedtestDuration        = 10 * time.Second
	DefaultSpeedtestMaxBytes        = config.ByteSize(1e9)
	DefaultSpeedtestConnections     = 4
	DefaultSpeedtestLatencyInterval = 100 * time.Millisecond
	// SpeedtestOverhead is the share of a run's timeout that is not
	// transfer: server selection (up to ~5 s), idle latency and packet loss.
	SpeedtestOverhead = 10 * time.Second
)

// Defaults implements config.Block. It sets the probe's interval and
// timeout too: the generic ones would make a speed test run every 30 s.
func (s *Config) Defaults(p *config.Probe) {
	if p.Interval == 0 {
		p.Interval = DefaultSpeedtestInterval
	}
	if p.Timeout == 0 {
		p.Timeout = DefaultSpeedtestTimeout
	}
	if p.Schedule.FirstRun == "" {
		// Hourly or daily: waiting up to an interval for the first result
		// after installing or restarting leaves nothing to show.
		p.Schedule.FirstRun = config.FirstRunSoon
	}
	s.Settings.Defaults()
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
	if s.ServerChoice == "" {
		s.ServerChoice = ChoiceRotate
	}
}

// Validate implements config.Block.
func (s *Config) Validate(pr *config.Probe, p *config.Problems, path string) {
	if pr.Interval < time.Minute && pr.Interval >= time.Second {
		p.Add(path+".interval", "must be at least 1m for a speedtest probe (a run fills the link), not %s", pr.Interval)
	}
	sp := path + ".speedtest"
	for i, t := range pr.Targets {
		switch {
		case t.Host == ServersHost:
			if len(s.Servers) == 0 {
				p.Add(fmt.Sprintf("%s.targets[%d].host", path, i), "servers needs a list of servers in %s.servers", sp)
			}
		case t.Host != "" && !ValidServer(t.Host):
			p.Add(fmt.Sprintf("%s.targets[%d].host", path, i),
				"must be auto, a speedtest.net server id, the http(s):// URL of a speed test server or servers, not %q", t.Host)
		}
	}
	for i, h := range s.Servers {
		if !ValidServer(h) {
			p.Add(fmt.Sprintf("%s.servers[%d]", sp, i),
				"must be auto, a speedtest.net server id or the http(s):// URL of a speed test server, not %q", h)
		}
	}
	if s.ServerChoice != ChoiceRotate && s.ServerChoice != ChoiceLowestLatency {
		p.Add(sp+".server_choice", "must be rotate or lowest_latency, not %q", s.ServerChoice)
	}
	s.Settings.Validate(p, sp)
	if s.Duration < time.Second || s.Duration > time.Minute {
		p.Add(sp+".duration", "must be between 1s and 1m, not %s", s.Duration)
	} else if need := 2*s.Duration + SpeedtestOverhead; pr.Timeout > 0 && need > pr.Timeout {
		p.Add(sp+".duration", "two transfers of %s plus %s for server selection and latency do not fit in the probe's timeout (%s)",
			s.Duration, SpeedtestOverhead, pr.Timeout)
	}
	if s.MaxBytes < 1e6 {
		p.Add(sp+".max_bytes", "must be at least 1MB, not %s", s.MaxBytes)
	}
	if s.Connections < 1 || s.Connections > 32 {
		p.Add(sp+".connections", "must be between 1 and 32, not %d", s.Connections)
	}
	if s.LatencyInterval < 10*time.Millisecond || s.LatencyInterval > 5*time.Second {
		p.Add(sp+".latency_interval", "must be between 10ms and 5s, not %s", s.LatencyInterval)
	}
	if s.TCPCongestion != "" && !tcpcc.ValidName(s.TCPCongestion) {
		p.Add(sp+".tcp_congestion", "must be the name of a TCP congestion control algorithm (cubic, bbr, reno, ...) or empty, not %q",
			s.TCPCongestion)
	}
	run := 2 * s.MaxBytes
	for _, b := range []struct {
		name  string
		limit config.ByteSize
	}{{"daily", s.Budget.Daily}, {"monthly", s.Budget.Monthly}} {
		switch {
		case b.limit < 0:
			p.Add(sp+".budget."+b.name, "must not be negative, not %s", b.limit)
		case b.limit > 0 && b.limit < run && s.MaxBytes >= 1e6:
			p.Add(sp+".budget."+b.name, "%s is less than one run may use (2 × max_bytes = %s)", b.limit, run)
		}
	}
}

// ValidServer reports whether host is "auto", a speedtest.net
// server id or an http(s) URL.
func ValidServer(host string) bool {
	if host == "auto" {
		return true
	}
	if _, err := strconv.ParseUint(host, 10, 32); err == nil {
		return true
	}
	u, err := url.Parse(host)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
