// Package tcp is the TCP probe: each run resolves the target's host,
// connects to its port, optionally completes a TLS handshake (with the
// certificate's facts) and optionally runs a send/expect exchange, such as
// reading an SMTP or SSH banner. Each phase is a child span of the run.
package tcp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probe/tlsinfo"
)

// ScopeName names this package's meter and tracer.
const ScopeName = "github.com/netpulse/netpulse/internal/probe/tcp"

// Error types of this probe beyond the network ones.
const (
	ErrTLS    = tlsinfo.ErrTLS // the handshake failed, or the chain did not verify
	ErrExpect = "expect"       // the connection ended before a line matched an expect
)

// Phases of a run (the phase label of netpulse.tcp.duration).
const (
	PhaseResolve  = "resolve"
	PhaseConnect  = "connect"
	PhaseTLS      = "tls"
	PhaseExchange = "exchange"
)

// maxLine bounds a line read while waiting for an expect.
const maxLine = 64 << 10

// Prober runs TCP probes for one probe's targets.
type Prober struct {
	cfg     Config
	tlsCfg  *tls.Config
	expects []*regexp.Regexp
	tracer  trace.Tracer
	logger  *slog.Logger
	net     *network.Net
	metrics *metrics
	tls     *tlsinfo.Metrics
}

// New builds a prober; cfg was validated by the config package.
func New(cfg Config, deps probe.Deps) (*Prober, error) {
	p := &Prober{cfg: cfg, tracer: deps.Tracers.Tracer(ScopeName), logger: deps.Logger, net: deps.Net}
	if cfg.TLS {
		c, err := network.TLSConfig(cfg.TLSConfig)
		if err != nil {
			return nil, fmt.Errorf("tcp tls_config: %w", err)
		}
		p.tlsCfg = c
	}
	for _, s := range cfg.QueryResponse {
		p.expects = append(p.expects, regexp.MustCompile(s.Expect)) // validated
	}
	var err error
	if p.metrics, err = newMetrics(deps.Meters.Meter(ScopeName)); err != nil {
		return nil, fmt.Errorf("cannot create tcp metrics: %w", err)
	}
	if p.tls, err = tlsinfo.NewMetrics(deps.Meters); err != nil {
		return nil, fmt.Errorf("cannot create tls metrics: %w", err)
	}
	return p, nil
}

// result is what one run measured: the duration of each phase it
// completed, and the handshake's facts.
type result struct {
	phases map[string]time.Duration
	total  time.Duration
	tls    *tlsinfo.Facts
}

// Probe runs one connection to t (host:port).
func (p *Prober) Probe(ctx context.Context, t *probe.Target) (probe.Values, error) {
	host, portStr, err := net.SplitHostPort(t.Host)
	if err != nil {
		return nil, probe.Fail(probe.ErrInternal, fmt.Errorf("target %q: %w", t.Host, err))
	}
	port, _ := strconv.Atoi(portStr)
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("server.address", host), attribute.Int("server.port", port))
	r := result{phases: map[string]time.Duration{}}
	start := time.Now()
	err = p.run(ctx, host, uint16(port), &r)
	r.total = time.Since(start)
	p.metrics.remember(t, r)
	p.tls.Remember(t, r.tls)
	return r.values(), err
}

