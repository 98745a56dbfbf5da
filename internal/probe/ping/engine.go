package ping

import (
	"context"
	"fmt"
	"net/netip"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/icmp"
	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe"
)

// Engines of Config.Engine.
const (
	EngineAuto    = "auto"     // the shared engine where it runs (Linux), pro-bing elsewhere
	EngineShared  = "shared"   // the shared engine, or an error where it does not run
	EngineProBing = "pro-bing" // a pro-bing pinger per run, as netpulse did before the shared engine
)

// echoShared sends the run's echoes through the shared engine. Replies
// carry the kernel's receive timestamp, and an ICMP error (destination
// unreachable, time exceeded) ends the run at once as an answer of its own
// kind instead of silence until the timeout.
func (p *Prober) echoShared(ctx context.Context, t *probe.Target, engine *icmp.Engine, dst, src netip.Addr) (summary, error) {
	attrs := t.RecordOptions()
	// The echo span, its attributes and its events only where the run's
	// span is recorded: without a trace exporter (or for a run the sampler
	// left out) they would be built for nobody, per run.
	span := trace.SpanFromContext(ctx)
	recording := span.IsRecording()
	if recording {
		_, span = p.tracer.Start(ctx, "echo", trace.WithAttributes(attribute.String("ping.engine", "shared"),
			attribute.Int("ping.count", p.cfg.Count)))
		defer span.End()
	}
	// The wait ends at the request's Deadline, not with a context (and
	// timer) of its own per run.
	res, err := engine.Ping(ctx, icmp.Request{Dst: dst, Source: src, Count: p.cfg.Count,
		Interval: p.cfg.PacketInterval, Size: p.cfg.Size, TTL: p.cfg.TTL, Deadline: p.waitDeadline(ctx)})
	if recording {
		span.SetAttributes(attribute.Bool("ping.privileged", res.Privileged))
	}
	if err != nil {
		return summary{}, probe.Fail(network.Classify(err), fmt.Errorf("ping %s: %w", dst, err))
	}
	var (
		buf              [smallBurst]reply
		replies          = buf[:0] // on the stack for a small count
		sent, duplicates int
		icmpErr, sendErr *icmp.Echo
	)
	for i := range res.Echoes {
		e := &res.Echoes[i]
		if recording {
			echoEvent(span, e)
		}
		duplicates += e.Duplicates
		switch e.Fate {
		case icmp.Replied:
			replies = append(replies, reply{seq: e.Seq, rtt: e.RTT})
			// Recorded here, once the burst is over, rather than from the
			// engine's OnEcho as each reply came: the same measurements,
			// without growing the goroutine's stack (shrunk by every GC) at
			// the deepest point of a run, which cost a tenth of the agent's
			// CPU at 1,000 runs/s.
			p.metrics.rtt.Record(ctx, e.RTT.Seconds(), attrs...) // ctx: the exemplar links to the run
		case icmp.Unreachable, icmp.TTLExceeded:
			icmpErr = cmpOr(icmpErr, e)
		case icmp.SendFailed:
			sendErr = cmpOr(sendErr, e)
		}
		if !e.Sent.IsZero() && e.Fate != icmp.SendFailed {
			sent++
		}
	}
	s := summarize(sent, replies, duplicates)
	if len(res.Echoes) > 0 {
		s.echoes, s.late = echoRecords(res.Echoes, runStart(ctx, res.Echoes[0].Sent), dst.Is4()), res.Late
	}
	if recording {
		span.SetAttributes(attribute.Int("ping.packets.sent", s.sent), attribute.Int("ping.packets.received", s.received),
			attribute.Int("ping.replies.late", res.Late), attribute.Int("ping.replies.foreign", res.Foreign))
	}
	switch {
	case s.received > 0:
		return s, nil
	case icmpErr != nil:
		return s, p.icmpError(ctx, span, dst, icmpErr)
	case sent == 0 && sendErr != nil:
		return s, probe.Fail(network.Classify(sendErr.Err), fmt.Errorf("ping %s: no packet could be sent: %w", dst, sendErr.Err))
	case ctx.Err() != nil:
		return s, ctx.Err()
	}
	return s, probe.Fail(probe.ErrNoReply, fmt.Errorf("ping %s: no reply to %d packets", dst, s.sent))
}

// icmpError is the run's failure when a router answered with an ICMP
// error: its type and code and the reporting router go to the span, the log
// line (and so the debug view) and the error text; error.type stays bounded.
func (p *Prober) icmpError(ctx context.Context, span trace.Span, dst netip.Addr, e *icmp.Echo) error {
	errType, what := probe.ErrUnreachable, "destination unreachable"
	if e.Fate == icmp.TTLExceeded {
		errType, what = probe.ErrTTLExceeded, "time exceeded"
	}
	desc := icmpDescription(dst.Is4(), e.ICMPType, e.ICMPCode)
	span.SetAttributes(attribute.Int("icmp.type", e.ICMPType), attribute.Int("icmp.code", e.ICMPCode),
		attribute.String("icmp.reporter", e.From.String()))
	p.logger.InfoContext(ctx, "ICMP error answered the echo", "target", dst, "icmp.type", e.ICMPType,
		"icmp.code", e.ICMPCode, "meaning", desc, "reporter", e.From)
	return probe.Fail(errType, fmt.Errorf("ping %s: %s (%s, ICMP type %d code %d) from %s",
		dst, what, desc, e.ICMPType, e.ICMPCode, e.From))
}

// echoEvent records one echo on the run's span: per-echo evidence, bounded
// by count.
func echoEvent(span trace.Span, e *icmp.Echo) {
	kv := []attribute.KeyValue{attribute.Int("seq", e.Seq), attribute.String("fate", e.Fate.String())}
	if e.Fate == icmp.Replied {
		kv = append(kv, attribute.Float64("rtt_seconds", e.RTT.Seconds()), attribute.Int("ttl", e.TTL))
	}
	if e.Duplicates > 0 {
		kv = append(kv, attribute.Int("duplicates", e.Duplicates))
	}
	span.AddEvent("echo", trace.WithAttributes(kv...))
}

// icmpDescription names the ICMP errors an echo can meet (RFC 792, RFC 1812,
// RFC 4443).
func icmpDescription(ipv4 bool, typ, code int) string {
	names := map[[2]int]string{
		{3, 0}: "network unreachable", {3, 1}: "host unreachable", {3, 2}: "protocol unreachable",
		{3, 3}: "port unreachable", {3, 4}: "fragmentation needed", {3, 6}: "network unknown",
		{3, 7}: "host unknown", {3, 9}: "network administratively prohibited",
		{3, 10}: "host administratively prohibited", {3, 13}: "communication administratively prohibited",
		{11, 0}: "TTL exceeded in transit", {11, 1}: "fragment reassembly time exceeded",
	}
	if !ipv4 {
		names = map[[2]int]string{
			{1, 0}: "no route to destination", {1, 1}: "communication administratively prohibited",
			{1, 3}: "address unreachable", {1, 4}: "port unreachable", {1, 5}: "source address failed policy",
			{1, 6}: "reject route", {2, 0}: "packet too big", {3, 0}: "hop limit exceeded in transit",
		}
	}
	if n, ok := names[[2]int{typ, code}]; ok {
		return n
	}
	return "unlisted code"
}

func cmpOr[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}
