package path

import (
	"slices"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/network"
)

// Config configures a path probe (MTR-like): each run sends Rounds rounds
// of ICMP echoes with TTL 1, 2, … MaxHops, RoundInterval apart, and reports
// per hop who answered, the loss and the round-trip times.
type Config struct {
	// Network: ip_version and source (an address or an interface).
	network.Settings `yaml:",inline"`
	// MaxHops bounds the TTLs probed, and so the per-hop series of a target.
	MaxHops int `yaml:"max_hops"`
	// Rounds is the number of echoes per hop and run.
	Rounds int `yaml:"rounds"`
	// RoundInterval separates the starts of two rounds. Routers limit the
	// ICMP errors they send (Linux: about one a second per source with a
	// burst of six): shorter intervals show more hops as rate-limited.
	RoundInterval time.Duration `yaml:"round_interval"`
	// HopTimeout is how long an echo waits for its answer.
	HopTimeout time.Duration `yaml:"hop_timeout"`
	// Size is the ICMP payload size in bytes.
	Size int `yaml:"size"`
	// Privileged selects raw ICMP sockets ("true"), ICMP datagram sockets
	// ("false") or whichever works ("auto"), as for ping: the two types
	// share the agent's engine of that mode.
	Privileged string `yaml:"privileged"`
}

// Defaults: ten rounds a second apart, as mtr's report mode does, every
// five minutes.
const (
	DefaultInterval      = 5 * time.Minute
	DefaultTimeout       = 30 * time.Second
	DefaultMaxHops       = 30
	DefaultRounds        = 10
	DefaultRoundInterval = time.Second
	DefaultHopTimeout    = 2 * time.Second
	DefaultSize          = 56
	// MaxMaxHops bounds max_hops: per-hop series are keyed by hop number.
	MaxMaxHops = 64
)

// Defaults implements config.Block. It sets the probe's interval and
// timeout too: the generic 30 s / 10 s do not fit ten rounds.
func (c *Config) Defaults(p *config.Probe) {
	if p.Interval == 0 {
		p.Interval = DefaultInterval
	}
	if p.Timeout == 0 {
		p.Timeout = min(DefaultTimeout, p.Interval)
	}
	c.Settings.Defaults()
	if c.MaxHops == 0 {
		c.MaxHops = DefaultMaxHops
	}
	if c.Rounds == 0 {
		c.Rounds = DefaultRounds
	}
	if c.RoundInterval == 0 {
		c.RoundInterval = DefaultRoundInterval
	}
	if c.HopTimeout == 0 {
		c.HopTimeout = DefaultHopTimeout
	}
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.Privileged == "" {
		c.Privileged = "auto"
	}
}

// Validate implements config.Block.
func (c *Config) Validate(pr *config.Probe, p *config.Problems, probePath string) {
	path := probePath + "." + TypeName
	c.Settings.Validate(p, path)
	if c.MaxHops < 1 || c.MaxHops > MaxMaxHops {
		p.Add(path+".max_hops", "must be between 1 and %d, not %d", MaxMaxHops, c.MaxHops)
	}
	roundsOK := c.Rounds >= 1 && c.Rounds <= 100
	if !roundsOK {
		p.Add(path+".rounds", "must be between 1 and 100, not %d", c.Rounds)
	}
	if c.RoundInterval < 10*time.Millisecond {
		p.Add(path+".round_interval", "must be at least 10ms, not %s", c.RoundInterval)
	}
	if c.HopTimeout < 10*time.Millisecond {
		p.Add(path+".hop_timeout", "must be at least 10ms, not %s", c.HopTimeout)
	} else if run := time.Duration(max(c.Rounds-1, 0))*c.RoundInterval + c.HopTimeout; roundsOK && pr.Timeout > 0 && run >= pr.Timeout {
		p.Add(path+".rounds", "%d rounds %s apart and a hop_timeout of %s take %s, which does not fit in the probe's timeout (%s)",
			c.Rounds, c.RoundInterval, c.HopTimeout, run, pr.Timeout)
	}
	if c.Size < 16 || c.Size > 65000 {
		p.Add(path+".size", "must be between 16 and 65000 bytes, not %d", c.Size)
	}
	if !slices.Contains([]string{"auto", "true", "false"}, c.Privileged) {
		p.Add(path+".privileged", "must be auto, true or false, not %q", c.Privileged)
	}
}

// SeriesPerTarget tells the agent's cardinality limit how many series a
// target has in one per-hop instrument: one per hop.
func (c *Config) SeriesPerTarget() int { return c.MaxHops }
