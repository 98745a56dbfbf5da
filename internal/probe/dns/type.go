package dns

import (
	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe"
)

// TypeName is the DNS probe type's name and the key of its block.
const TypeName = "dns"

// Type declares the DNS probe type to the registry. Its page view is the
// latency one: the lookup time is the headline; a lookup has no jitter
// and no packet loss, so it declares neither.
var Type = &probe.Type{
	Name:      TypeName,
	NewConfig: func() config.Block { return &Config{} },
	New: func(pc config.Probe, deps probe.Deps) (probe.Prober, error) {
		return New(*pc.Settings.(*Config), deps)
	},
	View: probe.ViewLatency,
	Values: []probe.Value{
		{Name: "lookup_seconds", Unit: "s", Label: "lookup time", Role: probe.RoleLatency},
		{Name: "response_code", Unit: "1", Label: "response code (rcode)"},
		{Name: "answer_records", Unit: "{record}", Label: "answer records"},
		{Name: "truncated_responses", Unit: "{response}", Label: "truncated UDP answers (asked again over TCP)"},
		{Name: "servers_tried", Unit: "{server}", Label: "servers asked"},
	},
	// The SLOs prometheus/rules/slo.yml computes for this type, besides availability.
	Objectives: []string{config.ObjectiveLatency},
}
