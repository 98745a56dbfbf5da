//go:build linux

package icmp

import (
	"net/netip"
	"testing"
	"time"
)

// newDispatchFixture builds an engine and a socket without file descriptors
// and one request with two echoes in flight, to drive dispatch directly with
// crafted messages (duplicates and late replies cannot be provoked reliably
// from a real kernel).
func newDispatchFixture(raw bool) (*Engine, *socket, *request) {
	e := &Engine{nonce: testNonce, active: map[*request]struct{}{}}
	s := &socket{raw: raw, id: 77, inflight: map[uint16]*pending{}}
	dst := netip.MustParseAddr("198.18.0.9")
	r := &request{req: Request{Dst: dst, Count: 2}, dst: dst, sock: s, echoes: make([]Echo, 2),
		notify: make(chan struct{}, 1)}
	now := time.Now()
	for i := range 2 {
		p := &pending{r: r, idx: i, seq: uint16(100 + i), tok: uint64(10 + i), sentMono: now, sentWall: now.Round(0)}
		r.pend = append(r.pend, p)
		s.inflight[p.seq] = p
		r.sent++
		r.open++
	}
	e.active[r] = struct{}{}
	return e, s, r
}

func replyFor(e *Engine, s *socket, seq uint16, tok uint64, from netip.Addr) received {
	msg := buildEcho(nil, false, s.id, seq, e.nonce, tok, 16)
	return received{msg: message{reply: true, id: s.id, seq: seq, data: msg[8:]}, from: from,
		rx: time.Now(), ttl: 60}
}

func TestDispatch(t *testing.T) {
	e, s, r := newDispatchFixture(true)
	dst := r.dst
	now := time.Now()

	e.dispatch(s, replyFor(e, s, 100, 10, dst), now)
	e.dispatch(s, replyFor(e, s, 100, 10, dst), now) // the same reply again
	if ec := r.echoes[0]; ec.Fate != Replied || ec.Duplicates != 1 || ec.TTL != 60 || ec.From != dst {
		t.Errorf("echo 0: %+v, want replied with one duplicate", ec)
	}

	// Another engine's echo with our sequence number: foreign, not ours.
	other := replyFor(e, s, 101, 11, dst)
	other.msg.data = append([]byte(nil), other.msg.data...)
	other.msg.data[0] ^= 0xff
	e.dispatch(s, other, now)
	// The right token from the wrong host: not a reply to this echo.
	e.dispatch(s, replyFor(e, s, 101, 11, netip.MustParseAddr("198.18.0.10")), now)
	// A raw socket's reply with another identifier: foreign.
	wrongID := replyFor(e, s, 101, 11, dst)
	wrongID.msg.id++
	e.dispatch(s, wrongID, now)
	if r.echoes[1].Fate != Pending || r.foreign != 2 {
		t.Errorf("echo 1: %+v, request foreign %d: want still pending, 2 foreign (bad token, bad id)", r.echoes[1], r.foreign)
	}

	// Echo 1 declared lost, then its reply: late, not a reply.
	e.mu.Lock()
	e.settle(r, 1, Echo{Fate: Lost})
	e.mu.Unlock()
	if !r.finished {
		t.Fatal("request not finished with every echo settled")
	}
	e.dispatch(s, replyFor(e, s, 101, 11, dst), now)
	if r.echoes[1].Fate != Lost {
		t.Errorf("echo 1 after a late reply: %+v", r.echoes[1])
	}
	st := e.Stats()
	if st.Received != 1 || st.Duplicates != 1 || st.Late != 1 || st.Foreign != 3 {
		t.Errorf("stats %+v: want 1 received, 1 duplicate, 1 late, 3 foreign", st)
	}
}

// TestDispatchLateWhileRunning: a reply to an echo already declared lost,
// while its request still runs, counts in the request's Late.
func TestDispatchLateWhileRunning(t *testing.T) {
	e, s, r := newDispatchFixture(false)
	e.mu.Lock()
	e.settle(r, 0, Echo{Fate: Lost})
	e.mu.Unlock()
	e.dispatch(s, replyFor(e, s, 100, 10, r.dst), time.Now())
	if r.late != 1 || r.echoes[0].Fate != Lost || r.finished {
		t.Errorf("late %d, echo %+v, finished %v", r.late, r.echoes[0], r.finished)
	}
}

// TestDispatchQuotedError: an ICMP error quoting only the echo header (no
// token, as RFC 792 routers do) still ends the request it belongs to.
func TestDispatchQuotedError(t *testing.T) {
	e, s, r := newDispatchFixture(true)
	router := netip.MustParseAddr("198.18.0.1")
	e.dispatch(s, received{msg: message{id: s.id, seq: 101, dst: r.dst, icmpType: 3, icmpCode: 1}, from: router}, time.Now())
	for i, ec := range r.echoes {
		if ec.Fate != Unreachable || ec.ICMPCode != 1 || ec.From != router {
			t.Errorf("echo %d: %+v", i, ec)
		}
	}
	if !r.finished {
		t.Error("request still running after the error")
	}
}
