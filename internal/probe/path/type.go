package path

import (
	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe"
)

// TypeName is the path probe type's name and the key of its block.
const TypeName = "path"

// Type declares the path probe type to the registry. The status page's
// latency view shows the destination: its round trip and its loss.
var Type = &probe.Type{
	Name:      TypeName,
	NewConfig: func() config.Block { return &Config{} },
	New: func(pc config.Probe, deps probe.Deps) (probe.Prober, error) {
		return New(*pc.Settings.(*Config), deps)
	},
	View: probe.ViewLatency,
	Values: []probe.Value{
		{Name: "rtt_avg_seconds", Unit: "s", Label: "RTT to the destination", Role: probe.RoleLatency},
		{Name: "rtt_min_seconds", Unit: "s", Label: "RTT to the destination (min)", Role: probe.RoleLatencyMin},
		{Name: "rtt_max_seconds", Unit: "s", Label: "RTT to the destination (max)", Role: probe.RoleLatencyMax},
		{Name: "jitter_seconds", Unit: "s", Label: "jitter to the destination", Role: probe.RoleJitter},
		{Name: "loss_ratio", Unit: "1", Label: "destination loss", Role: probe.RoleLoss},
		{Name: "hop_count", Unit: "{hop}", Label: "hops"},
		{Name: "loss_from_hop", Unit: "{hop}", Label: "loss starts at hop (0: none)"},
		{Name: "rate_limited_hops", Unit: "{hop}", Label: "rate-limited hops"},
		{Name: "route_hash", Unit: "{hash}", Label: "route hash"},
		{Name: "route_changed", Unit: "1", Label: "route changed"},
		{Name: "packets_sent", Unit: "{packet}", Label: "packets sent"},
	},
}
