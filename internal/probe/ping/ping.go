// Package ping is the ICMP echo probe. Each run resolves the target (names
// move), sends a burst of echo requests with pro-bing and records every
// reply's round-trip time plus the burst's loss, jitter and RTT statistics.
package ping

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	probing "github.com/prometheus-community/pro-bing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/icmp"
	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe"
)

// ScopeName names this package's meter and tracer.
const ScopeName = "github.com/netpulse/netpulse/internal/probe/ping"

// finishMargin ends a burst's wait for replies this long before the run's
// deadline (at most a quarter of the time left), so a lossy run is reported
// as packet loss, not as a timeout. It must cover pro-bing's stop latency:
// after its Timeout its receive loop only notices the stop between reads,
// whose deadline backs off to 50µs×2¹¹ ≈ 102 ms, so with a smaller margin a
// silent target's runs overshot the deadline and counted as timeouts.
const finishMargin = 150 * time.Millisecond

// Prober runs ICMP echo bursts for one probe's targets.
type Prober struct {
	cfg     Config
	tracer  trace.Tracer
	logger  *slog.Logger
	metrics *metrics
	mode    socketMode
	net     *network.Net
	// engine leads to the shared ICMP engine; nil: a pro-bing pinger per
	// run. The engine is opened by a run, so an OS that refuses every ICMP
	// socket fails runs with error_type="permission" and the fix, as
	// pro-bing did, rather than the agent's start.
	engine *icmp.Handle
	// trouble takes path snapshots on trouble; nil without path_on_trouble.
	trouble *troubleWatch
	// families records ip_version: both targets' figures per family.
	families familyTargets
	// evidence keeps a run's echoes with it (probe.Deps.Evidence); nil: not kept.
	evidence func(ctx context.Context, kind string, v any)
	// silence tells a down target's repeated silent runs apart (keepEchoes).
	silence silentTargets
}

// New creates the probe's instruments; cfg was validated by the config package.
// Target names are resolved on every run.
func New(cfg Config, deps probe.Deps) (*Prober, error) {
	m, err := newMetrics(deps.Meters.Meter(ScopeName))
	if err != nil {
		return nil, fmt.Errorf("cannot create ping metrics: %w", err)
	}
	p := &Prober{cfg: cfg, tracer: deps.Tracers.Tracer(ScopeName), logger: deps.Logger, metrics: m, net: deps.Net,
		evidence: deps.Evidence}
	if cfg.Engine != EngineProBing {
		p.engine = icmp.NewHandle(deps.Sharer(), icmp.ModeOf(cfg.Privileged), deps.Logger)
	}
	if cfg.PathOnTrouble != nil {
		if p.trouble, err = newTroubleWatch(cfg, p.tracer, deps.Meters.Meter(ScopeName), p.engine, deps); err != nil {
			return nil, fmt.Errorf("cannot create ping metrics: %w", err)
		}
	}
	return p, nil
}

// Close closes an engine the prober opened for itself (an agent's is shared
// and closed by the agent).
func (p *Prober) Close() error {
	if p.trouble != nil {
		if err := p.trouble.Close(); err != nil {
			return err
		}
	}
	if p.engine != nil {
		return p.engine.Close()
	}
	return nil
}

// waitDeadline is when a run stops waiting for replies: finishMargin before
// the run's deadline (at most a quarter of the time left), so that a lossy
// run is reported as loss, not as a timeout.
func (p *Prober) waitDeadline(ctx context.Context) time.Time {
	deadline, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(time.Hour)
	}
	return time.Now().Add(replyWindow(time.Until(deadline)))
}

// replyWindow is how long a run with timeout left sends echoes and waits
// for replies: all of it but finishMargin (at most a quarter). A burst must
// fit in it, or its last echoes are never sent.
func replyWindow(left time.Duration) time.Duration { return left - min(finishMargin, left/4) }

