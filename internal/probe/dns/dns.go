// Package dns is the DNS probe. Each run sends one question (name and
// type) to the target, a DNS server, over UDP, TCP or TLS with miekg/dns
// on a connection the platform dialed (ip_version, source), and checks the
// answer's response code, answer section and authoritative flag. A
// truncated UDP answer is asked again over TCP, as a stub resolver would.
package dns

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	miekg "github.com/miekg/dns"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe"
)

// ScopeName names this package's meter and tracer.
const ScopeName = "github.com/netpulse/netpulse/internal/probe/dns"

// Error types of DNS failures, beside the network ones (network.Classify):
// part of the bounded error.type vocabulary.
const (
	ErrRcode            = "rcode"             // the answer's response code is not one of valid_rcodes
	ErrAnswer           = "answer"            // the answer section failed a check (count, must_match, must_not_match)
	ErrNotAuthoritative = "not_authoritative" // authoritative is required and the AA flag is not set
	ErrTruncated        = "truncated"         // the answer was truncated over TCP or TLS, or its TCP retry was
	ErrProtocol         = "protocol"          // something answered, but not a DNS answer to the question
	ErrTLS              = "tls"               // the TLS handshake failed: certificate, name, version
)

// finishMargin ends the wait for an answer this long before the run's
// deadline (at most a quarter of the time left), so a silent server is
// no_reply, not a timeout of the whole run.
const finishMargin = 100 * time.Millisecond

// ednsSize is the UDP payload size advertised with EDNS(0): the DNS flag
// day 2020 value, which avoids IP fragmentation.
const ednsSize = 1232

// resolvConf lists the system's DNS servers.
const resolvConf = "/etc/resolv.conf"

// Prober asks one probe's question of its targets.
type Prober struct {
	cfg     Config
	qtype   uint16
	valid   []int
	must    []*regexp.Regexp
	mustNot []*regexp.Regexp
	tracer  trace.Tracer
	logger  *slog.Logger
	metrics *metrics
	net     *network.Net
	// systemServers lists the servers of the "system" target and the time
	// to wait for each; read on every run (the file changes with the
	// network). Tests replace it.
	systemServers func() ([]string, time.Duration, error)
}

// New compiles cfg's checks and creates the probe's instruments; cfg was
// validated by the config package.
func New(cfg Config, deps probe.Deps) (*Prober, error) {
	p := &Prober{cfg: cfg, tracer: deps.Tracers.Tracer(ScopeName), logger: deps.Logger, net: deps.Net,
		qtype: miekg.StringToType[strings.ToUpper(cfg.QueryType)]}
	p.systemServers = func() ([]string, time.Duration, error) { return systemServers(resolvConf, cfg.Transport) }
	for _, s := range cfg.ValidRcodes {
		rc, ok := rcode(s)
		if !ok {
			return nil, fmt.Errorf("valid_rcodes: %q is not a DNS response code", s)
		}
		p.valid = append(p.valid, rc)
	}
	var err error
	if p.must, err = compile(cfg.Answers.MustMatch); err != nil {
		return nil, err
	}
	if p.mustNot, err = compile(cfg.Answers.MustNotMatch); err != nil {
		return nil, err
	}
	if p.metrics, err = newMetrics(deps.Meters.Meter(ScopeName)); err != nil {
		return nil, fmt.Errorf("cannot create dns metrics: %w", err)
	}
	return p, nil
}

func compile(exprs []string) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	for _, e := range exprs {
		re, err := regexp.Compile(e)
		if err != nil {
			return nil, err
		}
		out = append(out, re)
	}
	return out, nil
}

// result is what asking one server gave.
type result struct {
	msg       *miekg.Msg
	server    string
	lookup    time.Duration
	truncated bool // the UDP answer was truncated and asked again over TCP
}

