package config

import "time"

// Probe type names. Each has a type-specific block of the same name.
const (
	TypePing = "ping"
)

// Defaults chosen for a home or office link: a run every 30 s of 10 echoes
// 250 ms apart gives enough samples for jitter and loss without being noisy.
const (
	DefaultInterval       = 30 * time.Second
	DefaultTimeout        = 10 * time.Second
	DefaultPingCount      = 10
	DefaultPacketInterval = 250 * time.Millisecond
	DefaultPingSize       = 56
	DefaultPingTTL        = 64
	DefaultOTLPTimeout    = 10 * time.Second
	DefaultOTLPPush       = 15 * time.Second
)

func (c *Config) applyDefaults() {
	o := &c.Telemetry.OTLP
	if o.Protocol == "" {
		o.Protocol = "grpc"
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultOTLPTimeout
	}
	if o.MetricsInterval == 0 {
		o.MetricsInterval = DefaultOTLPPush
	}
	if o.Signals == nil {
		o.Signals = []string{"metrics", "traces"}
	}
	for i := range c.Probes {
		c.Probes[i].applyDefaults()
	}
	c.applyAPIDefaults()
}

func (p *Probe) applyDefaults() {
	if p.Type == TypeSpeedtest {
		p.applySpeedtestDefaults()
	}
	if p.Interval == 0 {
		p.Interval = DefaultInterval
	}
	if p.Timeout == 0 {
		p.Timeout = DefaultTimeout
		if p.Interval > 0 {
			p.Timeout = min(DefaultTimeout, p.Interval)
		}
	}
	for i := range p.Targets {
		if p.Targets[i].Name == "" {
			p.Targets[i].Name = p.Targets[i].Host
		}
	}
	if p.Type == TypePing {
		if p.Ping == nil {
			p.Ping = &Ping{}
		}
		p.Ping.applyDefaults()
	}
}

func (p *Ping) applyDefaults() {
	if p.Count == 0 {
		p.Count = DefaultPingCount
	}
	if p.PacketInterval == 0 {
		p.PacketInterval = DefaultPacketInterval
	}
	if p.Size == 0 {
		p.Size = DefaultPingSize
	}
	if p.TTL == 0 {
		p.TTL = DefaultPingTTL
	}
	if p.IPVersion == "" {
		p.IPVersion = "auto"
	}
	if p.Privileged == "" {
		p.Privileged = "auto"
	}
}
