package ping

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/icmp"
	"github.com/netpulse/netpulse/internal/probe"
)

// EvidenceEchoes is the kind under which a run's echoes are kept with it
// (probe.Deps.Evidence), for its debug view.
const EvidenceEchoes = "echoes"

// Fates of echoRecord.Fate.
const (
	fateReplied = "replied"
	fateLost    = "lost"
	fateError   = "error" // an ICMP error answered it, or it could not be sent
)

// maxKeptEchoes bounds the echoes kept of one run (count may be up to
// 1,000): at under 200 bytes of JSON each, they fit the history's 64 KiB
// per piece of evidence. The run's summary counts them all.
const maxKeptEchoes = 256

// echoRecord is one echo of a run as its debug view shows it: bounded by
// the probe's count, so a run's evidence is small (about 90 bytes of JSON
// per echo).
type echoRecord struct {
	Seq int `json:"seq"`
	// SentOffset is when it was sent, in seconds after the run's start
	// (shorter than a timestamp, and what a reader compares).
	SentOffset *float64 `json:"sent_offset_seconds"`
	RTT        *float64 `json:"rtt_seconds"` // null unless replied
	Fate       string   `json:"fate"`
	TTL        int      `json:"ttl,omitempty"`
	Duplicates int      `json:"duplicates,omitempty"`
	ICMPError  *icmpErr `json:"icmp_error,omitempty"`
	// Error is why it could not be sent (fate error without icmp_error).
	Error string `json:"error,omitempty"`
	// NetworkType (ipv4, ipv6) tells the families of an ip_version: both
	// run apart.
	NetworkType string `json:"network_type,omitempty"`
}

// icmpErr is the ICMP error that answered an echo.
type icmpErr struct {
	Type    int    `json:"type"`
	Code    int    `json:"code"`
	From    string `json:"from"`
	Meaning string `json:"meaning"`
}

// echoRecords turns the engine's echoes into evidence, with send times as
// offsets from start. Echoes never sent because an ICMP error ended the
// run early are left out: they measured nothing.
func echoRecords(echoes []icmp.Echo, start time.Time, ipv4 bool) []echoRecord {
	out := make([]echoRecord, 0, len(echoes))
	// The records' figures point into one array: a float of their own
	// each was two allocations per echo.
	figures := make([]float64, 0, 2*len(echoes))
	figure := func(v float64) *float64 {
		figures = append(figures, v)
		return &figures[len(figures)-1]
	}
	for i := range echoes {
		e := &echoes[i]
		if e.Sent.IsZero() && e.Fate != icmp.SendFailed {
			continue
		}
		r := echoRecord{Seq: e.Seq, Fate: fateLost, Duplicates: e.Duplicates}
		if !e.Sent.IsZero() {
			r.SentOffset = figure(e.Sent.Sub(start).Seconds())
		}
		switch e.Fate {
		case icmp.Replied:
			r.RTT, r.Fate, r.TTL = figure(e.RTT.Seconds()), fateReplied, e.TTL
		case icmp.Unreachable, icmp.TTLExceeded:
			r.Fate = fateError
			r.ICMPError = &icmpErr{Type: e.ICMPType, Code: e.ICMPCode, From: e.From.String(),
				Meaning: icmpDescription(ipv4, e.ICMPType, e.ICMPCode)}
		case icmp.SendFailed:
			r.Fate = fateError
			if e.Err != nil {
				r.Error = e.Err.Error()
			}
		}
		out = append(out, r)
	}
	return out
}

// clean reports whether a run's echoes all got one reply in time: such a
// scheduled run keeps only its summary, so that at fleet scale (1,000
// targets at 1 Hz) history stores echoes only for the runs worth a look.
func clean(echoes []echoRecord, late int) bool {
	if late > 0 {
		return false
	}
	for _, e := range echoes {
		if e.Fate != fateReplied || e.Duplicates > 0 {
			return false
		}
	}
	return true
}

// runStart is the start of the run of ctx, or else fallback.
func runStart(ctx context.Context, fallback time.Time) time.Time {
	if id, ok := probe.RunIDFrom(ctx); ok {
		return time.Unix(0, id.Start)
	}
	return fallback
}

