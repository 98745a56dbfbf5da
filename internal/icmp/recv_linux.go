package icmp

import (
	"encoding/binary"
	"iter"
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// received is one read from a socket, decoded.
type received struct {
	msg  message
	from netip.Addr // who sent it (the target, or the router of an error)
	rx   time.Time  // kernel receive timestamp (wall clock), else time of read
	ttl  int
	// txKey and tx: a TX timestamp from the error queue, not a message.
	txKey   uint32
	tx      time.Time
	isStamp bool
}

// receive is the socket's receive loop: it parks in the network poller until
// the socket is readable or has an error queued, then reads everything
// queued, and ends when the socket is closed.
func (e *Engine) receive(s *socket) {
	defer e.wg.Done()
	_ = s.rc.Read(func(fd uintptr) bool {
		e.drainFD(s, int(fd))
		return false // wait for more; Read returns only when the socket closes
	})
}

// drain reads and dispatches what is queued on the socket without waiting.
// Ping calls it before declaring an echo lost, so that a reply the kernel
// received in time but the receive loop had not read yet (a starved
// process) is not counted as loss.
func (e *Engine) drain(s *socket) {
	_ = s.rc.Control(func(fd uintptr) { e.drainFD(s, int(fd)) })
}

// drainFD reads until both queues are empty, a batch of messages per
// system call. The error queue is read only when something should be there
// (a TX timestamp not yet read, or an ICMP error the socket reported), or
// when a wake found nothing else: an empty read costs as much as a full one,
// and at 1,000 echoes a second the reads that found nothing were half of
// the receive loop's system calls. The socket's read lock keeps one reader
// at a time, so a TX timestamp is handled before the reply that follows it.
func (e *Engine) drainFD(s *socket, fd int) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if want := e.bufSize(); s.rb == nil || s.rb.size < want {
		s.rb = newBatch(want)
	}
	got := 0
	errQueueRead := false
	for {
		if s.stampsDue.Load() > 0 || s.errPending {
			s.errPending = false
			n, full := e.readQueue(s, fd, true)
			got += n
			errQueueRead = true
			if full {
				continue
			}
		}
		n, full := e.readQueue(s, fd, false)
		got += n
		switch {
		case full || s.errPending:
			continue
		case got == 0 && !errQueueRead:
			// Woken for something that is not a reply: whatever the error
			// queue holds that was not expected.
			errQueueRead = true
			if n, _ := e.readQueue(s, fd, true); n > 0 {
				got += n
				continue
			}
		}
		return
	}
}

