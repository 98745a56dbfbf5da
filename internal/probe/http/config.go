package http

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	promconfig "github.com/prometheus/common/config"
	"golang.org/x/net/http/httpguts"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/network"
)

// Config configures an HTTP probe: each run sends one request to the
// target's URL on new connections, follows redirects up to MaxRedirects and
// checks the final response's status and body. Keys follow
// blackbox_exporter's http prober where it has them.
type Config struct {
	// Network: ip_version and source, for every connection of a run.
	network.Settings `yaml:",inline"`
	Method           string  `yaml:"method"`
	Headers          Headers `yaml:"headers"`
	Body             string  `yaml:"body"`
	// ValidStatusCodes are codes ("200") and ranges ("200-299"); default 200-299.
	ValidStatusCodes []string `yaml:"valid_status_codes"`
	// FailIfBodyMatches and FailIfBodyNotMatches are regular expressions
	// (RE2) the response body must not, or must, match.
	FailIfBodyMatches    []string `yaml:"fail_if_body_matches_regexp"`
	FailIfBodyNotMatches []string `yaml:"fail_if_body_not_matches_regexp"`
	// MaxRedirects is how many redirects a run follows (default 10); 0: none,
	// the redirect itself is the response.
	MaxRedirects *int `yaml:"max_redirects"`
	// HTTPVersion: auto (HTTP/2 where TLS negotiates it, else HTTP/1.1), 1.1
	// or 2 (HTTP/2 only; over http:// without TLS, "prior knowledge" h2c).
	HTTPVersion string `yaml:"http_version"`
	// ProxyURL sends the requests through this proxy; empty: no proxy
	// (HTTP_PROXY and friends are ignored: a probe measures one path).
	ProxyURL promconfig.URL `yaml:"proxy_url"`
	// TLSConfig: ca_file, cert_file, key_file, server_name,
	// insecure_skip_verify, min_version, as in Prometheus.
	TLSConfig promconfig.TLSConfig `yaml:"tls_config"`
	// BodySizeLimit fails a run whose body is larger (default 10MB).
	BodySizeLimit config.ByteSize `yaml:"body_size_limit"`

	// credentials are the user:password parts of target URLs, moved out of
	// the targets by Defaults (keyed by the redacted URL that replaces the
	// host), so the password shows nowhere: not in labels, spans, the API,
	// the debug view or the history. Unexported: never rendered.
	credentials map[string]*url.Userinfo
}

// Defaults of a probe.
const (
	DefaultMaxRedirects  = 10
	DefaultBodySizeLimit = config.ByteSize(10e6)
	HTTPAuto             = "auto"
)

// Defaults implements config.Block. It also moves a password in a
// target's URL into the block and leaves the target's host redacted
// (https://user:xxxxx@host/): the host is shown everywhere, the password
// must be nowhere.
func (c *Config) Defaults(p *config.Probe) {
	c.Settings.Defaults()
	if u := c.ProxyURL.URL; u != nil && u.String() == "" {
		c.ProxyURL.URL = nil // proxy_url: "" is no proxy, as documented
	}
	if c.Method == "" {
		c.Method = "GET"
	}
	c.Method = strings.ToUpper(c.Method)
	if len(c.ValidStatusCodes) == 0 {
		c.ValidStatusCodes = []string{"200-299"}
	}
	if c.MaxRedirects == nil {
		n := DefaultMaxRedirects
		c.MaxRedirects = &n
	}
	if c.HTTPVersion == "" {
		c.HTTPVersion = HTTPAuto
	}
	if c.BodySizeLimit == 0 {
		c.BodySizeLimit = DefaultBodySizeLimit
	}
	for i := range p.Targets {
		t := &p.Targets[i]
		u, err := url.Parse(t.Host)
		if err != nil || u.User == nil {
			continue
		}
		if _, hasPassword := u.User.Password(); !hasPassword {
			continue
		}
		redacted := u.Redacted()
		if c.credentials == nil {
			c.credentials = map[string]*url.Userinfo{}
		}
		if _, ok := c.credentials[redacted]; !ok {
			c.credentials[redacted] = u.User
		}
		t.Host = redacted
	}
}

