package config

import (
	"reflect"
	"slices"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// Probe is one measurement run on a schedule against each of its targets.
// Its type-specific settings are the block named like its type (ping:,
// speedtest:), decoded into the type's own struct (Settings).
type Probe struct {
	// Name identifies the probe (the probe_name label): letters, digits,
	// _ . -; unique.
	Name string `yaml:"name"`
	// Type is the probe type, whose block (ping:, speedtest:, ...) holds
	// its settings.
	Type string `yaml:"type"`
	// Interval is the time between runs against each target (at least 1s;
	// default 30s, or the type's); each target starts at a random offset.
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds one run (at most the interval; default 10s, or the
	// type's).
	Timeout time.Duration `yaml:"timeout"`
	// Targets are the hosts the probe measures.
	Targets []Target `yaml:"targets"`
	// Thresholds apply to every target (thresholds.go).
	Thresholds Thresholds `yaml:"thresholds,omitempty"`
	// Schedule: first run after a start, time windows (schedule.go).
	Schedule Schedule `yaml:"schedule,omitempty"`

	// Settings is the type's block, defaulted and validated; its concrete
	// type belongs to the probe type's package.
	Settings Block `yaml:"-"`
	// blocks holds the keys that are not probe fields until decodeBlock
	// has decoded the type's block and reported the others.
	blocks []blockNode
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
	// Tier says which part of the connection the target stands for (Tiers):
	// the fault-domain verdict compares the tiers' results, and the tier
	// is a label on the target's series. Empty: none.
	Tier string `yaml:"tier,omitempty"`
	// Thresholds override the probe's, key by key (Probe.ThresholdsOf).
	Thresholds Thresholds `yaml:"thresholds,omitempty"`
}

// ThresholdsOf returns the thresholds that apply to target t of p: the
// probe's, with the target's own keys over them.
func (p *Probe) ThresholdsOf(t Target) Thresholds { return p.Thresholds.Over(t.Thresholds) }

// Tiers are the values of Target.Tier, nearest first: the local network,
// the default gateway (home router), the ISP's first hops, DNS resolvers,
// and internet destinations.
var Tiers = []string{"lan", "gateway", "isp", "dns", "internet"}

// Block is a probe type's configuration block.
type Block interface {
	// Defaults fills the block's unset fields, and the probe's where the
	// type's defaults differ (a speed test runs hourly, not every 30 s).
	// It runs before the probe's generic defaults.
	Defaults(p *Probe)
	// Validate reports the block's problems, and the type's rules for the
	// probe and its targets; path is the probe's ("probes[2]").
	Validate(p *Probe, problems *Problems, path string)
}

// Types are the probe types a configuration may use (probe.Registry).
type Types interface {
	// NewBlock returns a new block of the named type with nothing set, or
	// false for an unknown type.
	NewBlock(name string) (Block, bool)
	// Names lists the known types.
	Names() []string
}

type blockNode struct {
	key   string
	value *yaml.Node
}

// probeFields is Probe without its methods, for decoding and encoding the
// common fields.
type probeFields Probe

// UnmarshalYAML decodes the common fields and keeps the other keys for
// decodeBlock, which knows the probe types.
func (p *Probe) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return n.Decode((*probeFields)(p)) // yaml's own error names the line and kind
	}
	common := *n
	common.Content = nil
	known := yamlKeys(reflect.TypeFor[probeFields]())
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if _, ok := known[k.Value]; ok {
			common.Content = append(common.Content, k, v)
		} else {
			p.blocks = append(p.blocks, blockNode{k.Value, v})
		}
	}
	return common.Decode((*probeFields)(p))
}

// MarshalYAML writes the type's block under its type's key, as in the
// file (the debug view shows what a run ran with).
func (p Probe) MarshalYAML() (any, error) {
	var n yaml.Node
	if err := n.Encode(probeFields(p)); err != nil {
		return nil, err
	}
	if p.Settings != nil {
		var b yaml.Node
		if err := b.Encode(p.Settings); err != nil {
			return nil, err
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: p.Type}, &b)
	}
	return &n, nil
}

// decodeBlock decodes the block of the probe's type into the type's own
// struct and reports every other unknown key: another type's block, or a
// misspelling with the nearest known key.
func (p *Probe) decodeBlock(problems *Problems, path string, types Types) {
	blocks := p.blocks
	p.blocks = nil
	known := slices.Sorted(func(yield func(string) bool) {
		for k := range yamlKeys(reflect.TypeFor[probeFields]()) {
			if !yield(k) {
				return
			}
		}
	})
	var own *yaml.Node
	for _, b := range blocks {
		switch _, isType := types.NewBlock(b.key); {
		case b.key == p.Type:
			own = b.value
		case isType:
			problems.Add(path+"."+b.key, "is only allowed when type is %s", b.key)
		default:
			problems.Add(path+"."+b.key, "unknown key%s", suggest(b.key, append(known, types.Names()...)))
		}
	}
	block, ok := types.NewBlock(p.Type)
	if !ok {
		return // validate reports the type
	}
	if own != nil && !(own.Kind == yaml.ScalarNode && own.Tag == "!!null") {
		bp := path + "." + p.Type
		checkKeys(problems, bp, own, reflect.TypeOf(block))
		if err := own.Decode(block); err != nil {
			problems.Add(bp, "%s", typeErrors(err))
		}
	}
	p.Settings = block
}
