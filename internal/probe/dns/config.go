package dns

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	miekg "github.com/miekg/dns"
	promconfig "github.com/prometheus/common/config"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/network"
)

// Config configures a DNS probe: each run sends one question to the
// target, which is the DNS server (host[:port], or "system" for the
// servers of /etc/resolv.conf, tried in turn), and checks the answer.
type Config struct {
	// Network: ip_version and source, for the connection to the server.
	network.Settings `yaml:",inline"`
	// QueryName is the name asked about (example.com, or the reverse
	// name 1.2.0.192.in-addr.arpa for PTR).
	QueryName string `yaml:"query_name"`
	// QueryType is one of QueryTypes.
	QueryType string `yaml:"query_type"`
	// Transport is udp (a truncated answer is asked again over tcp), tcp,
	// or tls (DNS over TLS, RFC 7858).
	Transport string `yaml:"transport"`
	// RecursionDesired sets the RD flag; a nil pointer means the default,
	// true (ask a resolver); false asks an authoritative server about its
	// own zone.
	RecursionDesired *bool `yaml:"recursion_desired"`
	// ValidRcodes are the response codes that count as success (NOERROR).
	ValidRcodes []string `yaml:"valid_rcodes"`
	// Answers checks the answer section.
	Answers AnswerChecks `yaml:"answers"`
	// Authoritative requires the AA flag in the answer.
	Authoritative bool `yaml:"authoritative"`
	// TLS configures DNS over TLS (ca_file, server_name, ...), as in
	// Prometheus; server_name defaults to the target's host.
	TLS promconfig.TLSConfig `yaml:"tls_config"`
}

// AnswerChecks are the checks on the answer section. Regular expressions
// are matched against each record's value, its text without the header:
// "192.0.2.1" for an A record, "10 mail.example.com." for an MX.
type AnswerChecks struct {
	// Min is the fewest answer records that succeed (0).
	Min int `yaml:"min"`
	// Max is the most (nil: no limit; 0 expects an empty answer).
	Max *int `yaml:"max"`
	// MustMatch: each expression must match at least one record's value.
	MustMatch []string `yaml:"must_match"`
	// MustNotMatch: no record's value may match any of these.
	MustNotMatch []string `yaml:"must_not_match"`
}

// Transports of Config.Transport.
const (
	TransportUDP = "udp"
	TransportTCP = "tcp"
	TransportTLS = "tls"
)

// System is the target host that stands for the system's resolvers.
const System = "system"

// QueryTypes are the record types a probe may ask for.
var QueryTypes = []string{"A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "SRV", "PTR"}

// Defaults implements config.Block.
func (c *Config) Defaults(*config.Probe) {
	c.Settings.Defaults()
	if c.QueryType == "" {
		c.QueryType = "A"
	}
	if c.Transport == "" {
		c.Transport = TransportUDP
	}
	if c.RecursionDesired == nil {
		c.RecursionDesired = new(true)
	}
	if len(c.ValidRcodes) == 0 {
		c.ValidRcodes = []string{"NOERROR"}
	}
}

// Validate implements config.Block.
func (c *Config) Validate(pr *config.Probe, p *config.Problems, probePath string) {
	path := probePath + ".dns"
	c.Settings.Validate(p, path)
	if c.QueryName == "" {
		p.Add(path+".query_name", "is required")
	} else if _, ok := miekg.IsDomainName(c.QueryName); !ok {
		p.Add(path+".query_name", "%q is not a domain name", c.QueryName)
	}
	if !slices.Contains(QueryTypes, strings.ToUpper(c.QueryType)) {
		p.Add(path+".query_type", "must be one of %s, not %q", strings.Join(QueryTypes, ", "), c.QueryType)
	}
	if !slices.Contains([]string{TransportUDP, TransportTCP, TransportTLS}, c.Transport) {
		p.Add(path+".transport", "must be udp, tcp or tls, not %q", c.Transport)
	}
	for i, rc := range c.ValidRcodes {
		if _, ok := rcode(rc); !ok {
			p.Add(fmt.Sprintf("%s.valid_rcodes[%d]", path, i), "%q is not a DNS response code (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ...)", rc)
		}
	}
	a := c.Answers
	if a.Min < 0 {
		p.Add(path+".answers.min", "must not be negative, not %d", a.Min)
	}
	if a.Max != nil && *a.Max < a.Min {
		p.Add(path+".answers.max", "must be at least min (%d), not %d", a.Min, *a.Max)
	}
	for _, res := range []struct {
		key  string
		list []string
	}{{"must_match", a.MustMatch}, {"must_not_match", a.MustNotMatch}} {
		for i, re := range res.list {
			if _, err := regexp.Compile(re); err != nil {
				p.Add(fmt.Sprintf("%s.answers.%s[%d]", path, res.key, i), "invalid regular expression: %v", err)
			}
		}
	}
	if c.Transport == TransportTLS {
		if _, err := network.TLSConfig(c.TLS); err != nil {
			p.Add(path+".tls_config", "%v", err)
		}
	} else if c.TLS != (promconfig.TLSConfig{}) {
		p.Add(path+".tls_config", "is only used with transport tls, not %s", c.Transport)
	}
	for i, t := range pr.Targets {
		if t.Host == "" {
			continue // the config package reports it
		}
		if _, err := ServerAddr(t.Host, c.Transport); err != nil {
			p.Add(fmt.Sprintf("%s.targets[%d].host", probePath, i), "%v", err)
		}
	}
}

// ServerAddr is the host:port a target's host names: the host with its
// port, or with the transport's default port (53; 853 for tls). "system"
// is returned as it is.
func ServerAddr(host, transport string) (string, error) {
	if host == System {
		return host, nil
	}
	h, port, err := net.SplitHostPort(host)
	if err != nil {
		// No port: a name, an IPv4 address or a bare IPv6 address.
		h, port = strings.Trim(host, "[]"), "53"
		if transport == TransportTLS {
			port = "853"
		}
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "", fmt.Errorf("must be system or a DNS server host[:port], not %q (bad port)", host)
	}
	if h == "" || strings.ContainsAny(h, "/ ") {
		return "", fmt.Errorf("must be system or a DNS server host[:port], not %q", host)
	}
	return net.JoinHostPort(h, port), nil
}

// rcode parses a response code name (NOERROR, nxdomain) or number.
func rcode(s string) (int, bool) {
	if rc, ok := miekg.StringToRcode[strings.ToUpper(s)]; ok {
		return rc, true
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= 0xfff {
		return n, true
	}
	return 0, false
}