// Probe asks the question of t's server; for "system", of each server of
// resolv.conf in turn until one answers (any response code is an answer).
func (p *Prober) Probe(ctx context.Context, t *probe.Target) (probe.Values, error) {
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(attribute.String("dns.question.name", miekg.Fqdn(p.cfg.QueryName)),
		attribute.String("dns.question.type", strings.ToUpper(p.cfg.QueryType)),
		attribute.String("network.transport", p.cfg.Transport))
	servers, perServer, err := p.servers(t.Host)
	if err != nil {
		p.metrics.record(ctx, t, nil, answer{}, false)
		return nil, err
	}
	var res result
	tried := 0
	for i, server := range servers {
		if tried = i + 1; i > 0 {
			span.AddEvent("next server", trace.WithAttributes(attribute.String("dns.server", server),
				attribute.String("error.type", network.Classify(err))))
			p.logger.DebugContext(ctx, "dns server did not answer; asking the next one", "server", servers[i-1],
				"next", server, "error", err)
		}
		res, err = p.ask(ctx, server, perServer)
		if res.msg != nil || ctx.Err() != nil {
			break
		}
	}
	v := probe.Values{"servers_tried": float64(tried)}
	if res.msg == nil {
		p.metrics.record(ctx, t, nil, answer{}, res.truncated)
		return v, err
	}
	r := res.msg
	a := answer{lookup: res.lookup.Seconds(), rcode: r.Rcode, answers: len(r.Answer)}
	p.metrics.record(ctx, t, r, a, res.truncated)
	v["lookup_seconds"] = a.lookup
	v["response_code"] = float64(r.Rcode)
	v["answer_records"] = float64(a.answers)
	v["truncated_responses"] = 0
	if res.truncated {
		v["truncated_responses"] = 1
	}
	span.SetAttributes(attribute.String("dns.server", res.server), attribute.String("dns.rcode", rcodeName(r.Rcode)),
		attribute.Int("dns.answers", a.answers), attribute.Bool("dns.authoritative", r.Authoritative),
		attribute.Bool("dns.tcp_fallback", res.truncated))
	p.logger.DebugContext(ctx, "dns answer", "server", res.server, "rcode", rcodeName(r.Rcode),
		"answers", a.answers, "authoritative", r.Authoritative, "tcp_fallback", res.truncated,
		"lookup", res.lookup)
	if err != nil {
		return v, err // truncated over TCP: the answer is counted, the run fails
	}
	return v, p.check(r)
}

// servers lists the host:port addresses to ask and how long to wait for
// each (0: until the run's deadline).
func (p *Prober) servers(host string) ([]string, time.Duration, error) {
	if host != System {
		addr, err := ServerAddr(host, p.cfg.Transport)
		if err != nil {
			return nil, 0, probe.Fail(probe.ErrInternal, err) // validated: a bug
		}
		return []string{addr}, 0, nil
	}
	return p.systemServers()
}

// systemServers reads the name servers of a resolv.conf file: addresses
// on the port of the transport, and its per-server timeout.
func systemServers(path, transport string) ([]string, time.Duration, error) {
	cc, err := miekg.ClientConfigFromFile(path)
	if err != nil {
		return nil, 0, probe.Fail(probe.ErrResolve, fmt.Errorf("system resolvers: %w", err))
	}
	if len(cc.Servers) == 0 {
		return nil, 0, probe.Fail(probe.ErrResolve, fmt.Errorf("system resolvers: no nameserver in %s", path))
	}
	port := cc.Port
	if transport == TransportTLS {
		port = "853"
	}
	out := make([]string, len(cc.Servers))
	for i, s := range cc.Servers {
		out[i] = net.JoinHostPort(s, port)
	}
	return out, time.Duration(cc.Timeout) * time.Second, nil
}

// ask resolves server's host (a "resolve" span, as every probe's run
// has), sends the question to its address over the configured transport,
// and again over TCP if a UDP answer comes back truncated. The lookup time
// is the time of the exchanges, each from its dial to its answer: what a
// client waits once it knows the server's address (blackbox's connect and
// request phases), without netpulse's own bookkeeping between them.
func (p *Prober) ask(ctx context.Context, server string, wait time.Duration) (result, error) {
	deadline := p.deadline(ctx, wait)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	res := result{server: server}
	host, port, _ := net.SplitHostPort(server)
	addrs, err := p.net.Resolve(ctx, host, p.cfg.Settings)
	if err != nil {
		return res, err
	}
	var r *miekg.Msg
	var peer string
	var took time.Duration
	for _, a := range network.Fallbacks(addrs) {
		// The other family only when this one cannot send (ip_version auto).
		peer = net.JoinHostPort(a.String(), port)
		r, took, err = p.exchange(ctx, server, peer, p.cfg.Transport)
		res.lookup += took
		if err == nil || ctx.Err() != nil || network.Classify(err) != network.ErrNetwork {
			break
		}
	}
	if err == nil && r.Truncated && p.cfg.Transport == TransportUDP {
		res.truncated = true
		p.logger.DebugContext(ctx, "truncated UDP answer: asking again over TCP", "server", server)
		r, took, err = p.exchange(ctx, server, peer, TransportTCP)
		res.lookup += took
	}
	if err != nil {
		return res, err
	}
	res.msg = r
	if r.Truncated {
		return res, probe.Fail(ErrTruncated, fmt.Errorf("%s sent a truncated answer over tcp or tls", server))
	}
	return res, nil
}

