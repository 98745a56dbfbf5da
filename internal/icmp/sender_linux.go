package icmp

import (
	"container/heap"
	"errors"
	"fmt"
	"time"
)

// The sender is one goroutine for the whole engine. Every request puts its
// next echo on a time-ordered heap; the goroutine sleeps until the earliest
// one is due, sends it and puts the request's following echo Interval later:
//
//	request A: A0 ·········· A1 ·········· A2
//	request B:      B0 ·········· B1 ·········· B2
//	sender:    A0   B0       A1   B1       A2   B2   (one timer, no goroutine per echo)
//
// Requests spread themselves by when they start; the sender adds no burst of
// its own. With Request.Timeout, the heap also holds each echo's deadline.

type eventKind int

const (
	evSend   eventKind = iota // send echo r.sent of r
	evExpire                  // echo idx of r is Lost unless answered
)

type event struct {
	at   time.Time
	kind eventKind
	r    *request
	idx  int
}

type schedule []event

func (s schedule) Len() int           { return len(s) }
func (s schedule) Less(i, j int) bool { return s[i].at.Before(s[j].at) }
func (s schedule) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }
func (s *schedule) Push(x any)        { *s = append(*s, x.(event)) }
func (s *schedule) Pop() any {
	old := *s
	ev := old[len(old)-1]
	old[len(old)-1] = event{}
	*s = old[:len(old)-1]
	return ev
}

// push schedules ev and wakes the sender if it is now the earliest. Called
// with e.mu held.
func (e *Engine) push(ev event) {
	heap.Push(&e.queue, ev)
	if e.queue[0].r == ev.r && e.queue[0].at.Equal(ev.at) {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
}

// errNoSeq: every sequence number of the family is taken by an echo in flight.
var errNoSeq = errors.New("icmp engine: all 65,536 sequence numbers are in flight")

// run is the sender goroutine.
func (e *Engine) run() {
	defer e.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			return
		}
		now := time.Now()
		if len(e.queue) == 0 || e.queue[0].at.After(now) {
			wait := time.Hour
			if len(e.queue) > 0 {
				wait = e.queue[0].at.Sub(now)
			}
			e.mu.Unlock()
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-e.wake:
			case <-e.quit:
				return
			}
			continue
		}
		ev := heap.Pop(&e.queue).(event)
		switch {
		case ev.r.finished:
			e.mu.Unlock()
		case ev.kind == evExpire:
			if ev.r.echoes[ev.idx].Fate == Pending {
				e.stats.lost.Add(1)
				e.settle(ev.r, ev.idx, Echo{Fate: Lost})
			}
			e.mu.Unlock()
		default:
			e.sendNext(ev.r) // unlocks
		}
	}
}

// sendNext sends request r's next echo. Called with e.mu held; returns with
// it released, having held it for neither the send nor its error handling.
func (e *Engine) sendNext(r *request) {
	s := r.sock
	idx := r.sent
	r.sent++
	r.open++
	if r.sent < len(r.echoes) {
		e.push(event{at: time.Now().Add(r.req.Interval), kind: evSend, r: r})
	}
	seq, ok := s.allocSeq()
	if !ok {
		e.stats.sendErrors.Add(1)
		e.settle(r, idx, Echo{Fate: SendFailed, Err: errNoSeq})
		e.mu.Unlock()
		return
	}
	e.nextTok++
	p := &pending{r: r, idx: idx, seq: seq, tok: e.nextTok}
	p.tsKey = uint32(p.tok)<<16 | uint32(seq)
	r.pend = append(r.pend, p)
	s.inflight[seq] = p
	s.msg = buildEcho(s.msg, s.v6, s.id, seq, e.nonce, p.tok, r.req.Size)
	p.sentMono = time.Now()
	p.sentWall = p.sentMono.Round(0)
	r.echoes[idx].Sent = p.sentWall
	e.mu.Unlock()

	// Counted before the send, so that a reader of Stats never sees a reply
	// counted before its echo.
	e.stats.sent.Add(1)
	err := s.send(s.msg, r.dst, r.zoneID, r.req.Source, r.req.TTL, p.tsKey)
	if err != nil {
		e.stats.sent.Add(^uint64(0))
		e.stats.sendErrors.Add(1)
		e.mu.Lock()
		e.settle(r, idx, Echo{Fate: SendFailed, Err: fmt.Errorf("send echo to %s: %w", r.req.Dst, err)})
		e.mu.Unlock()
		return
	}
	if r.req.Timeout > 0 {
		e.mu.Lock()
		if !r.finished {
			e.push(event{at: p.sentMono.Add(r.req.Timeout), kind: evExpire, r: r, idx: idx})
		}
		e.mu.Unlock()
	}
}

