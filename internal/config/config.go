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
	"os"
	"reflect"

	yaml "go.yaml.in/yaml/v3"
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
	// Tiers: "auto" adds the default gateways found in the kernel's
	// routing table as ping targets of tier gateway when the agent starts
	// (faults.AutoTiers); empty: only the tiers set on targets.
	Tiers string `yaml:"tiers"`
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
	// Instance identifies this agent among others pushing to one collector:
	// it is the OTLP resource's service.instance.id (the instance label of
	// pushed series). Empty means the host name, stable across restarts so
	// that a restart continues the agent's series. OTEL_RESOURCE_ATTRIBUTES
	// (service.instance.id=...) overrides it.
	Instance string `yaml:"instance"`
}

// Load reads and validates a configuration file; types are the probe types
// it may use (probes.Registry).
func Load(path string, types Types) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config: %w", err)
	}
	cfg, err := Parse(data, types)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes YAML strictly, applies defaults and validates the result.
// Unknown keys, values of the wrong kind and invalid values are all
// reported at once, each with its path, as *ValidationError; only YAML that
// does not parse at all is a plain error.
func Parse(data []byte, types Types) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("cannot parse config: %w", err)
	}
	var cfg Config
	var p Problems
	if len(root.Content) > 0 {
		checkKeys(&p, "", root.Content[0], reflect.TypeFor[Config]())
		if err := root.Decode(&cfg); err != nil {
			// checkKeys has cleared the values that do not fit; what is
			// left (a type's own rules) is listed with the rest.
			if _, ok := errors.AsType[*yaml.TypeError](err); !ok {
				return nil, fmt.Errorf("cannot parse config: %w", err)
			}
			p.Add("config", "%s", typeErrors(err))
		}
	}
	for i := range cfg.Probes {
		cfg.Probes[i].decodeBlock(&p, fmt.Sprintf("probes[%d]", i), types)
	}
	decoded := len(p)
	cfg.applyDefaults()
	if len(root.Content) > 0 {
		checkZeros(&p, "", root.Content[0], reflect.ValueOf(&cfg))
	}
	cfg.validate(&p, types)
	p = withoutRepeats(p, decoded)
	if len(p) > 0 {
		return nil, &ValidationError{Problems: p}
	}
	return &cfg, nil
}