func (p *Prober) run(ctx context.Context, host string, port uint16, r *result) error {
	t0 := time.Now()
	addrs, err := p.net.Resolve(ctx, host, p.cfg.Settings)
	if err != nil {
		return err
	}
	r.phases[PhaseResolve] = time.Since(t0)

	conn, err := p.connect(ctx, addrs, port, r)
	if err != nil {
		return err
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	if p.tlsCfg != nil {
		if conn, err = p.handshake(ctx, conn, host, r); err != nil {
			return err
		}
	}
	if len(p.cfg.QueryResponse) > 0 {
		return p.exchange(ctx, conn, r)
	}
	return nil
}

// connect dials the first address; when that fails locally (no route,
// no source address of that family) and ip_version is auto, the first
// address of the other family.
func (p *Prober) connect(ctx context.Context, addrs []netip.Addr, port uint16, r *result) (net.Conn, error) {
	dialer := p.net.Dialer(p.cfg.Settings)
	var err error
	for i, a := range network.Fallbacks(addrs) {
		if i > 0 {
			p.logger.DebugContext(ctx, "tcp falls back to the other address family", "address", a, "error", err)
		}
		dst := netip.AddrPortFrom(a, port)
		sctx, span := p.tracer.Start(ctx, "connect", trace.WithAttributes(
			attribute.String("network.peer.address", a.String()), attribute.Int("network.peer.port", int(port)),
			attribute.String("network.transport", "tcp")))
		t0 := time.Now()
		var c net.Conn
		c, err = dialer.DialContext(sctx, "tcp", dst.String())
		if err == nil {
			r.phases[PhaseConnect] = time.Since(t0)
			trace.SpanFromContext(ctx).SetAttributes(attribute.String("network.peer.address", a.String()))
			span.End()
			return c, nil
		}
		err = probe.Fail(network.Classify(err), fmt.Errorf("connect %s: %w", dst, err))
		failSpan(span, err)
		span.End()
		if ctx.Err() != nil || network.Classify(err) != network.ErrNetwork {
			break
		}
	}
	return nil, err
}

func (p *Prober) handshake(ctx context.Context, conn net.Conn, host string, r *result) (net.Conn, error) {
	ctx, span := p.tracer.Start(ctx, "tls")
	defer span.End()
	t0 := time.Now()
	tc, facts, err := tlsinfo.Handshake(ctx, conn, p.tlsCfg, host)
	if tc != nil { // the handshake completed (even if the chain did not verify)
		r.phases[PhaseTLS] = time.Since(t0)
		r.tls = &facts
		span.SetAttributes(facts.Attributes()...)
		trace.SpanFromContext(ctx).SetAttributes(tlsinfo.KeyProtocolVersion.String(facts.Version))
	}
	if err != nil {
		failSpan(span, err)
		return nil, err
	}
	return tc, nil
}

// exchange runs query_response: each step reads lines until one matches
// its expect, then sends its send with a newline.
func (p *Prober) exchange(ctx context.Context, conn net.Conn, r *result) error {
	ctx, span := p.tracer.Start(ctx, "exchange", trace.WithAttributes(attribute.Int("tcp.steps", len(p.cfg.QueryResponse))))
	defer span.End()
	t0 := time.Now()
	lines := bufio.NewScanner(conn)
	lines.Buffer(make([]byte, 4096), maxLine)
	for i, s := range p.cfg.QueryResponse {
		if s.Expect != "" {
			line, err := expect(lines, p.expects[i])
			if err != nil {
				err = p.readError(ctx, i, s.Expect, err)
				failSpan(span, err)
				return err
			}
			span.AddEvent("matched", trace.WithAttributes(attribute.Int("tcp.step", i), attribute.String("tcp.line", clip(line))))
		}
		if s.Send != "" {
			if _, err := io.WriteString(conn, s.Send+"\n"); err != nil {
				err = probe.Fail(network.Classify(err), fmt.Errorf("query_response[%d]: send: %w", i, err))
				failSpan(span, err)
				return err
			}
		}
	}
	r.phases[PhaseExchange] = time.Since(t0)
	return nil
}

// expect reads lines until one matches re; io.EOF when the connection ends first.
func expect(lines *bufio.Scanner, re *regexp.Regexp) (string, error) {
	for lines.Scan() {
		if line := lines.Text(); re.MatchString(line) {
			return line, nil
		}
	}
	if err := lines.Err(); err != nil {
		return "", err
	}
	return "", io.EOF
}

// readError classifies a failed expect: the connection ended or a line
// was too long (expect), the run's deadline passed (timeout), or a
// network error.
func (p *Prober) readError(ctx context.Context, step int, re string, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("query_response[%d]: no line matched %q before the deadline: %w", step, re, ctx.Err())
	case errors.Is(err, io.EOF), errors.Is(err, bufio.ErrTooLong):
		return probe.Fail(ErrExpect, fmt.Errorf("query_response[%d]: no line matched %q before the connection ended: %w", step, re, err))
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		// The connection's only deadline is the run's: a timeout.
		return fmt.Errorf("query_response[%d]: no line matched %q before the deadline: %w (%w)", step, re,
			context.DeadlineExceeded, err)
	}
	return probe.Fail(network.Classify(err), fmt.Errorf("query_response[%d]: %w", step, err))
}

// failSpan marks a phase's span failed, with the error's type as status.
func failSpan(span trace.Span, err error) {
	span.RecordError(err)
	span.SetStatus(codes.Error, network.Classify(err))
}

// clip shortens a server's line for a span event.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

func (r result) values() probe.Values {
	v := probe.Values{}
	for phase, d := range r.phases {
		v[phase+"_seconds"] = d.Seconds()
	}
	if _, ok := r.phases[PhaseConnect]; ok {
		v["duration_seconds"] = r.total.Seconds()
	}
	if r.tls != nil {
		r.tls.Values(v)
	}
	return v
}
