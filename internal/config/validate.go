package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ValidationError lists every problem found in a configuration, each naming
// the path of the field at fault.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	return "invalid config:\n  " + strings.Join(e.Problems, "\n  ")
}

type Problems []string

func (p *Problems) Add(path, format string, args ...any) {
	*p = append(*p, path+": "+fmt.Sprintf(format, args...))
}

var (
	labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	probeNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
)

// ReservedLabels are set by netpulse itself (in their Prometheus form); user
// labels may not reuse them.
var ReservedLabels = []string{
	"probe_name", "probe_type", "target_name", "outcome", "error_type",
	"job", "instance", "le", "quantile", "otel_scope_name", "otel_scope_version",
	"direction", "phase", "period", // speed-test series
	"tier", "hop", "domain", // tiers, path and fault-domain series
}

// Validate checks the configuration after defaults were applied; types
// are the probe types it may use.
func (c *Config) Validate(types Types) error {
	var p Problems
	c.validate(&p, types)
	if len(p) > 0 {
		return &ValidationError{Problems: p}
	}
	return nil
}

func (c *Config) validate(p *Problems, types Types) {
	validateLabels(p, "global.labels", c.Global.Labels)
	if r := c.Global.Resolver; r != "" {
		if _, err := netip.ParseAddrPort(r); err != nil {
			p.Add("global.resolver", "must be an IP address and port such as 127.0.0.1:53, not %q", r)
		}
	}
	validateInstance(p, c.Global.Instance)
	c.Telemetry.validate(p)
	c.validateAPI(p)
	if c.Tiers != "" && c.Tiers != "auto" {
		p.Add("tiers", "must be auto or empty, not %q", c.Tiers)
	}
	if len(c.Probes) == 0 {
		p.Add("probes", "at least one probe is required")
	}
	seen := map[string]int{}
	for i := range c.Probes {
		path := fmt.Sprintf("probes[%d]", i)
		c.Probes[i].validate(p, path, types)
		if name := c.Probes[i].Name; name != "" {
			if j, dup := seen[name]; dup {
				p.Add(path+".name", "%q is already used by probes[%d]", name, j)
			}
			seen[name] = i
		}
	}
}

func (t *Telemetry) validate(p *Problems) {
	o := t.OTLP
	if o.Protocol != "grpc" && o.Protocol != "http" {
		p.Add("telemetry.otlp.protocol", "must be grpc or http, not %q", o.Protocol)
	}
	if o.Timeout <= 0 {
		p.Add("telemetry.otlp.timeout", "must be > 0")
	}
	if o.MetricsInterval < time.Second {
		p.Add("telemetry.otlp.metrics_interval", "must be at least 1s")
	}
	for i, s := range o.Signals {
		if s != "metrics" && s != "traces" {
			p.Add(fmt.Sprintf("telemetry.otlp.signals[%d]", i), "must be metrics or traces, not %q", s)
		}
	}
	if (o.TLS.CertFile == "") != (o.TLS.KeyFile == "") {
		p.Add("telemetry.otlp.tls", "cert_file and key_file must be set together")
	}
	if o.Insecure && (o.TLS.CAFile != "" || o.TLS.CertFile != "") {
		p.Add("telemetry.otlp.insecure", "cannot be combined with tls files")
	}
	if t.CardinalityLimit < -1 {
		p.Add("telemetry.cardinality_limit", "must be -1 (no limit), 0 (sized from the configuration) or a limit, not %d", t.CardinalityLimit)
	}
	if t.Profile != "" && t.Profile != ProfileDefault && t.Profile != ProfileLean {
		p.Add("telemetry.profile", "must be default or lean, not %q", t.Profile)
	}
	if r := t.Traces.Ratio(); r < 0 || r > 1 {
		p.Add("telemetry.traces.sampling_ratio", "must be between 0 and 1, not %g", r)
	}
}

func (pr *Probe) validate(p *Problems, path string, types Types) {
	switch {
	case pr.Name == "":
		p.Add(path+".name", "is required")
	case !probeNameRE.MatchString(pr.Name):
		p.Add(path+".name", "%q may only contain letters, digits, '_', '.' and '-'", pr.Name)
	}
	if _, ok := types.NewBlock(pr.Type); !ok {
		p.Add(path+".type", "must be one of %s, not %q", strings.Join(types.Names(), ", "), pr.Type)
	}
	if pr.Interval < time.Second {
		p.Add(path+".interval", "must be at least 1s, not %s", pr.Interval)
	}
	switch {
	case pr.Timeout <= 0:
		p.Add(path+".timeout", "must be > 0")
	case pr.Timeout > pr.Interval && pr.Interval >= time.Second:
		p.Add(path+".timeout", "must not exceed the interval (%s), not %s", pr.Interval, pr.Timeout)
	}
	pr.Thresholds.validate(p, path+".thresholds")
	pr.Schedule.validate(p, path+".schedule")
	if len(pr.Targets) == 0 {
		p.Add(path+".targets", "at least one target is required")
	}
	names := map[string]int{}
	for i, t := range pr.Targets {
		tp := fmt.Sprintf("%s.targets[%d]", path, i)
		if t.Host == "" {
			p.Add(tp+".host", "is required")
		}
		if j, dup := names[t.Name]; dup && t.Name != "" {
			p.Add(tp+".name", "%q is already used by targets[%d]", t.Name, j)
		}
		names[t.Name] = i
		validateLabels(p, tp+".labels", t.Labels)
		if t.Tier != "" && !slices.Contains(Tiers, t.Tier) {
			p.Add(tp+".tier", "must be one of %s, not %q", strings.Join(Tiers, ", "), t.Tier)
		}
		t.Thresholds.validate(p, tp+".thresholds")
	}
	if pr.Settings != nil {
		pr.Settings.Validate(pr, p, path)
	}
}

func validateLabels(p *Problems, path string, labels map[string]string) {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch {
		case !labelNameRE.MatchString(k) || strings.HasPrefix(k, "__"):
			p.Add(path, "%q is not a valid label name (letters, digits and '_', not starting with a digit or '__')", k)
		case slices.Contains(ReservedLabels, k):
			p.Add(path, "%q is reserved for netpulse's own labels", k)
		}
	}
}

// validateInstance checks global.instance: it becomes a label value, so it
// is printable, without spaces, and of a length a host name can have.
func validateInstance(p *Problems, v string) {
	switch {
	case v == "":
	case len(v) > 253:
		p.Add("global.instance", "is %d bytes long; at most 253", len(v))
	case !utf8.ValidString(v):
		p.Add("global.instance", "must be valid UTF-8, got %q", v)
	case strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		p.Add("global.instance", "must not contain spaces or control characters, got %q", v)
	}
}
