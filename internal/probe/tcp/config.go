package tcp

import (
	"fmt"
	"net"
	"regexp"
	"strconv"

	promconfig "github.com/prometheus/common/config"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/network"
)

// Config configures a TCP probe: each run resolves the target (host:port),
// connects, optionally completes a TLS handshake and optionally runs a
// send/expect exchange, as blackbox_exporter's tcp prober does (same keys:
// tls, tls_config, query_response).
type Config struct {
	// Network: ip_version and source (an address or an interface).
	network.Settings `yaml:",inline"`
	// TLS makes the run complete a TLS handshake after connecting.
	TLS bool `yaml:"tls"`
	// TLSConfig holds the TLS client settings Prometheus users know
	// (ca_file, cert_file, key_file, server_name, insecure_skip_verify,
	// min_version), loaded by prometheus/common/config.
	TLSConfig promconfig.TLSConfig `yaml:"tls_config"`
	// QueryResponse is the exchange, in order: each step waits for a line
	// matching expect, then sends send followed by a newline.
	QueryResponse []Step `yaml:"query_response"`
}

// Step is one step of a query_response exchange.
type Step struct {
	// Expect is a regular expression (Go RE2 syntax) a line the server
	// sends must match; empty: do not wait.
	Expect string `yaml:"expect"`
	// Send is written after Expect matched, with a newline; empty: nothing.
	Send string `yaml:"send"`
}

// Defaults implements config.Block.
func (c *Config) Defaults(*config.Probe) { c.Settings.Defaults() }

// Validate implements config.Block.
func (c *Config) Validate(pr *config.Probe, p *config.Problems, probePath string) {
	path := probePath + ".tcp"
	c.Settings.Validate(p, path)
	for i, t := range pr.Targets {
		if t.Host == "" {
			continue // reported by the config package
		}
		if err := checkHostPort(t.Host); err != nil {
			p.Add(fmt.Sprintf("%s.targets[%d].host", probePath, i), "%v", err)
		}
	}
	if c.TLS {
		if _, err := network.TLSConfig(c.TLSConfig); err != nil {
			p.Add(path+".tls_config", "%v", err)
		}
	} else if c.TLSConfig != (promconfig.TLSConfig{}) {
		p.Add(path+".tls_config", "is set but tls is false: set tls: true to handshake")
	}
	for i, s := range c.QueryResponse {
		sp := fmt.Sprintf("%s.query_response[%d]", path, i)
		if s.Expect == "" && s.Send == "" {
			p.Add(sp, "needs expect, send or both")
		}
		if _, err := regexp.Compile(s.Expect); err != nil {
			p.Add(sp+".expect", "is not a valid regular expression: %v", err)
		}
	}
}

// checkHostPort accepts host:port with a port between 1 and 65535.
func checkHostPort(hostport string) error {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host == "" {
		return fmt.Errorf("must be host:port (example.com:443, [2001:db8::1]:22), not %q", hostport)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port must be between 1 and 65535, not %q", port)
	}
	return nil
}
