// Package config defines netpulse's configuration file: its types, defaults,
// strict loading and validation. Validation reports every problem at once,
// each prefixed with the path of the offending field, so a user fixes a file
// in one pass (`probes[2].ping.count: must be between 1 and 1000`).
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"gopkg.in/yaml.v3"
)

//go:embed default.yml
var defaultYAML []byte

// DefaultYAML returns the embedded configuration used when no file is given.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Config is the whole configuration file.
type Config struct {
	// Global holds settings that apply to every probe and series.
	Global Global `yaml:"global"`
	// Telemetry says where measurements go.
	Telemetry Telemetry `yaml:"telemetry"`
	// Probes are the measurements to run.
	Probes []Probe `yaml:"probes"`
	// Storage, API and Log configure result history, the API and status
	// page, and the optional log file (api.go).
	Storage Storage `yaml:"storage"`
	API     API     `yaml:"api"`
	Log     Log     `yaml:"log"`
}

// Global holds settings that apply to the whole agent.
type Global struct {
	// Labels are added to every exported series (as resource attributes in
	// OTLP, as labels on every series in Prometheus).
	Labels map[string]string `yaml:"labels"`
	// Resolver is the DNS server (host:port) used to resolve target names
	// instead of the system's resolver configuration.
	Resolver string `yaml:"resolver"`
}

// Probe is one measurement run on a schedule against each of its targets.
type Probe struct {
	Name     string        `yaml:"name"`
	Type     string        `yaml:"type"`
	Interval time.Duration `yaml:"interval"`
	Timeout  time.Duration `yaml:"timeout"`
	Targets  []Target      `yaml:"targets"`

	// Exactly one type-specific block is used: the one named by Type.
	Ping      *Ping      `yaml:"ping"`
	Speedtest *Speedtest `yaml:"speedtest"` // speedtest.go
}

// Target is one host a probe measures.
type Target struct {
	// Name identifies the target in series and spans; defaults to Host.
	Name string `yaml:"name"`
	// Host is a DNS name or an IP address; names are resolved on every run.
	Host string `yaml:"host"`
	// Labels are added to this target's series. Keys must be valid label
	// names and must not collide with the labels netpulse sets itself.
	Labels map[string]string `yaml:"labels"`
}

// Ping configures an ICMP echo probe: each run sends a burst of Count echo
// requests, PacketInterval apart, and waits for replies until the run's
// timeout or until every reply has arrived.
type Ping struct {
	Count          int           `yaml:"count"`
	PacketInterval time.Duration `yaml:"packet_interval"`
	// Size is the ICMP payload size in bytes.
	Size int `yaml:"size"`
	TTL  int `yaml:"ttl"`
	// IPVersion picks the address family when a name resolves to both:
	// "auto" prefers IPv4, "4" and "6" use only that family.
	IPVersion string `yaml:"ip_version"`
	// Source is the local address to send from; empty lets the kernel choose.
	Source string `yaml:"source"`
	// Privileged selects raw ICMP sockets ("true", needs root or
	// CAP_NET_RAW), unprivileged ICMP datagram sockets ("false", needs
	// net.ipv4.ping_group_range), or whichever works ("auto").
	Privileged string `yaml:"privileged"`
}

// Load reads and validates a configuration file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes YAML strictly (unknown keys are errors), applies defaults and
// validates the result. A validation failure is returned as *ValidationError.
func Parse(data []byte) (*Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("cannot parse config: %w", err)
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}