// allocSeq returns the next sequence number not used by an echo in flight on
// this socket, so that two echoes in flight never share one (whatever their
// destination). Called with e.mu held.
func (s *socket) allocSeq() (uint16, bool) {
	for range 1 << 16 {
		seq := s.nextSeq
		s.nextSeq++
		if _, used := s.inflight[seq]; !used {
			return seq, true
		}
	}
	return 0, false
}

// dispatch matches what the receive loop read to the echo it is about.
func (e *Engine) dispatch(s *socket, in received, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if in.isStamp {
		if p := s.inflight[uint16(in.txKey)]; p != nil && p.tsKey == in.txKey {
			p.txKernel = in.tx
			if ec := &p.r.echoes[p.idx]; ec.Fate == Pending {
				ec.Sent = in.tx
			}
		}
		return
	}
	m := in.msg
	nonce, tok, hasToken := token(m.data)
	p := s.inflight[m.seq]
	if (hasToken && nonce != e.nonce) || (s.raw && m.id != s.id) || (m.reply && !hasToken) {
		// Another pinger's; if it could pass for one of ours, the request
		// it could have fooled counts it.
		e.stats.foreign.Add(1)
		if p != nil && m.reply && in.from == p.r.dst {
			p.r.foreign++
		}
		return
	}
	if p == nil || (hasToken && p.tok != tok) ||
		(m.reply && in.from != p.r.dst) || (!m.reply && m.dst != p.r.dst) {
		if hasToken {
			e.stats.late.Add(1) // our echo, no longer waited for
		} else {
			e.stats.foreign.Add(1)
		}
		return
	}
	r := p.r
	if !m.reply {
		fate := errorFate(s.v6, m.icmpType)
		if fate == Pending {
			return
		}
		e.stats.icmpErrors.Add(1)
		e.abort(r, p.idx, roundTrip(p, in.rx, now),
			Echo{Fate: fate, ICMPType: m.icmpType, ICMPCode: m.icmpCode, From: in.from})
		return
	}
	ec := &r.echoes[p.idx]
	switch ec.Fate {
	case Replied:
		ec.Duplicates++
		e.stats.duplicates.Add(1)
		return
	case Pending:
	default:
		r.late++
		e.stats.late.Add(1)
		return
	}
	rtt := roundTrip(p, in.rx, now)
	e.stats.received.Add(1)
	e.settle(r, p.idx, Echo{Sent: p.sent(), RTT: rtt, TTL: in.ttl, Fate: Replied, From: in.from})
}

// sent is the echo's send time: the kernel's TX timestamp when it came.
func (p *pending) sent() time.Time {
	if !p.txKernel.IsZero() {
		return p.txKernel
	}
	return p.sentWall
}

// roundTrip is the time from p's send to rx, the kernel's receive
// timestamp of what answered it. The kernel stamps are wall-clock: if the
// clock was stepped between send and receive (or rx is missing), it falls
// back to the monotonic clock up to now, the time of the read.
func roundTrip(p *pending, rx, now time.Time) time.Duration {
	rtt := rx.Sub(p.sent())
	if mono := now.Sub(p.sentMono); rx.IsZero() || rtt <= 0 || rtt > mono+time.Millisecond {
		rtt = mono
	}
	return rtt
}
