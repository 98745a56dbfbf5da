// Package http is the HTTP(S) probe: each run sends one request on new
// connections through the platform's dialer (ip_version, source, the
// agent's resolver), follows redirects, and checks the final response's
// status and body. The dialer times resolve and connect (the platform's
// Resolve adds its "resolve" span), net/http/httptrace the TLS handshake,
// processing and transfer; each request (the first, then one per
// redirect) is a child span of the run with its phases as children.
//
// The phase spans are made here from the httptrace callbacks, not by
// otelhttptrace (v0.72.0 installs beside otel v1.47.0): its "http.receive"
// span ends only in PutIdleConn, which net/http's HTTP/2 transport never
// calls and HTTP/1.1 skips for a "Connection: close" response, so those
// spans would never end (and never be exported); and it sets every request
// header as an attribute of the run's span, redacting a fixed list only.
package http

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probe/tlsinfo"
)

// ScopeName names this package's meter and tracer.
const ScopeName = "github.com/netpulse/netpulse/internal/probe/http"

// Error types of this probe beyond the network ones.
const (
	ErrTLS      = tlsinfo.ErrTLS // the handshake failed, or the chain did not verify
	ErrStatus   = "status"       // the final status code is not one of valid_status_codes
	ErrBody     = "body"         // the body matched fail_if_body_matches_regexp, missed fail_if_body_not_matches_regexp, or was over body_size_limit
	ErrRedirect = "redirect"     // more redirects than max_redirects, or one that could not be followed
	ErrProtocol = "protocol"     // the server's answer was not HTTP (or not the required version)
)

// Prober runs HTTP probes for one probe's targets.
type Prober struct {
	cfg          Config
	tlsCfg       *tls.Config
	ranges       [][2]int
	mustMatch    []*regexp.Regexp
	mustNotMatch []*regexp.Regexp
	tracer       trace.Tracer
	logger       *slog.Logger
	net          *network.Net
	metrics      *metrics
	tls          *tlsinfo.Metrics
}

// New builds a prober; cfg was validated by the config package.
func New(cfg Config, deps probe.Deps) (*Prober, error) {
	tc, err := network.TLSConfig(cfg.TLSConfig)
	if err != nil {
		return nil, fmt.Errorf("http tls_config: %w", err)
	}
	p := &Prober{cfg: cfg, tlsCfg: tc, tracer: deps.Tracers.Tracer(ScopeName), logger: deps.Logger, net: deps.Net}
	for _, s := range cfg.ValidStatusCodes {
		lo, hi, err := parseRange(s)
		if err != nil {
			return nil, err
		}
		p.ranges = append(p.ranges, [2]int{lo, hi})
	}
	for _, re := range cfg.FailIfBodyNotMatches {
		p.mustMatch = append(p.mustMatch, regexp.MustCompile(re)) // validated
	}
	for _, re := range cfg.FailIfBodyMatches {
		p.mustNotMatch = append(p.mustNotMatch, regexp.MustCompile(re))
	}
	if p.metrics, err = newMetrics(deps.Meters.Meter(ScopeName)); err != nil {
		return nil, fmt.Errorf("cannot create http metrics: %w", err)
	}
	if p.tls, err = tlsinfo.NewMetrics(deps.Meters); err != nil {
		return nil, fmt.Errorf("cannot create tls metrics: %w", err)
	}
	return p, nil
}

// result is what one run measured.
type result struct {
	phases    map[string]time.Duration
	total     time.Duration
	status    int // 0: no response
	bytes     int64
	redirects int
	version   float64 // 1.1, 2
	tls       *tlsinfo.Facts
}

// Probe sends one request to t's URL (its host; a password in it was moved
// to the block by Config.Defaults and is put back only here).
func (p *Prober) Probe(ctx context.Context, t *probe.Target) (probe.Values, error) {
	u, err := url.Parse(t.Host)
	if err != nil {
		return nil, probe.Fail(probe.ErrInternal, fmt.Errorf("target %q: %w", t.Host, err))
	}
	if user, ok := p.cfg.credentials[t.Host]; ok {
		u.User = user
	}
	run := trace.SpanFromContext(ctx)
	run.SetAttributes(attribute.String("server.address", u.Hostname()), attribute.Int("server.port", port(u)),
		attribute.String("http.request.method", p.cfg.Method), attribute.String("url.full", t.Host))
	start := time.Now()
	r, err := p.do(ctx, u)
	r.total = time.Since(start)
	if r.status > 0 {
		run.SetAttributes(attribute.Int("http.response.status_code", r.status),
			attribute.String("network.protocol.version", protoVersion(r.version)),
			attribute.Int("http.redirects", r.redirects))
	}
	if r.tls != nil {
		run.SetAttributes(tlsinfo.KeyProtocolVersion.String(r.tls.Version))
	}
	p.metrics.remember(t, r)
	p.tls.Remember(t, r.tls)
	return r.values(), err
}

