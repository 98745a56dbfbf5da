package http

import (
	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe"
)

// TypeName is the HTTP probe type's name and the key of its block.
const TypeName = "http"

// Type declares the HTTP probe type to the registry.
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
		{Name: "processing_seconds", Unit: "s", Label: "processing (request sent to first byte)", Role: probe.RolePhase},
		{Name: "transfer_seconds", Unit: "s", Label: "transfer", Role: probe.RolePhase},
		{Name: "status_code", Unit: "1", Label: "status code"},
		{Name: "content_length_bytes", Unit: "By", Label: "body size"},
		{Name: "redirects_followed", Unit: "{redirect}", Label: "redirects"},
		{Name: "http_version", Unit: "1", Label: "HTTP version"},
		{Name: "tls_cert_expiry_timestamp_seconds", Unit: "s", Label: "certificate expiry (Unix time)"},
		{Name: "tls_verified", Unit: "1", Label: "certificate verified"},
	},
	// The SLOs prometheus/rules/slo.yml computes for this type, besides availability.
	Objectives: []string{config.ObjectiveLatency},
}
