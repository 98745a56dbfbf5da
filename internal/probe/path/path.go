// Package path is the path probe (MTR-like): each run sends rounds of ICMP
// echoes with TTL 1, 2, … towards a target through the agent's shared ICMP
// engine and reports, per hop, who answered, the loss and the round trips;
// the hop list's hash and a change counter signal route changes.
//
// Flow stability (Paris traceroute): a load balancer (ECMP) that hashes
// on addresses and protocol keeps every echo of a run on one path. The
// engine keeps the ICMP identifier constant (one socket), but the sequence
// number and the payload's per-echo token change with every echo, and so
// does the checksum: a balancer that hashes the first bytes of the ICMP
// header as if they were ports (checksum, identifier, sequence) can put
// two echoes of one run on different paths. Such a hop shows several
// addresses (Hop.Addrs, "a|b" in the hop list), not an invented path, and
// Changed ignores answers that share an address.
package path

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/icmp"
	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe"
)

// ScopeName names this package's meter and tracer.
const ScopeName = "github.com/netpulse/netpulse/internal/probe/path"

// finishMargin: the last round must end this long before the run's deadline
// (at most a quarter of the time left), so a run is reported as a path,
// not as a timeout.
const finishMargin = 150 * time.Millisecond

// Prober traces the paths to one probe's targets.
type Prober struct {
	cfg     Config
	tracer  trace.Tracer
	logger  *slog.Logger
	metrics *metrics
	net     *network.Net
	engine  *icmp.Handle
}

// New creates the probe's instruments; cfg was validated by the config package.
func New(cfg Config, deps probe.Deps) (*Prober, error) {
	m, err := newMetrics(deps.Meters.Meter(ScopeName))
	if err != nil {
		return nil, fmt.Errorf("cannot create path metrics: %w", err)
	}
	// The agent's engine of the configured socket mode, the one ping uses.
	return &Prober{cfg: cfg, tracer: deps.Tracers.Tracer(ScopeName), logger: deps.Logger, metrics: m,
		net: deps.Net, engine: icmp.NewHandle(deps.Sharer(), icmp.ModeOf(cfg.Privileged), deps.Logger)}, nil
}

// Close closes an engine the prober opened for itself.
func (p *Prober) Close() error { return p.engine.Close() }

// Probe resolves t, traces the path to its first address and records it.
// The run fails (no_reply, or unreachable when a router said so) when the
// destination never answered; loss on the way is in the values.
func (p *Prober) Probe(ctx context.Context, t *probe.Target) (probe.Values, error) {
	addrs, err := p.net.Resolve(ctx, t.Host, p.cfg.Settings)
	if err != nil {
		return nil, err
	}
	dst := addrs[0]
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(attribute.String("network.peer.address", dst.String()))
	src, err := p.cfg.SourceAddr(dst)
	if err != nil {
		return nil, probe.Fail(probe.ErrNetwork, err)
	}
	e, err := p.engine.Engine()
	if err != nil {
		return nil, probe.Fail(network.Classify(err), fmt.Errorf("path: icmp engine: %w", err))
	}
	start := time.Now()
	byTTL, rounds, sent, err := traceRounds(ctx, p.cfg, e, dst, src)
	end := time.Now()
	if err != nil {
		return nil, probe.Fail(network.Classify(err), fmt.Errorf("path %s: %w", dst, err))
	}
	snap := analyze(dst, byTTL, rounds)
	changed := p.metrics.record(ctx, t, snap, sent)
	hopSpans(ctx, p.tracer, snap, start, end)
	span.SetAttributes(attribute.String("path.hops", snap.List()), attribute.Int("path.hop_count", len(snap.Hops)),
		attribute.Bool("path.reached", snap.Reached), attribute.Int("path.loss_from_hop", snap.LossFrom),
		attribute.Int64("path.route_hash", int64(snap.Hash())), attribute.Bool("path.route_changed", changed),
		attribute.Int("path.packets.sent", sent))
	p.logger.InfoContext(ctx, "path", "target", t.Name, "dst", dst, "hops", snap.List(), "detail", snap.String(),
		"loss_from_hop", snap.LossFrom, "route_changed", changed)
	return values(snap, sent, changed), runError(snap)
}

// runError: the destination did not answer.
func runError(s Snapshot) error {
	if s.Reached {
		return nil
	}
	last := s.Last()
	if last.Unreachable {
		return probe.Fail(probe.ErrUnreachable, fmt.Errorf("path %s: hop %d (%s) reported the destination unreachable",
			s.Dst, last.TTL, last.Addrs[0]))
	}
	answered := "no hop answered"
	for i := len(s.Hops) - 1; i >= 0; i-- {
		if h := s.Hops[i]; !h.Silent() {
			answered = fmt.Sprintf("last answer from hop %d (%s)", h.TTL, h.Addrs[0])
			break
		}
	}
	return probe.Fail(probe.ErrNoReply, fmt.Errorf("path %s: destination not reached in %d rounds; %s; loss from hop %d",
		s.Dst, s.Rounds, answered, s.LossFrom))
}

