package ping

import (
	"net/netip"
	"slices"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/network"
)

// Config configures an ICMP echo probe: each run sends a burst of Count
// echo requests, PacketInterval apart, and waits for replies until the
// run's timeout or until every reply has arrived.
type Config struct {
	// Network: ip_version and source (an address or an interface).
	network.Settings `yaml:",inline"`
	Count            int           `yaml:"count"`
	PacketInterval   time.Duration `yaml:"packet_interval"`
	// Size is the ICMP payload size in bytes.
	Size int `yaml:"size"`
	TTL  int `yaml:"ttl"`
	// Privileged selects raw ICMP sockets ("true", needs root or
	// CAP_NET_RAW), unprivileged ICMP datagram sockets ("false", needs
	// net.ipv4.ping_group_range), or whichever works ("auto": datagram
	// sockets when allowed, with the shared engine).
	Privileged string `yaml:"privileged"`
	// Engine sends the echoes: the agent's shared ICMP engine ("shared":
	// kernel timestamps, one socket for every target), a pro-bing pinger per
	// run ("pro-bing"), or the shared engine where it runs ("auto").
	Engine string `yaml:"engine"`
	// PathOnTrouble, when set, takes a path snapshot toward a target whose
	// run's loss or latency reaches a threshold (trouble.go).
	PathOnTrouble *Trouble `yaml:"path_on_trouble,omitempty"`
}

// Defaults chosen for a home or office link: 10 echoes 250 ms apart give
// enough samples for jitter and loss without being noisy.
const (
	DefaultCount          = 10
	DefaultPacketInterval = 250 * time.Millisecond
	DefaultSize           = 56
	DefaultTTL            = 64
)

// Defaults implements config.Block.
func (c *Config) Defaults(*config.Probe) {
	c.Settings.Defaults()
	if c.Count == 0 {
		c.Count = DefaultCount
	}
	if c.PacketInterval == 0 {
		c.PacketInterval = DefaultPacketInterval
	}
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.Privileged == "" {
		c.Privileged = "auto"
	}
	if c.Engine == "" {
		c.Engine = EngineAuto
	}
	if c.PathOnTrouble != nil {
		c.PathOnTrouble.defaults()
	}
}

// Validate implements config.Block.
func (c *Config) Validate(pr *config.Probe, p *config.Problems, probePath string) {
	path := probePath + ".ping"
	// ip_version may also be both here; the rest is checked as with auto.
	s := c.Settings
	if !slices.Contains([]string{network.IPAuto, network.IPv4, network.IPv6, IPBoth}, c.IPVersion) {
		p.Add(path+".ip_version", "must be auto, 4, 6 or both, not %q", c.IPVersion)
		s.IPVersion = network.IPAuto
	}
	if c.IPVersion == IPBoth {
		s.IPVersion = network.IPAuto
		if _, err := netip.ParseAddr(c.Source); err == nil {
			p.Add(path+".source", "must be an interface with ip_version both (an address is of one family), not %s", c.Source)
			s.Source = ""
		}
	}
	s.Validate(p, path)
	if c.Count < 1 || c.Count > 1000 {
		p.Add(path+".count", "must be between 1 and 1000, not %d", c.Count)
	}
	if c.PacketInterval < time.Millisecond {
		p.Add(path+".packet_interval", "must be at least 1ms, not %s", c.PacketInterval)
	} else if burst, window := time.Duration(c.Count-1)*c.PacketInterval, replyWindow(pr.Timeout); c.Count >= 1 && c.Count <= 1000 && pr.Timeout > 0 && burst >= window {
		p.Add(path+".packet_interval", "%d packets %s apart take %s, which does not fit in the probe's timeout (%s) less the %s its last replies get",
			c.Count, c.PacketInterval, burst, pr.Timeout, pr.Timeout-window)
	}
	// pro-bing stores a timestamp and a 16-byte tracker in the payload.
	if c.Size < 24 || c.Size > 65500 {
		p.Add(path+".size", "must be between 24 and 65500 bytes, not %d", c.Size)
	}
	if c.TTL < 1 || c.TTL > 255 {
		p.Add(path+".ttl", "must be between 1 and 255, not %d", c.TTL)
	}
	if !slices.Contains([]string{"auto", "true", "false"}, c.Privileged) {
		p.Add(path+".privileged", "must be auto, true or false, not %q", c.Privileged)
	}
	if !slices.Contains([]string{EngineAuto, EngineShared, EngineProBing}, c.Engine) {
		p.Add(path+".engine", "must be auto, shared or pro-bing, not %q", c.Engine)
	}
	if c.PathOnTrouble != nil {
		c.PathOnTrouble.validate(p, path+".path_on_trouble")
	}
}