// Probe resolves t and runs one burst against its first address; when
// nothing could be sent there and ip_version is auto, against its first
// address of the other family.
func (p *Prober) Probe(ctx context.Context, t *probe.Target) (probe.Values, error) {
	if p.cfg.IPVersion == IPBoth {
		return p.probeBoth(ctx, t)
	}
	addrs, err := p.net.Resolve(ctx, t.Host, p.cfg.Settings)
	var (
		s   summary
		dst netip.Addr
	)
	for i, addr := range network.Fallbacks(addrs) {
		if i > 0 {
			p.logger.DebugContext(ctx, "ping falls back to the other address family", "target", t.Name,
				"address", addr, "error", err)
		}
		dst = addr
		s, err = p.burst(ctx, t, addr)
		if s.sent > 0 || ctx.Err() != nil || probe.ErrorType(ctx, err) != probe.ErrNetwork {
			break
		}
	}
	if p.trouble != nil && s.sent > 0 {
		if src, serr := p.cfg.SourceAddr(dst); serr == nil {
			p.trouble.check(ctx, t, dst, src, s)
		}
	}
	p.keepEchoes(ctx, t, s.echoes, s.late)
	if span := trace.SpanFromContext(ctx); s.sent > 0 && span.IsRecording() {
		span.SetAttributes(attribute.Int("ping.packets.sent", s.sent),
			attribute.Int("ping.packets.received", s.received), attribute.Int("ping.packets.duplicate", s.duplicates),
			attribute.Float64("ping.loss", s.loss()))
	}
	// Counted even when nothing was sent, so every target's series exist
	// from its first run and rate() over them works.
	p.metrics.count(t, s)
	p.metrics.remember(t, s)
	return values(s), err
}

// burst sends one run's echoes to dst: through the shared engine, or a
// pro-bing pinger of its own.
func (p *Prober) burst(ctx context.Context, t *probe.Target, dst netip.Addr) (summary, error) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attribute.String("network.peer.address", dst.String()))
	}
	src, err := p.cfg.SourceAddr(dst)
	if err != nil {
		return summary{}, probe.Fail(probe.ErrNetwork, err)
	}
	if p.engine != nil {
		e, err := p.engine.Engine()
		switch {
		case err == nil:
			return p.echoShared(ctx, t, e, dst, src)
		case !errors.Is(err, icmp.ErrUnsupported) || p.cfg.Engine != EngineAuto:
			return summary{}, probe.Fail(network.Classify(err), fmt.Errorf("ping.engine %s: %w", p.cfg.Engine, err))
		}
		// auto where the engine does not run: pro-bing
	}
	return p.echoProBing(ctx, t, dst, src)
}