// traceRounds sends the run's rounds: in each, one echo per TTL from 1 to the
// end of the path known so far (max_hops until the destination answered
// or a router reported it unreachable), in TTL order a little apart
// (maxTTLSpacing); round r starts r × round_interval after the first. A
// round that could not finish before the run's deadline is not started. It returns the samples by TTL, the rounds completed and the
// echoes sent.
//
// Why in order: routers limit their ICMP errors per source (Linux sends an
// unreachable route's errors at most once a second after a burst of five,
// in a bucket its other ICMP errors drain), and the nearest TTL that
// meets the limit is the one that matters: a token goes to it, not to
// whichever echo came first.
func traceRounds(ctx context.Context, cfg Config, e *icmp.Engine, dst, src netip.Addr) ([][]sample, int, int, error) {
	byTTL := make([][]sample, cfg.MaxHops)
	deadline := time.Now().Add(time.Hour)
	if d, ok := ctx.Deadline(); ok {
		deadline = d.Add(-min(finishMargin, time.Until(d)/4))
	}
	start := time.Now()
	spacing := min(cfg.RoundInterval/time.Duration(2*cfg.MaxHops), maxTTLSpacing)
	var (
		mu            sync.Mutex // guards byTTL, sent, firstErr
		wg            sync.WaitGroup
		started, sent int
		firstErr      error
	)
	echo := func(r, ttl int) {
		if !sleep(ctx, time.Duration(ttl-1)*spacing) {
			return
		}
		res, err := e.Ping(ctx, icmp.Request{Dst: dst, Source: src, Count: 1, Size: cfg.Size, TTL: ttl,
			Timeout: cfg.HopTimeout})
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			firstErr = cmpOr(firstErr, err)
			return
		}
		for _, ec := range res.Echoes {
			if ec.Fate == icmp.SendFailed {
				firstErr = cmpOr(firstErr, ec.Err)
			} else if !ec.Sent.IsZero() {
				sent++
			}
			byTTL[ttl-1] = append(byTTL[ttl-1], sample{fate: ec.Fate, from: ec.From, rtt: ec.RTT, round: r})
		}
	}
	// Rounds start on their schedule, not when the previous one is
	// complete: silent hops cost one hop_timeout per run, not per round.
	for r := range cfg.Rounds {
		at := start.Add(time.Duration(r) * cfg.RoundInterval)
		if at.Add(time.Duration(cfg.MaxHops-1)*spacing).Add(cfg.HopTimeout).After(deadline) || !sleep(ctx, time.Until(at)) {
			break
		}
		mu.Lock()
		limit, failing := pathEnd(byTTL), sent == 0 && firstErr != nil
		mu.Unlock()
		if failing {
			break
		}
		started++
		for ttl := 1; ttl <= limit; ttl++ {
			wg.Go(func() { echo(r, ttl) })
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return byTTL, started, sent, err
	}
	if sent == 0 && firstErr != nil {
		return byTTL, started, sent, firstErr
	}
	return byTTL, started, sent, nil
}

// maxTTLSpacing bounds the time between the echoes of consecutive TTLs in
// a round (at most half the round interval spreads a round).
const maxTTLSpacing = 2 * time.Millisecond

// sleep waits d or until ctx ends, and tells whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// pathEnd is the first TTL the destination answered or a router reported
// it unreachable, or len(byTTL).
func pathEnd(byTTL [][]sample) int {
	for i, ss := range byTTL {
		for _, s := range ss {
			if s.fate == icmp.Replied || s.fate == icmp.Unreachable {
				return i + 1
			}
		}
	}
	return len(byTTL)
}

// hopSpans adds one span per hop under the run's span, spanning the
// rounds, with the hop's figures; the hop where loss starts has an error
// status.
func hopSpans(ctx context.Context, tracer trace.Tracer, s Snapshot, start, end time.Time) {
	for _, h := range s.Hops {
		addrs := make([]string, len(h.Addrs))
		for i, a := range h.Addrs {
			addrs[i] = a.String()
		}
		kv := []attribute.KeyValue{attribute.Int("path.hop", h.TTL), attribute.StringSlice("path.hop.addresses", addrs),
			attribute.Int("path.hop.sent", h.Sent), attribute.Int("path.hop.received", h.Received),
			attribute.Float64("path.hop.loss", h.Loss()), attribute.Bool("path.hop.rate_limited", h.RateLimited),
			attribute.Bool("path.hop.destination", h.Destination), attribute.Bool("path.hop.unreachable", h.Unreachable)}
		if h.Received > 0 {
			kv = append(kv, attribute.Float64("path.hop.rtt_min_seconds", h.RTTMin.Seconds()),
				attribute.Float64("path.hop.rtt_avg_seconds", h.RTTAvg.Seconds()),
				attribute.Float64("path.hop.rtt_max_seconds", h.RTTMax.Seconds()))
		}
		_, span := tracer.Start(ctx, fmt.Sprintf("hop %d", h.TTL), trace.WithTimestamp(start), trace.WithAttributes(kv...))
		if h.TTL == s.LossFrom {
			span.SetStatus(codes.Error, "loss starts here")
		}
		span.End(trace.WithTimestamp(end))
	}
}

func values(s Snapshot, sent int, changed bool) probe.Values {
	v := probe.Values{
		"hop_count": float64(len(s.Hops)), "loss_ratio": s.DstLoss(), "loss_from_hop": float64(s.LossFrom),
		"route_hash": float64(s.Hash()), "route_changed": 0, "rate_limited_hops": float64(s.RateLimitedHops()),
		"packets_sent": float64(sent),
	}
	if changed {
		v["route_changed"] = 1
	}
	if last := s.Last(); s.Reached && last.Received > 0 {
		v["rtt_min_seconds"] = last.RTTMin.Seconds()
		v["rtt_avg_seconds"] = last.RTTAvg.Seconds()
		v["rtt_max_seconds"] = last.RTTMax.Seconds()
		v["jitter_seconds"] = jitter(s.DstRTTs).Seconds()
	}
	return v
}

// jitter is the mean absolute difference of consecutive round trips, as
// ping reports it.
func jitter(rtts []time.Duration) time.Duration {
	if len(rtts) < 2 {
		return 0
	}
	var sum time.Duration
	for i := 1; i < len(rtts); i++ {
		sum += (rtts[i] - rtts[i-1]).Abs()
	}
	return sum / time.Duration(len(rtts)-1)
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