// keepEchoes keeps a run's echoes as its evidence when the run was not
// clean or was asked for on demand. A target that is down (no echo
// answered: lost, or an ICMP error) keeps the echoes of its first silent
// run only: the next silent runs would repeat them, and at 1 Hz a down
// target would otherwise write its runs' echoes every second.
func (p *Prober) keepEchoes(ctx context.Context, t *probe.Target, echoes []echoRecord, late int) {
	if p.evidence == nil || len(echoes) == 0 {
		return
	}
	if !probe.OnDemand(ctx) {
		repeat := !p.silence.changed(t, silent(echoes))
		if repeat || clean(echoes, late) {
			return
		}
	}
	p.evidence(ctx, EvidenceEchoes, echoes[:min(len(echoes), maxKeptEchoes)])
}

// silent reports whether no echo was answered by the target.
func silent(echoes []echoRecord) bool {
	for _, e := range echoes {
		if e.Fate == fateReplied {
			return false
		}
	}
	return true
}

// silentTargets remembers which targets' last scheduled run was silent.
type silentTargets struct {
	mu sync.Mutex
	by map[*probe.Target]bool
}

// changed records whether t's run was silent and reports false only for
// a silent run after a silent one.
func (s *silentTargets) changed(t *probe.Target, silent bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.by[t]
	if s.by == nil {
		s.by = map[*probe.Target]bool{}
	}
	s.by[t] = silent
	return !(was && silent)
}

// recordEvent records one echo of a pro-bing run on the run's span, as
// echoEvent does for the shared engine's.
func recordEvent(span trace.Span, r *echoRecord) {
	kv := []attribute.KeyValue{attribute.Int("seq", r.Seq), attribute.String("fate", r.Fate)}
	if r.RTT != nil {
		kv = append(kv, attribute.Float64("rtt_seconds", *r.RTT), attribute.Int("ttl", r.TTL))
	}
	if r.Duplicates > 0 {
		kv = append(kv, attribute.Int("duplicates", r.Duplicates))
	}
	span.AddEvent("echo", trace.WithAttributes(kv...))
}

// proBingEchoes collects the echoes of a pro-bing run from its callbacks
// (sent, replied, duplicate, send error), bounded by count; send times
// are taken when pro-bing reports the send, just after the syscall.
type proBingEchoes struct {
	mu    sync.Mutex
	start time.Time
	limit int
	recs  []echoRecord
	bySeq map[int]int
}

func newProBingEchoes(start time.Time, count int) *proBingEchoes {
	return &proBingEchoes{start: start, limit: min(count, maxKeptEchoes),
		recs: make([]echoRecord, 0, min(count, maxKeptEchoes)), bySeq: make(map[int]int, count)}
}

// at returns seq's record, made on its first callback (a reply can be
// processed before pro-bing reports its send), or nil past the bound.
func (c *proBingEchoes) at(seq int) *echoRecord {
	if i, ok := c.bySeq[seq]; ok {
		return &c.recs[i]
	}
	if len(c.recs) >= c.limit {
		return nil
	}
	c.bySeq[seq] = len(c.recs)
	c.recs = append(c.recs, echoRecord{Seq: seq, Fate: fateLost})
	return &c.recs[len(c.recs)-1]
}

func (c *proBingEchoes) sent(seq int) {
	off := time.Since(c.start).Seconds()
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.at(seq); r != nil && r.SentOffset == nil {
		r.SentOffset = &off
	}
}

func (c *proBingEchoes) sendFailed(seq int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.at(seq); r != nil && r.Error == "" { // ENOBUFS is retried: the first error
		r.Fate, r.Error = fateError, err.Error()
	}
}

func (c *proBingEchoes) replied(seq int, rtt time.Duration, ttl int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.at(seq); r != nil {
		v := rtt.Seconds()
		r.RTT, r.Fate, r.TTL, r.Error = &v, fateReplied, ttl, ""
	}
}

func (c *proBingEchoes) duplicate(seq int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.at(seq); r != nil {
		r.Duplicates++
	}
}

func (c *proBingEchoes) records() []echoRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.recs)
}