// readQueue reads one batch from the error queue or the normal one and
// dispatches it; it returns how many messages it read and whether the batch
// was full (more may be queued).
func (e *Engine) readQueue(s *socket, fd int, errQueue bool) (n int, full bool) {
	flags := 0
	if errQueue {
		flags = unix.MSG_ERRQUEUE
	}
	n, err := s.rb.read(fd, flags)
	now := time.Now()
	if err != nil {
		switch {
		case err == unix.EAGAIN: // batch.read retries EINTR itself
		case pendingICMPError(err):
			// With IP_RECVERR an ICMP error also sets the socket error,
			// which a normal read reports once; the error queue has the
			// details.
			s.errPending = true
		default:
			e.log.Debug("icmp receive", "socket", s.kind(), "err", err)
		}
		return 0, false
	}
	for i := range n {
		data, oob, from := s.rb.message(i)
		var r received
		ok := !s.rb.truncated(i)
		if ok && errQueue {
			r, ok = decodeErrQueue(s, data, oob, from)
			if ok && r.isStamp && s.stampsDue.Add(-1) < 0 {
				s.stampsDue.Store(0)
			}
		} else if ok {
			r, ok = decodePacket(s, data, oob, from, now)
		}
		if !ok {
			e.stats.foreign.Add(1)
			continue
		}
		e.dispatch(s, r, now)
	}
	return n, n == batchLen
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
		if hasToken && (p == nil || p.tok != tok) {
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

// decodePacket decodes a normal read: an echo reply, or (raw sockets) an
// ICMP error quoting an echo request.
func decodePacket(s *socket, b, oob []byte, from netip.Addr, now time.Time) (received, bool) {
	r := received{from: from, rx: now}
	var err error
	r.msg, err = parseMessage(s.v6, s.raw && !s.v6, b)
	if err != nil {
		return r, false
	}
	if r.msg.src.IsValid() {
		r.from = r.msg.src
	}
	r.ttl = r.msg.ttl
	for c := range cmsgs(oob) {
		switch {
		case c.Header.Level == unix.SOL_SOCKET && c.Header.Type == unix.SCM_TIMESTAMPNS:
			if t, ok := timespec(c.Data); ok {
				r.rx = t
			}
		case c.Header.Level == unix.IPPROTO_IP && c.Header.Type == unix.IP_TTL,
			c.Header.Level == unix.IPPROTO_IPV6 && c.Header.Type == unix.IPV6_HOPLIMIT:
			if len(c.Data) >= 4 {
				r.ttl = int(int32(binary.NativeEndian.Uint32(c.Data)))
			}
		}
	}
	return r, true
}

// decodeErrQueue decodes an error-queue entry: a TX timestamp, or (datagram
// sockets) an ICMP error with the echo request it answers as payload and its
// destination as the address.
func decodeErrQueue(s *socket, b, oob []byte, from netip.Addr) (received, bool) {
	var r received
	var ee unix.SockExtendedErr
	hasEE := false
	var offender netip.Addr
	var stamp, rx time.Time
	for c := range cmsgs(oob) {
		switch {
		case c.Header.Level == unix.SOL_SOCKET && c.Header.Type == unix.SCM_TIMESTAMPING:
			stamp, _ = timespec(c.Data) // [0] is the software timestamp
		case c.Header.Level == unix.SOL_SOCKET && c.Header.Type == unix.SCM_TIMESTAMPNS:
			rx, _ = timespec(c.Data) // an ICMP error's receive time
		case c.Header.Level == unix.IPPROTO_IP && c.Header.Type == unix.IP_RECVERR,
			c.Header.Level == unix.IPPROTO_IPV6 && c.Header.Type == unix.IPV6_RECVERR:
			if len(c.Data) < sizeofExtendedErr {
				continue
			}
			ee, hasEE = *(*unix.SockExtendedErr)(unsafe.Pointer(&c.Data[0])), true
			offender = offenderAddr(c.Data[sizeofExtendedErr:])
		}
	}
	if !hasEE {
		return r, false
	}
	switch ee.Origin {
	case unix.SO_EE_ORIGIN_TIMESTAMPING:
		if stamp.IsZero() {
			return r, false
		}
		r.isStamp, r.txKey, r.tx = true, ee.Data, stamp
		return r, true
	case unix.SO_EE_ORIGIN_ICMP, unix.SO_EE_ORIGIN_ICMP6:
		id, seq, data, err := parseEchoRequest(s.v6, b)
		if err != nil {
			return r, false
		}
		r.msg = message{id: id, seq: seq, data: data, dst: from,
			icmpType: int(ee.Type), icmpCode: int(ee.Code)}
		r.from, r.rx = offender, rx
		return r, true
	}
	return r, false
}

// offenderAddr reads SO_EE_OFFENDER: the sockaddr that follows the
// sock_extended_err (the router that sent the ICMP error).
func offenderAddr(b []byte) netip.Addr {
	if len(b) < 2 {
		return netip.Addr{}
	}
	switch binary.NativeEndian.Uint16(b) {
	case unix.AF_INET:
		if len(b) >= 8 {
			return netip.AddrFrom4([4]byte(b[4:8]))
		}
	case unix.AF_INET6:
		if len(b) >= 24 {
			return netip.AddrFrom16([16]byte(b[8:24])).Unmap()
		}
	}
	return netip.Addr{}
}

// timespec decodes a struct timespec (the platform's layout) as a wall-clock
// time without a monotonic reading.
func timespec(b []byte) (time.Time, bool) {
	if len(b) < int(unsafe.Sizeof(unix.Timespec{})) {
		return time.Time{}, false
	}
	ts := *(*unix.Timespec)(unsafe.Pointer(&b[0]))
	if ts.Sec == 0 && ts.Nsec == 0 {
		return time.Time{}, false
	}
	return time.Unix(int64(ts.Sec), int64(ts.Nsec)), true
}

const sizeofExtendedErr = int(unsafe.Sizeof(unix.SockExtendedErr{}))

// cmsgs iterates over control messages without allocating a slice for them.
func cmsgs(oob []byte) iter.Seq[unix.SocketControlMessage] {
	return func(yield func(unix.SocketControlMessage) bool) {
		for len(oob) > 0 {
			h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
			if err != nil || !yield(unix.SocketControlMessage{Header: h, Data: data}) {
				return
			}
			oob = rest
		}
	}
}
