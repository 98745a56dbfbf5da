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
// its own. A request's first echo is sent by Ping itself (it is due at
// once), so a one-echo request never wakes the sender; echo deadlines
// (Request.Timeout) are kept by Ping's goroutine, not on the heap.

// event: request r's next echo is due at.
type event struct {
	at time.Time
	r  *request
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
		if ev.r.finished {
			e.mu.Unlock()
			continue
		}
		e.sendNext(ev.r) // unlocks
	}
}

// sendNext sends request r's next echo, on the sender goroutine or (a
// request's first echo) on Ping's. Called with e.mu held; returns with it
// released, having held it for neither the send nor its error handling.
func (e *Engine) sendNext(r *request) {
	s := r.sock
	idx := r.sent
	r.sent++
	r.open++
	if r.sent < len(r.echoes) {
		e.push(event{at: time.Now().Add(r.req.Interval), r: r})
	}
	seq, ok := s.allocSeq()
	if !ok {
		e.stats.sendErrors.Add(1)
		e.settle(r, idx, Echo{Fate: SendFailed, Err: errNoSeq})
		e.mu.Unlock()
		return
	}
	e.nextTok++
	p := &r.firstPend
	if idx > 0 {
		p = new(pending)
	}
	*p = pending{r: r, idx: idx, seq: seq, tok: e.nextTok}
	p.tsKey = uint32(p.tok)<<16 | uint32(seq)
	r.pend = append(r.pend, p)
	s.inflight[seq] = p
	sb := sendBufs.Get().(*sendBuf)
	defer sendBufs.Put(sb)
	sb.msg = buildEcho(sb.msg, s.v6, s.id, seq, e.nonce, p.tok, r.req.Size)
	p.sentMono = time.Now()
	p.sentWall = p.sentMono.Round(0)
	r.echoes[idx].Sent = p.sentWall
	e.mu.Unlock()

	// Counted before the send, so that a reader of Stats never sees a reply
	// counted before its echo.
	e.stats.sent.Add(1)
	err := s.send(sb, r.dst, r.zoneID, r.req.Source, r.req.TTL, p.tsKey)
	if err != nil {
		e.stats.sent.Add(^uint64(0))
		e.stats.sendErrors.Add(1)
		e.mu.Lock()
		e.settle(r, idx, Echo{Fate: SendFailed, Err: fmt.Errorf("send echo to %s: %w", r.req.Dst, err)})
		e.mu.Unlock()
		return
	}
	if r.req.Timeout > 0 {
		// Ping's goroutine arms the echo's deadline.
		select {
		case r.notify <- struct{}{}:
		default:
		}
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
