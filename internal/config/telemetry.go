package config

import "time"

// Telemetry says where measurements are exported.
type Telemetry struct {
	Prometheus Prometheus `yaml:"prometheus"`
	OTLP       OTLP       `yaml:"otlp"`
	Traces     Traces     `yaml:"traces"`
	// CardinalityLimit is the most series (attribute sets) one instrument
	// keeps; past it, the SDK merges new ones into one series labelled
	// otel_metric_overflow="true". 0: sized from the configuration (every
	// target's worst case, twice over); -1: no limit.
	CardinalityLimit int `yaml:"cardinality_limit"`
	// ExponentialHistograms records histograms (RTTs, run durations) as
	// base-2 exponential histograms instead of fixed buckets: Prometheus
	// ingests them as native histograms, OTLP carries them as they are.
	ExponentialHistograms bool `yaml:"exponential_histograms"`
	// Profile chooses how many series each target costs the store:
	// "default" (every instrument, fixed-bucket histograms) or "lean"
	// (ProfileLean) for fleets where series are what a store charges for.
	Profile string `yaml:"profile"`
}

// Telemetry profiles (telemetry.profile).
const (
	ProfileDefault = "default"
	// ProfileLean records histograms as exponential histograms (one
	// series each in a store with native histograms), run durations per
	// probe instead of per target, and drops the last run's RTT min, max
	// and standard deviation (the history and the API keep them).
	ProfileLean = "lean"
)

// Lean reports whether the lean profile is chosen.
func (t Telemetry) Lean() bool { return t.Profile == ProfileLean }

// Prometheus controls the /metrics endpoint.
type Prometheus struct {
	// Enabled defaults to true; set false to export only over OTLP.
	Enabled *bool `yaml:"enabled"`
}

// IsEnabled reports whether /metrics is served.
func (p Prometheus) IsEnabled() bool { return p.Enabled == nil || *p.Enabled }

// OTLP configures pushing metrics and traces to an OpenTelemetry Collector.
// When Endpoint is empty, the standard OTEL_EXPORTER_OTLP_* environment
// variables decide; OTEL_SDK_DISABLED=true turns OTLP off either way.
type OTLP struct {
	// Endpoint is host:port for gRPC, or a base URL for HTTP
	// (http://collector:4318); signal paths (/v1/traces) are appended.
	Endpoint string `yaml:"endpoint"`
	// Protocol is "grpc" or "http" (HTTP/protobuf).
	Protocol string            `yaml:"protocol"`
	Headers  map[string]string `yaml:"headers"`
	// Insecure disables TLS (plain-text gRPC or http://).
	Insecure bool `yaml:"insecure"`
	TLS      TLS  `yaml:"tls"`
	// Timeout bounds one export request.
	Timeout time.Duration `yaml:"timeout"`
	// Signals lists what is pushed: "metrics", "traces". Push only traces
	// when Prometheus already scrapes /metrics, so no series is ingested twice.
	Signals []string `yaml:"signals"`
	// MetricsInterval is how often metrics are pushed.
	MetricsInterval time.Duration `yaml:"metrics_interval"`
}

// TLS configures the client side of a TLS connection.
type TLS struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Traces configures span sampling.
type Traces struct {
	// SamplingRatio is the share of probe runs traced (0–1); defaults to 1.
	SamplingRatio *float64 `yaml:"sampling_ratio"`
}

// Ratio returns the effective sampling ratio.
func (t Traces) Ratio() float64 {
	if t.SamplingRatio == nil {
		return 1
	}
	return *t.SamplingRatio
}

// HasSignal reports whether the named signal is pushed over OTLP.
func (o OTLP) HasSignal(name string) bool {
	for _, s := range o.Signals {
		if s == name {
			return true
		}
	}
	return false
}
