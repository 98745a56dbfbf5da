package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

// ValidationError lists every problem found in a configuration, each naming
// the path of the field at fault.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	return "invalid config:\n  " + strings.Join(e.Problems, "\n  ")
}

type problems []string

func (p *problems) add(path, format string, args ...any) {
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
}

// probeTypes lists the known probe types; the block of the same name in a
// probe holds the type's settings.
var probeTypes = []string{TypePing, TypeSpeedtest}

// Validate checks the configuration after defaults were applied.
func (c *Config) Validate() error {
	var p problems
	validateLabels(&p, "global.labels", c.Global.Labels)
	if r := c.Global.Resolver; r != "" {
		if _, err := netip.ParseAddrPort(r); err != nil {
			p.add("global.resolver", "must be an IP address and port such as 127.0.0.1:53, not %q", r)
		}
	}
	c.Telemetry.validate(&p)
	c.validateAPI(&p)
	if len(c.Probes) == 0 {
		p.add("probes", "at least one probe is required")
	}
	seen := map[string]int{}
	for i := range c.Probes {
		path := fmt.Sprintf("probes[%d]", i)
		c.Probes[i].validate(&p, path)
		if name := c.Probes[i].Name; name != "" {
			if j, dup := seen[name]; dup {
				p.add(path+".name", "%q is already used by probes[%d]", name, j)
			}
			seen[name] = i
		}
	}
	if len(p) > 0 {
		return &ValidationError{Problems: p}
	}
	return nil
}

func (t *Telemetry) validate(p *problems) {
	o := t.OTLP
	if o.Protocol != "grpc" && o.Protocol != "http" {
		p.add("telemetry.otlp.protocol", "must be grpc or http, not %q", o.Protocol)
	}
	if o.Timeout <= 0 {
		p.add("telemetry.otlp.timeout", "must be > 0")
	}
	if o.MetricsInterval < time.Second {
		p.add("telemetry.otlp.metrics_interval", "must be at least 1s")
	}
	for i, s := range o.Signals {
		if s != "metrics" && s != "traces" {
			p.add(fmt.Sprintf("telemetry.otlp.signals[%d]", i), "must be metrics or traces, not %q", s)
		}
	}
	if (o.TLS.CertFile == "") != (o.TLS.KeyFile == "") {
		p.add("telemetry.otlp.tls", "cert_file and key_file must be set together")
	}
	if o.Insecure && (o.TLS.CAFile != "" || o.TLS.CertFile != "") {
		p.add("telemetry.otlp.insecure", "cannot be combined with tls files")
	}
	if r := t.Traces.Ratio(); r < 0 || r > 1 {
		p.add("telemetry.traces.sampling_ratio", "must be between 0 and 1, not %g", r)
	}
}

func (pr *Probe) validate(p *problems, path string) {
	switch {
	case pr.Name == "":
		p.add(path+".name", "is required")
	case !probeNameRE.MatchString(pr.Name):
		p.add(path+".name", "%q may only contain letters, digits, '_', '.' and '-'", pr.Name)
	}
	if !slices.Contains(probeTypes, pr.Type) {
		p.add(path+".type", "must be one of %s, not %q", strings.Join(probeTypes, ", "), pr.Type)
	}
	if pr.Interval < time.Second {
		p.add(path+".interval", "must be at least 1s, not %s", pr.Interval)
	}
	switch {
	case pr.Timeout <= 0:
		p.add(path+".timeout", "must be > 0")
	case pr.Timeout > pr.Interval && pr.Interval >= time.Second:
		p.add(path+".timeout", "must not exceed the interval (%s), not %s", pr.Interval, pr.Timeout)
	}
	if len(pr.Targets) == 0 {
		p.add(path+".targets", "at least one target is required")
	}
	names := map[string]int{}
	for i, t := range pr.Targets {
		tp := fmt.Sprintf("%s.targets[%d]", path, i)
		if t.Host == "" {
			p.add(tp+".host", "is required")
		}
		if j, dup := names[t.Name]; dup && t.Name != "" {
			p.add(tp+".name", "%q is already used by targets[%d]", t.Name, j)
		}
		names[t.Name] = i
		validateLabels(p, tp+".labels", t.Labels)
	}
	if pr.Ping != nil && pr.Type != TypePing {
		p.add(path+".ping", "is only allowed when type is ping")
	}
	if pr.Type == TypePing && pr.Ping != nil {
		pr.Ping.validate(p, path+".ping", pr.Timeout)
	}
	if pr.Speedtest != nil && pr.Type != TypeSpeedtest {
		p.add(path+".speedtest", "is only allowed when type is speedtest")
	}
	if pr.Type == TypeSpeedtest {
		pr.validateSpeedtest(p, path)
	}
}

func (g *Ping) validate(p *problems, path string, timeout time.Duration) {
	if g.Count < 1 || g.Count > 1000 {
		p.add(path+".count", "must be between 1 and 1000, not %d", g.Count)
	}
	if g.PacketInterval < time.Millisecond {
		p.add(path+".packet_interval", "must be at least 1ms, not %s", g.PacketInterval)
	} else if burst := time.Duration(g.Count-1) * g.PacketInterval; g.Count >= 1 && g.Count <= 1000 && timeout > 0 && burst >= timeout {
		p.add(path+".packet_interval", "%d packets %s apart take %s, which does not fit in the probe's timeout (%s)",
			g.Count, g.PacketInterval, burst, timeout)
	}
	// pro-bing stores a timestamp and a 16-byte tracker in the payload.
	if g.Size < 24 || g.Size > 65500 {
		p.add(path+".size", "must be between 24 and 65500 bytes, not %d", g.Size)
	}
	if g.TTL < 1 || g.TTL > 255 {
		p.add(path+".ttl", "must be between 1 and 255, not %d", g.TTL)
	}
	if !slices.Contains([]string{"auto", "4", "6"}, g.IPVersion) {
		p.add(path+".ip_version", "must be auto, 4 or 6, not %q", g.IPVersion)
	}
	if g.Source != "" {
		if _, err := netip.ParseAddr(g.Source); err != nil {
			p.add(path+".source", "must be an IP address, not %q", g.Source)
		}
	}
	if !slices.Contains([]string{"auto", "true", "false"}, g.Privileged) {
		p.add(path+".privileged", "must be auto, true or false, not %q", g.Privileged)
	}
}

func validateLabels(p *problems, path string, labels map[string]string) {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch {
		case !labelNameRE.MatchString(k) || strings.HasPrefix(k, "__"):
			p.add(path, "%q is not a valid label name (letters, digits and '_', not starting with a digit or '__')", k)
		case slices.Contains(ReservedLabels, k):
			p.add(path, "%q is reserved for netpulse's own labels", k)
		}
	}
}
