package ping

import (
	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe"
)

// TypeName is the ping probe type's name and the key of its block.
const TypeName = "ping"

// Type declares the ping probe type to the registry.
var Type = &probe.Type{
	Name:      TypeName,
	NewConfig: func() config.Block { return &Config{} },
	New: func(pc config.Probe, deps probe.Deps) (probe.Prober, error) {
		return New(*pc.Settings.(*Config), deps)
	},
	// The shared engine times echoes with the kernel's timestamps, so runs
	// may start on the scheduler's tick, together. (pro-bing's runs do
	// too: its user-space timestamps are taken by its own receive
	// goroutine, one per run, whenever the run starts.)
	Policy: probe.Policy{CoalesceStarts: true},
	View:   probe.ViewLatency,
	Values: []probe.Value{
		{Name: "rtt_avg_seconds", Unit: "s", Label: "RTT", Role: probe.RoleLatency},
		{Name: "rtt_min_seconds", Unit: "s", Label: "RTT (min)", Role: probe.RoleLatencyMin},
		{Name: "rtt_max_seconds", Unit: "s", Label: "RTT (max)", Role: probe.RoleLatencyMax},
		{Name: "jitter_seconds", Unit: "s", Label: "jitter", Role: probe.RoleJitter},
		{Name: "loss_ratio", Unit: "1", Label: "loss", Role: probe.RoleLoss},
		{Name: "rtt_stddev_seconds", Unit: "s", Label: "RTT (std. dev.)"},
		{Name: "rtt_p10_seconds", Unit: "s", Label: "RTT (10th percentile)"},
		{Name: "rtt_p25_seconds", Unit: "s", Label: "RTT (25th percentile)"},
		{Name: "rtt_median_seconds", Unit: "s", Label: "RTT (median)"},
		{Name: "rtt_p75_seconds", Unit: "s", Label: "RTT (75th percentile)"},
		{Name: "rtt_p90_seconds", Unit: "s", Label: "RTT (90th percentile)"},
		{Name: "packets_sent", Unit: "{packet}", Label: "packets sent"},
		{Name: "packets_received", Unit: "{packet}", Label: "packets received"},
		{Name: "packets_duplicate", Unit: "{packet}", Label: "duplicate replies"},
		// ip_version: both: each family's figures.
		{Name: "ipv4_loss_ratio", Unit: "1", Label: "IPv4 loss"},
		{Name: "ipv6_loss_ratio", Unit: "1", Label: "IPv6 loss"},
		{Name: "ipv4_rtt_avg_seconds", Unit: "s", Label: "IPv4 RTT"},
		{Name: "ipv6_rtt_avg_seconds", Unit: "s", Label: "IPv6 RTT"},
		{Name: "ipv4_packets_sent", Unit: "{packet}", Label: "IPv4 packets sent"},
		{Name: "ipv6_packets_sent", Unit: "{packet}", Label: "IPv6 packets sent"},
		{Name: "ipv4_packets_received", Unit: "{packet}", Label: "IPv4 packets received"},
		{Name: "ipv6_packets_received", Unit: "{packet}", Label: "IPv6 packets received"},
	},
	// The SLOs prometheus/rules/slo.yml computes for this type, besides availability.
	Objectives: []string{config.ObjectiveLatency, config.ObjectiveLoss},
}
