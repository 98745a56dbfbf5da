package config

import (
	"time"

	"github.com/netpulse/netpulse/internal/redact"
)

// Defaults of a probe whose type sets none: a run every 30 s, bounded by
// 10 s, suits a home or office link.
const (
	DefaultInterval    = 30 * time.Second
	DefaultTimeout     = 10 * time.Second
	DefaultOTLPTimeout = 10 * time.Second
	DefaultOTLPPush    = 15 * time.Second
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
	if p.Settings != nil {
		p.Settings.Defaults(p)
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
			// A label and a name shown everywhere: no credentials in it.
			p.Targets[i].Name = redact.URLs(p.Targets[i].Host)
		}
	}
}