func (p *Prober) echoProBing(ctx context.Context, t *probe.Target, dst, src netip.Addr) (summary, error) {
	ipv4 := dst.Is4()
	addr := &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	var err error

	privileged := p.cfg.Privileged == "true"
	if p.cfg.Privileged == "auto" {
		if privileged, err = p.mode.privileged(ipv4); err != nil {
			return summary{}, err
		}
	}

	pinger := probing.New("")
	pinger.SetIPAddr(addr)
	pinger.SetPrivileged(privileged)
	pinger.SetLogger(logAdapter{ctx, p.logger})
	pinger.Count = p.cfg.Count
	pinger.Interval = p.cfg.PacketInterval
	pinger.Size = p.cfg.Size
	pinger.TTL = p.cfg.TTL
	if src.IsValid() {
		pinger.Source = src.String()
	}
	pinger.RecordRtts, pinger.RecordTTLs = false, false // kept below, bounded by count
	pinger.Timeout = max(time.Until(p.waitDeadline(ctx)), time.Millisecond)

	var (
		mu         sync.Mutex
		replies    []reply
		duplicates int
		sendErr    error
	)
	attrs := t.RecordOptions()
	echoes := newProBingEchoes(runStart(ctx, time.Now()), p.cfg.Count)
	pinger.OnSend = func(pkt *probing.Packet) { echoes.sent(pkt.Seq) }
	pinger.OnRecv = func(pkt *probing.Packet) {
		p.metrics.rtt.Record(ctx, pkt.Rtt.Seconds(), attrs...)
		echoes.replied(pkt.Seq, pkt.Rtt, pkt.TTL)
		mu.Lock()
		replies = append(replies, reply{seq: pkt.Seq, rtt: pkt.Rtt})
		mu.Unlock()
	}
	pinger.OnDuplicateRecv = func(pkt *probing.Packet) {
		echoes.duplicate(pkt.Seq)
		mu.Lock()
		duplicates++
		mu.Unlock()
	}
	pinger.OnSendError = func(pkt *probing.Packet, err error) {
		echoes.sendFailed(pkt.Seq, err)
		mu.Lock()
		if sendErr == nil {
			sendErr = err
		}
		mu.Unlock()
	}

	_, echoSpan := p.tracer.Start(ctx, "echo", trace.WithAttributes(attribute.String("ping.engine", "pro-bing"),
		attribute.Bool("ping.privileged", privileged), attribute.Int("ping.count", p.cfg.Count)))
	runErr := pinger.RunWithContext(ctx)
	stats := pinger.Statistics()
	mu.Lock()
	s := summarize(stats.PacketsSent, replies, duplicates)
	s.echoes = echoes.records()
	firstSendErr := sendErr
	mu.Unlock()
	for i := range s.echoes {
		recordEvent(echoSpan, &s.echoes[i])
	}
	echoSpan.SetAttributes(attribute.Int("ping.packets.sent", s.sent), attribute.Int("ping.packets.received", s.received))
	echoSpan.End()

	switch {
	case runErr != nil && !errors.Is(runErr, context.DeadlineExceeded) && !errors.Is(runErr, context.Canceled):
		return s, probe.Fail(network.Classify(runErr), fmt.Errorf("ping %s: %w", addr, runErr))
	case s.received > 0:
		return s, nil
	case s.sent == 0 && firstSendErr != nil:
		return s, probe.Fail(network.Classify(firstSendErr), fmt.Errorf("ping %s: no packet could be sent: %w", addr, firstSendErr))
	case runErr != nil:
		return s, runErr
	default:
		return s, probe.Fail(probe.ErrNoReply, fmt.Errorf("ping %s: no reply to %d packets", addr, s.sent))
	}
}

func values(s summary) probe.Values {
	// Sized for the values set: no growth on the hot path, and a run
	// without replies (a target down) gets a small map, a quarter the size.
	n := 3
	if s.sent > 0 {
		n++
	}
	if s.received > 0 {
		n += 6 + len(quantileNames)
	}
	v := make(probe.Values, n)
	v["packets_sent"], v["packets_received"] = float64(s.sent), float64(s.received)
	v["packets_duplicate"] = float64(s.duplicates)
	if s.sent > 0 {
		v["loss_ratio"] = s.loss() // a run that sent nothing measured no loss
	}
	if s.received > 0 {
		v["rtt_min_seconds"] = s.min.Seconds()
		v["rtt_avg_seconds"] = s.avg.Seconds()
		v["rtt_max_seconds"] = s.max.Seconds()
		v["rtt_stddev_seconds"] = s.stddev.Seconds()
		v["jitter_seconds"] = s.jitter.Seconds()
		for i, name := range quantileNames {
			v[name] = s.quantiles[i].Seconds()
		}
	}
	return v
}

// logAdapter routes pro-bing's log lines to slog at debug level, with the
// run's context so they carry its trace id and reach its debug view. (Its
// "Fatalf" calls are not fatal; send errors reach us through OnSendError.)
type logAdapter struct {
	ctx context.Context
	l   *slog.Logger
}

func (a logAdapter) log(f string, v ...any) {
	a.l.DebugContext(a.ctx, "pro-bing: "+fmt.Sprintf(f, v...))
}
func (a logAdapter) Fatalf(f string, v ...any) { a.log(f, v...) }
func (a logAdapter) Errorf(f string, v ...any) { a.log(f, v...) }
func (a logAdapter) Warnf(f string, v ...any)  { a.log(f, v...) }
func (a logAdapter) Infof(f string, v ...any)  { a.log(f, v...) }
func (a logAdapter) Debugf(f string, v ...any) { a.log(f, v...) }