// Validate implements config.Block.
func (c *Config) Validate(pr *config.Probe, p *config.Problems, probePath string) {
	path := probePath + ".http"
	c.Settings.Validate(p, path)
	for i, t := range pr.Targets {
		if t.Host == "" {
			continue // reported by the config package
		}
		if u, err := url.Parse(t.Host); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.Add(fmt.Sprintf("%s.targets[%d].host", probePath, i), "must be an http:// or https:// URL, not %q", t.Host)
		}
	}
	if !httpguts.ValidHeaderFieldName(c.Method) {
		p.Add(path+".method", "%q is not an HTTP method", c.Method)
	} else if c.Body != "" && (c.Method == "GET" || c.Method == "HEAD") {
		p.Add(path+".body", "a %s request has no body: set method (POST, PUT) or remove body", c.Method)
	}
	for name, v := range c.Headers {
		if !httpguts.ValidHeaderFieldName(name) {
			p.Add(path+".headers", "%q is not a valid header name", name)
		} else if !httpguts.ValidHeaderFieldValue(v) {
			p.Add(path+".headers."+name, "is not a valid header value")
		}
	}
	for i, s := range c.ValidStatusCodes {
		if _, _, err := parseRange(s); err != nil {
			p.Add(fmt.Sprintf("%s.valid_status_codes[%d]", path, i), "%v", err)
		}
	}
	for key, res := range map[string][]string{"fail_if_body_matches_regexp": c.FailIfBodyMatches,
		"fail_if_body_not_matches_regexp": c.FailIfBodyNotMatches} {
		for i, re := range res {
			if _, err := regexp.Compile(re); err != nil {
				p.Add(fmt.Sprintf("%s.%s[%d]", path, key, i), "is not a valid regular expression: %v", err)
			}
		}
	}
	if n := *c.MaxRedirects; n < 0 || n > 100 {
		p.Add(path+".max_redirects", "must be between 0 (do not follow) and 100, not %d", n)
	}
	if !slices.Contains([]string{HTTPAuto, "1.1", "2"}, c.HTTPVersion) {
		p.Add(path+".http_version", `must be auto, "1.1" or "2", not %q`, c.HTTPVersion)
	}
	if u := c.ProxyURL.URL; u != nil && (!slices.Contains([]string{"http", "https", "socks5"}, u.Scheme) || u.Host == "") {
		p.Add(path+".proxy_url", "must be an http://, https:// or socks5:// URL, not %q", c.ProxyURL.Redacted())
	}
	if _, err := network.TLSConfig(c.TLSConfig); err != nil {
		p.Add(path+".tls_config", "%v", err)
	}
	if c.BodySizeLimit < 1 {
		p.Add(path+".body_size_limit", "must be at least 1B, not %s", c.BodySizeLimit)
	}
}

// parseRange parses "200" or "200-299".
func parseRange(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(strings.TrimSpace(s), "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := lo, error(nil)
	if isRange {
		hi, err2 = strconv.Atoi(strings.TrimSpace(b))
	}
	if err1 != nil || err2 != nil || lo < 100 || hi > 599 || lo > hi {
		return 0, 0, fmt.Errorf("must be a status code or a range of them between 100 and 599 (200, 200-299), not %q", s)
	}
	return lo, hi, nil
}

// Headers are request headers. Rendered (the debug view, logs), the values
// of headers named like secrets are redacted.
type Headers map[string]string

// MarshalYAML redacts secret-looking values.
func (h Headers) MarshalYAML() (any, error) {
	out := make(map[string]string, len(h))
	for k, v := range h {
		if SecretHeader(k) {
			v = "<redacted>"
		}
		out[k] = v
	}
	return out, nil
}

// SecretHeader tells whether a header's value is to be hidden: credentials
// by name (Authorization, Cookie) or by look (*token*, *key*, *secret*).
func SecretHeader(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"authorization", "cookie", "token", "key", "secret", "password", "auth", "session"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}
