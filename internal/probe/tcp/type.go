package tcp

import (
	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe"
)

// TypeName is the TCP probe type's name and the key of its block.
const TypeName = "tcp"

// Type declares the TCP probe type to the registry.
var Type = &probe.Type{
	Name:      TypeName,
	NewConfig: func() config.Block { return &Config{} },
	New: func(pc config.Probe, deps probe.Deps) (probe.Prober, error) {
		return New(*pc.Settings.(*Config), deps)
	},
	View: probe.ViewLatency,
	Values: []probe.Value{
		{Name: "duration_seconds", Unit: "s", Label: "duration", Role: probe.RoleLatency},
		{Name: "resolve_seconds", Unit: "s", Label: "resolve", Role: probe.RolePhase},
		{Name: "connect_seconds", Unit: "s", Label: "connect", Role: probe.RolePhase},
		{Name: "tls_seconds", Unit: "s", Label: "TLS handshake", Role: probe.RolePhase},
		{Name: "exchange_seconds", Unit: "s", Label: "send/expect exchange", Role: probe.RolePhase},
		{Name: "tls_cert_expiry_timestamp_seconds", Unit: "s", Label: "certificate expiry (Unix time)"},
		{Name: "tls_verified", Unit: "1", Label: "certificate verified"},
	},
	// The SLOs prometheus/rules/slo.yml computes for this type, besides availability.
	Objectives: []string{config.ObjectiveLatency},
}