// deadline is when asking one server stops waiting: finishMargin before
// the run's deadline, or after wait if that is sooner.
func (p *Prober) deadline(ctx context.Context, wait time.Duration) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Now().Add(time.Minute)
	}
	d = d.Add(-min(finishMargin, time.Until(d)/4))
	if wait > 0 && time.Now().Add(wait).Before(d) {
		d = time.Now().Add(wait)
	}
	return d
}

// exchange asks the question of server once, at address peer, over
// transport, in a "query" span, and returns the answer and the time from
// the dial to the answer (or the failure).
func (p *Prober) exchange(ctx context.Context, server, peer, transport string) (r *miekg.Msg, took time.Duration, err error) {
	host, port, _ := net.SplitHostPort(server)
	portN, _ := strconv.Atoi(port)
	netw := "tcp"
	if transport == TransportUDP {
		netw = "udp"
	}
	ctx, span := p.tracer.Start(ctx, "query", trace.WithAttributes(attribute.String("server.address", host),
		attribute.Int("server.port", portN), attribute.String("network.transport", netw),
		attribute.String("dns.transport", transport)))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, network.Classify(err))
		} else {
			span.SetAttributes(attribute.String("dns.rcode", rcodeName(r.Rcode)), attribute.Int("dns.answers", len(r.Answer)),
				attribute.Bool("dns.truncated", r.Truncated), attribute.Bool("dns.authoritative", r.Authoritative))
		}
		span.End()
	}()

	// Everything that is not the exchange itself is ready before the dial.
	q := new(miekg.Msg)
	q.SetQuestion(miekg.Fqdn(p.cfg.QueryName), p.qtype)
	q.RecursionDesired = *p.cfg.RecursionDesired
	q.SetEdns0(ednsSize, false)
	var tc *tls.Config
	if transport == TransportTLS {
		if tc, err = network.TLSConfig(p.cfg.TLS); err != nil {
			return nil, 0, probe.Fail(ErrTLS, fmt.Errorf("tls_config: %w", err))
		}
		if tc.ServerName == "" {
			tc.ServerName = host
		}
	}
	d, _ := ctx.Deadline()
	c := &miekg.Client{Net: netw, Timeout: time.Until(d)}
	dialer := p.net.Dialer(p.cfg.Settings)

	start := time.Now()
	conn, err := dialer.DialContext(ctx, netw, peer)
	if err != nil {
		return nil, time.Since(start), p.fail(ctx, server, transport, err)
	}
	defer conn.Close()
	if tc != nil {
		tlsConn := tls.Client(conn, tc)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			took = time.Since(start)
			if _, isNet := errors.AsType[*net.OpError](err); !isNet && !isTimeout(err) && ctx.Err() == nil {
				// Not the connection: the certificate, the name, the version.
				return nil, took, probe.Fail(ErrTLS, fmt.Errorf("%s over tls: %w", server, err))
			}
			return nil, took, p.fail(ctx, server, transport, err)
		}
		conn = tlsConn
	}
	r, _, err = c.ExchangeWithConnContext(ctx, q, &miekg.Conn{Conn: conn})
	took = time.Since(start)

	span.SetAttributes(attribute.String("network.peer.address", conn.RemoteAddr().String()))
	if tlsConn, ok := conn.(*tls.Conn); ok {
		st := tlsConn.ConnectionState()
		span.SetAttributes(attribute.String("tls.protocol.version", strings.TrimPrefix(tls.VersionName(st.Version), "TLS ")),
			attribute.String("tls.cipher", tls.CipherSuiteName(st.CipherSuite)))
	}
	if err != nil {
		return nil, took, p.fail(ctx, server, transport, err)
	}
	return r, took, nil
}

// fail classifies a failed exchange. Waiting for the server until the
// attempt's deadline is no_reply (the run itself has not timed out); the
// error is reworded so its chain no longer says "deadline exceeded",
// which the harness would count as the run's timeout.
func (p *Prober) fail(ctx context.Context, server, transport string, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return err // the agent is stopping: the harness says so
	}
	if ctx.Err() != nil || isTimeout(err) {
		return probe.Fail(probe.ErrNoReply, fmt.Errorf("no answer from %s over %s in time", server, transport))
	}
	return probe.Fail(classify(err), fmt.Errorf("%s over %s: %w", server, transport, err))
}

func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return (ok && ne.Timeout()) || errors.Is(err, context.DeadlineExceeded)
}

// classify maps an exchange error to an error type: a reply that is not
// a DNS message here, the rest by the platform's one classification.
func classify(err error) string {
	if errors.As(err, new(*miekg.Error)) || errors.Is(err, io.EOF) {
		return ErrProtocol
	}
	return network.Classify(err)
}