func (p *Prober) do(ctx context.Context, u *url.URL) (result, error) {
	r := result{phases: map[string]time.Duration{}}
	rec := &recorder{}
	tr := p.transport(rec)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if *p.cfg.MaxRedirects == 0 {
			return http.ErrUseLastResponse // the redirect is the response
		}
		if len(via) > *p.cfg.MaxRedirects {
			return probe.Fail(ErrRedirect, fmt.Errorf("more than %d redirects", *p.cfg.MaxRedirects))
		}
		r.redirects = len(via)
		return nil
	}}

	var body io.Reader
	if p.cfg.Body != "" {
		body = strings.NewReader(p.cfg.Body)
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, rec.trace()), p.cfg.Method, u.String(), body)
	if err != nil {
		return r, probe.Fail(probe.ErrInternal, err)
	}
	for k, v := range p.cfg.Headers {
		if strings.EqualFold(k, "host") {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "netpulse")
	}

	resp, err := client.Do(req)
	var readErr error
	if err == nil {
		r.status, r.version = resp.StatusCode, float64(resp.ProtoMajor)+float64(resp.ProtoMinor)/10
		var buf bytes.Buffer
		var w io.Writer = io.Discard
		if len(p.mustMatch)+len(p.mustNotMatch) > 0 {
			w = &buf
		}
		limit := int64(p.cfg.BodySizeLimit)
		r.bytes, readErr = io.Copy(w, io.LimitReader(resp.Body, limit+1))
		resp.Body.Close()
		if readErr == nil {
			err = p.check(resp, &buf, r.bytes, limit)
		} else {
			err = readErr
		}
	}
	hops := rec.finish()
	r.phases = durations(hops)
	p.spans(ctx, hops, u, resp)
	if resp != nil && resp.TLS != nil {
		f := tlsinfo.Verify(*resp.TLS, p.tlsCfg, resp.Request.URL.Hostname())
		r.tls = &f
		if err == nil && !f.Verified && !p.tlsCfg.InsecureSkipVerify {
			err = probe.Fail(ErrTLS, f.VerifyErr)
		}
	}
	if err != nil {
		return r, p.classify(ctx, err, hops)
	}
	return r, nil
}

// transport is a new transport for one run: new connections, so every run
// measures connect and TLS; dialled by the platform (dial).
func (p *Prober) transport(rec *recorder) *http.Transport {
	tc := p.tlsCfg.Clone()
	tc.InsecureSkipVerify = true // verified after the response (tlsinfo.Verify), to report an invalid chain's facts
	tr := &http.Transport{
		DialContext:        p.dial(rec),
		TLSClientConfig:    tc,
		DisableCompression: true, // content_length counts the bytes that came over the wire
		MaxIdleConns:       1,
	}
	if p.cfg.ProxyURL.URL != nil {
		tr.Proxy = http.ProxyURL(p.cfg.ProxyURL.URL)
	}
	tr.Protocols = new(http.Protocols)
	switch p.cfg.HTTPVersion {
	case "1.1":
		tr.Protocols.SetHTTP1(true)
	case "2":
		tr.Protocols.SetHTTP2(true)
		tr.Protocols.SetUnencryptedHTTP2(true)
	default:
		tr.Protocols.SetHTTP1(true)
		tr.Protocols.SetHTTP2(true)
	}
	return tr
}

// dial resolves with the platform (its "resolve" span, ip_version's
// families) and connects with its dialer (source), timing both for the
// current request. httptrace's DNS and connect hooks are not used: the
// platform's resolver may dial its DNS server with the same context, and
// those dials would read as the request's connect.
func (p *Prober) dial(rec *recorder) func(ctx context.Context, network, addr string) (net.Conn, error) {
	dialer := p.net.Dialer(p.cfg.Settings)
	return func(ctx context.Context, nw, addr string) (net.Conn, error) {
		host, portStr, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		rec.at(func(h *hop, t time.Time) { h.dnsStart = t })
		addrs, err := p.net.Resolve(ctx, host, p.cfg.Settings)
		rec.at(func(h *hop, t time.Time) { h.dnsDone, h.dnsErr = t, err })
		if err != nil {
			return nil, err
		}
		rec.at(func(h *hop, t time.Time) { h.connectStart = t })
		var c net.Conn
		for _, a := range network.Fallbacks(addrs) {
			if c, err = dialer.DialContext(ctx, nw, net.JoinHostPort(a.String(), portStr)); err == nil ||
				ctx.Err() != nil || network.Classify(err) != network.ErrNetwork {
				break
			}
		}
		rec.at(func(h *hop, t time.Time) { h.connectDone, h.connectErr = t, err })
		return c, err
	}
}

