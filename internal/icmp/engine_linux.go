package icmp

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Engine owns one ICMP socket per address family (opened on first use of
// that family), one receive loop per socket and one sender goroutine, and
// dispatches replies and ICMP errors to the echo they answer.
type Engine struct {
	log   *slog.Logger
	mode  Mode
	nonce [8]byte
	// userTx: take send times in userspace even where the kernel could
	// stamp them (benchmarks compare the two).
	userTx bool

	mu      sync.Mutex
	closed  bool
	socks   [2]*socket // IPv4, IPv6
	queue   schedule
	active  map[*request]struct{}
	nextTok uint64

	// maxSize is the largest Request.Size so far: receive buffers fit it.
	maxSize atomic.Int64

	wake  chan struct{}
	quit  chan struct{}
	wg    sync.WaitGroup
	stats counters
}

type counters struct {
	sent, sendErrors, received, lost, icmpErrors, duplicates, late, foreign atomic.Uint64
}

// request is a running Ping.
type request struct {
	req Request
	// dst is req.Dst without its zone (replies and quotes carry none);
	// zoneID is the zone's interface index for link-local destinations.
	dst      netip.Addr
	zoneID   uint32
	sock     *socket
	echoes   []Echo     // len Count; [:sent] are reported
	pend     []*pending // per sent echo
	sent     int        // echoes sent or attempted
	open     int        // sent echoes still Pending
	finished bool
	err      error
	late     int
	foreign  int
	fresh    []int         // echoes whose fate OnEcho has not seen yet
	notify   chan struct{} // cap 1: fresh has news, or finished

	// Room for a one-echo request (the usual run at scale: count 1 every
	// interval), so that it costs no allocations beyond the request.
	oneEcho   [1]Echo
	onePend   [1]*pending
	firstPend pending
	freshBuf  [2]int
}

// pending is one sent echo, findable by sequence number while its request runs.
type pending struct {
	r        *request
	idx      int
	seq      uint16
	tok      uint64
	tsKey    uint32
	sentWall time.Time // just before sendmsg, wall clock only
	sentMono time.Time // the same instant with the monotonic reading
	txKernel time.Time // kernel TX timestamp, when it came
}

// Open starts an engine. Sockets are opened on first use of their family;
// Open only checks that an IPv4 socket of the chosen kind can be opened, so
// that a permission problem shows at once with how to fix it.
func Open(opts Options) (*Engine, error) {
	e := &Engine{
		log:    opts.Logger,
		mode:   opts.Mode,
		active: map[*request]struct{}{},
		wake:   make(chan struct{}, 1),
		quit:   make(chan struct{}),
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	switch opts.Mode {
	case ModeAuto, ModeDatagram, ModeRaw:
	default:
		return nil, fmt.Errorf("icmp engine: unknown mode %d", opts.Mode)
	}
	if _, err := rand.Read(e.nonce[:]); err != nil {
		return nil, fmt.Errorf("icmp engine: nonce: %w", err)
	}
	// Sockets open on first use of their family, but a socket kind that
	// cannot be opened at all should fail here, where the caller can still
	// choose another pinger.
	s, err := openSocket(false, opts.Mode)
	if err != nil {
		return nil, fmt.Errorf("icmp engine: %w", err)
	}
	_ = s.file.Close()
	e.wg.Add(1)
	go e.run()
	return e, nil
}

func (e *Engine) startSocket(fam int, s *socket) {
	if e.userTx {
		s.txStamps.Store(false)
	}
	e.socks[fam] = s
	e.log.Debug("icmp socket open", "socket", s.kind(), "tx_timestamps", s.txStamps.Load())
	e.wg.Add(1)
	go e.receive(s)
}

// Close stops the loops and closes the sockets; running requests return
// ErrClosed with what they had. Safe to call more than once.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.quit)
	for r := range e.active {
		r.err = ErrClosed
		e.giveUp(r)
	}
	socks := e.socks
	e.mu.Unlock()
	// Closing waits for reads in progress, which may be waiting for e.mu to
	// dispatch what they read: close without holding it.
	var err error
	for _, s := range socks {
		if s != nil {
			if cerr := s.file.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
	}
	e.wg.Wait()
	return err
}

// bufSize is the receive buffer a message needs: the largest echo asked for,
// behind an IP header (raw IPv4) or inside an ICMP error's quote.
func (e *Engine) bufSize() int {
	return max(2048, int(e.maxSize.Load())+256)
}

// timers are Ping's deadline timers, kept stopped between requests.
var timers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// Stats returns the cumulative counters.
func (e *Engine) Stats() Stats {
	c := &e.stats
	return Stats{Sent: c.sent.Load(), SendErrors: c.sendErrors.Load(), Received: c.received.Load(),
		Lost: c.lost.Load(), ICMPErrors: c.icmpErrors.Load(), Duplicates: c.duplicates.Load(),
		Late: c.late.Load(), Foreign: c.foreign.Load()}
}

// Ping sends req.Count echoes req.Interval apart and returns when every echo
// has a fate: a reply, an ICMP error (destination unreachable or time
// exceeded end the whole request at once), req.Timeout after it was sent, or
// ctx's end (Lost). OnEcho runs on this goroutine.
func (e *Engine) Ping(ctx context.Context, req Request) (Result, error) {
	if err := normalize(&req); err != nil {
		return Result{}, err
	}
	fam := 0
	if req.Dst.Is6() {
		fam = 1
	}
	for size := int64(req.Size); ; {
		cur := e.maxSize.Load()
		if size <= cur || e.maxSize.CompareAndSwap(cur, size) {
			break
		}
	}
	r := &request{req: req, dst: req.Dst.WithZone(""), notify: make(chan struct{}, 1)}
	r.echoes, r.pend, r.fresh = r.oneEcho[:], r.onePend[:0], r.freshBuf[:0]
	if req.Count > 1 {
		r.echoes = make([]Echo, req.Count)
	}
	if z := req.Dst.Zone(); z != "" {
		ifi, err := net.InterfaceByName(z)
		if err != nil {
			if n, perr := strconv.Atoi(z); perr == nil && n > 0 {
				ifi = &net.Interface{Index: n}
			} else {
				return Result{}, fmt.Errorf("icmp request: Dst %s: zone %q is not an interface of this host", req.Dst, z)
			}
		}
		r.zoneID = uint32(ifi.Index)
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return Result{}, ErrClosed
	}
	if e.socks[fam] == nil {
		s, err := openSocket(fam == 1, e.mode)
		if err != nil {
			e.mu.Unlock()
			return Result{}, fmt.Errorf("icmp engine: %w", err)
		}
		e.startSocket(fam, s)
	}
	r.sock = e.socks[fam]
	e.active[r] = struct{}{}
	e.sendNext(r) // the first echo is due now; unlocks

	timer := timers.Get().(*time.Timer)
	defer func() {
		timer.Stop() // no stale tick after Stop (Go 1.23 timers)
		timers.Put(timer)
	}()
	for {
		e.deliver(r)
		now := time.Now()
		e.mu.Lock()
		overdue := e.overdue(r, now)
		e.mu.Unlock()
		if overdue {
			e.drain(r.sock) // replies already queued are not loss
		}
		e.mu.Lock()
		next := e.expire(r, now)
		finished := r.finished
		e.mu.Unlock()
		if finished {
			break
		}
		deadline := r.req.Deadline
		if !deadline.IsZero() && (next.IsZero() || deadline.Before(next)) {
			next = deadline
		}
		if !next.IsZero() {
			timer.Reset(time.Until(next))
		}
		stop := false
		select {
		case <-r.notify:
			continue
		case <-timer.C:
			if deadline.IsZero() || time.Now().Before(deadline) {
				continue
			}
			stop = true
		case <-ctx.Done():
			stop = true
		}
		if stop {
			e.drain(r.sock) // replies already queued are not loss
			e.mu.Lock()
			if !r.finished {
				e.giveUp(r)
			}
			e.mu.Unlock()
		}
		break
	}
	e.deliver(r)
	e.mu.Lock()
	defer e.mu.Unlock()
	// Nothing writes r.echoes once the request is finished.
	res := Result{Echoes: r.echoes[:r.sent:r.sent], Privileged: r.sock.raw,
		Late: r.late, Foreign: r.foreign}
	return res, r.err
}

// normalize applies defaults and rejects what cannot work, naming the field.
func normalize(req *Request) error {
	req.Dst = req.Dst.Unmap()
	req.Source = req.Source.Unmap()
	switch {
	case !req.Dst.IsValid():
		return fmt.Errorf("icmp request: Dst: no address")
	case req.Source.IsValid() && req.Source.Is4() != req.Dst.Is4():
		return fmt.Errorf("icmp request: Source %s is not of the family of Dst %s", req.Source, req.Dst)
	case req.Count < 1:
		return fmt.Errorf("icmp request: Count %d: must be at least 1", req.Count)
	case req.Interval < 0:
		return fmt.Errorf("icmp request: Interval %v: must not be negative", req.Interval)
	case req.Size != 0 && (req.Size < tokenLen || req.Size > 65000):
		return fmt.Errorf("icmp request: Size %d: must be %d..65000 bytes", req.Size, tokenLen)
	case req.TTL < 0 || req.TTL > 255:
		return fmt.Errorf("icmp request: TTL %d: must be 0..255", req.TTL)
	case req.Timeout < 0:
		return fmt.Errorf("icmp request: Timeout %v: must not be negative", req.Timeout)
	}
	if req.Interval == 0 {
		req.Interval = time.Second
	}
	if req.Size == 0 {
		req.Size = 56
	}
	return nil
}

// deliver calls OnEcho for the echoes whose fate became known.
func (e *Engine) deliver(r *request) {
	e.mu.Lock()
	var echoes []Echo
	if r.req.OnEcho != nil {
		for _, i := range r.fresh {
			echoes = append(echoes, r.echoes[i])
		}
	}
	r.fresh = r.fresh[:0]
	e.mu.Unlock()
	for _, ec := range echoes {
		r.req.OnEcho(ec)
	}
}

// settle gives echo idx its fate (if still pending) and finishes the request
// when nothing is left to send or wait for. Called with e.mu held.
func (e *Engine) settle(r *request, idx int, ec Echo) {
	if r.echoes[idx].Fate != Pending {
		return
	}
	ec.Seq = idx
	if ec.Sent.IsZero() {
		ec.Sent = r.echoes[idx].Sent
	}
	r.echoes[idx] = ec
	r.open--
	r.fresh = append(r.fresh, idx)
	select {
	case r.notify <- struct{}{}:
	default:
	}
	if r.open == 0 && r.sent == len(r.echoes) {
		e.finish(r)
	}
}

// abort ends the request on an ICMP error that answered echo idx after
// rtt: every echo still pending or not yet sent gets the same fate, and
// echo idx its round trip too (a path probe's hop latency). Called with
// e.mu held.
func (e *Engine) abort(r *request, idx int, rtt time.Duration, ec Echo) {
	answered := ec
	answered.RTT = rtt
	e.settle(r, idx, answered)
	for i := range r.sent {
		e.settle(r, i, ec)
	}
	for i := r.sent; i < len(r.echoes); i++ {
		r.echoes[i] = ec
		r.echoes[i].Seq = i
		r.fresh = append(r.fresh, i)
	}
	r.sent = len(r.echoes)
	if !r.finished {
		e.finish(r)
	}
}

// overdue reports whether an echo of r waited Request.Timeout. Called with
// e.mu held.
func (e *Engine) overdue(r *request, now time.Time) bool {
	if r.req.Timeout <= 0 || r.finished {
		return false
	}
	for _, p := range r.pend {
		if r.echoes[p.idx].Fate == Pending && !p.sentMono.Add(r.req.Timeout).After(now) {
			return true
		}
	}
	return false
}

// expire declares the echoes that waited Request.Timeout Lost and returns
// when the next deadline is (zero if none). Called with e.mu held.
func (e *Engine) expire(r *request, now time.Time) time.Time {
	var next time.Time
	if r.req.Timeout <= 0 || r.finished {
		return next
	}
	for _, p := range r.pend {
		if r.echoes[p.idx].Fate != Pending {
			continue
		}
		due := p.sentMono.Add(r.req.Timeout)
		if !due.After(now) {
			e.stats.lost.Add(1)
			e.settle(r, p.idx, Echo{Fate: Lost})
			continue
		}
		if next.IsZero() || due.Before(next) {
			next = due
		}
	}
	return next
}

// giveUp declares the sent echoes still pending Lost and finishes the
// request (ctx ended, or the engine closed). Called with e.mu held.
func (e *Engine) giveUp(r *request) {
	for i := range r.sent {
		if r.echoes[i].Fate == Pending {
			e.stats.lost.Add(1)
			e.settle(r, i, Echo{Fate: Lost})
		}
	}
	if !r.finished {
		e.finish(r)
	}
}

// finish releases the request's sequence numbers and wakes Ping. Called with
// e.mu held.
func (e *Engine) finish(r *request) {
	r.finished = true
	for _, p := range r.pend {
		if r.sock.inflight[p.seq] == p {
			delete(r.sock.inflight, p.seq)
		}
	}
	delete(e.active, r)
	select {
	case r.notify <- struct{}{}:
	default:
	}
}