// check applies the status and body rules to the final response.
func (p *Prober) check(resp *http.Response, body *bytes.Buffer, n, limit int64) error {
	ok := false
	for _, rg := range p.ranges {
		if resp.StatusCode >= rg[0] && resp.StatusCode <= rg[1] {
			ok = true
		}
	}
	if !ok {
		return probe.Fail(ErrStatus, fmt.Errorf("status %d is not one of %s", resp.StatusCode,
			strings.Join(p.cfg.ValidStatusCodes, ", ")))
	}
	if n > limit {
		return probe.Fail(ErrBody, fmt.Errorf("body is larger than body_size_limit (%d bytes)", limit))
	}
	for _, re := range p.mustMatch {
		if !re.Match(body.Bytes()) {
			return probe.Fail(ErrBody, fmt.Errorf("body does not match %q", re))
		}
	}
	for _, re := range p.mustNotMatch {
		if re.Match(body.Bytes()) {
			return probe.Fail(ErrBody, fmt.Errorf("body matches %q", re))
		}
	}
	return nil
}

// classify gives a failed request its error type: a typed error keeps its
// own; a failed handshake is tls; anything else as the network package
// classifies it. url.Error's text (which repeats the URL) is dropped.
func (p *Prober) classify(ctx context.Context, err error, hops []*hop) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	if _, ok := errors.AsType[*network.Error](err); ok {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s %w", p.cfg.Method, err)
	}
	if n := len(hops); n > 0 && hops[n-1].tlsErr != nil {
		return probe.Fail(ErrTLS, fmt.Errorf("TLS handshake: %w", hops[n-1].tlsErr))
	}
	typ := network.Classify(err)
	if typ == probe.ErrInternal && isProtocolError(err) {
		typ = ErrProtocol
	}
	return probe.Fail(typ, fmt.Errorf("%s: %w", p.cfg.Method, err))
}

// isProtocolError recognises an answer that is not HTTP (a server of
// another protocol on the port, or HTTP/1 where only HTTP/2 was allowed).
func isProtocolError(err error) bool {
	s := err.Error()
	return strings.Contains(s, "malformed HTTP") || strings.Contains(s, "http2:") ||
		strings.Contains(s, "server gave HTTP response to HTTPS client") || errors.Is(err, io.EOF)
}

// spans makes a span per request (the first, then one per redirect) with
// its phases as children, from the recorded times.
func (p *Prober) spans(ctx context.Context, hops []*hop, u *url.URL, final *http.Response) {
	for i, h := range hops {
		attrs := []attribute.KeyValue{attribute.String("http.request.method", p.cfg.Method),
			attribute.Bool("http.connection.reused", h.reused), attribute.Int("http.request.resend_count", i)}
		if i == 0 {
			attrs = append(attrs, attribute.String("server.address", u.Hostname()), attribute.Int("server.port", port(u)))
		}
		for k, v := range p.cfg.Headers {
			if SecretHeader(k) {
				v = "<redacted>"
			}
			attrs = append(attrs, attribute.StringSlice("http.request.header."+strings.ToLower(k), []string{v}))
		}
		if i == len(hops)-1 && final != nil {
			attrs = append(attrs, attribute.Int("http.response.status_code", final.StatusCode),
				attribute.String("network.protocol.version", protoVersion(float64(final.ProtoMajor)+float64(final.ProtoMinor)/10)))
		}
		rctx, rs := p.tracer.Start(ctx, p.cfg.Method, trace.WithTimestamp(h.start), trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attrs...))
		for _, ph := range h.phaseSpans() {
			if ph.phase == PhaseResolve {
				continue // the platform's Resolve made its span
			}
			_, s := p.tracer.Start(rctx, ph.phase, trace.WithTimestamp(ph.start))
			end := ph.end
			if end.IsZero() {
				end = h.end
				s.SetStatus(codes.Error, "did not finish")
			}
			if ph.err != nil {
				s.RecordError(ph.err)
				s.SetStatus(codes.Error, network.Classify(ph.err))
			}
			if ph.phase == PhaseTLS && h.tlsState != nil {
				s.SetAttributes(tlsinfo.KeyProtocolVersion.String(tlsinfo.Version(h.tlsState.Version)),
					tlsinfo.KeyCipher.String(tls.CipherSuiteName(h.tlsState.CipherSuite)))
			}
			s.End(trace.WithTimestamp(end))
		}
		rs.End(trace.WithTimestamp(h.end))
	}
}

func (r result) values() probe.Values {
	v := probe.Values{}
	for phase, d := range r.phases {
		v[phase+"_seconds"] = d.Seconds()
	}
	if r.status > 0 {
		v["duration_seconds"] = r.total.Seconds()
		v["status_code"] = float64(r.status)
		v["content_length_bytes"] = float64(r.bytes)
		v["redirects_followed"] = float64(r.redirects)
		v["http_version"] = r.version
	}
	if r.tls != nil {
		r.tls.Values(v)
	}
	return v
}

func port(u *url.URL) int {
	if p, err := strconv.Atoi(u.Port()); err == nil {
		return p
	}
	if u.Scheme == "https" {
		return 443
	}
	return 80
}

// protoVersion writes 1.1 and 2 as the semantic conventions do.
func protoVersion(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64)
}
