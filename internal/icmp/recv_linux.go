package icmp

import (
	"encoding/binary"
	"errors"
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
// the socket is readable or has an error queued, reads the error queue first
// (TX timestamps precede their replies there) and then the normal queue, and
// ends when the socket is closed.
func (e *Engine) receive(s *socket) {
	defer e.wg.Done()
	buf := make([]byte, 1<<16)
	oob := make([]byte, 1024)
	var n, oobn int
	var from unix.Sockaddr
	var errQueue bool
	var rerr error
	read := func(fd uintptr) bool {
		n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if rerr == nil {
			errQueue = true
			return true
		}
		errQueue = false
		n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_DONTWAIT)
		return rerr != unix.EAGAIN
	}
	for {
		err := s.rc.Read(read)
		if err != nil {
			return // closed
		}
		now := time.Now()
		if rerr != nil {
			// With IP_RECVERR an ICMP error also sets the socket error, which
			// a normal read reports once; the error queue has the details.
			if !errors.Is(rerr, unix.EINTR) && !pendingICMPError(rerr) {
				e.log.Debug("icmp receive", "socket", s.kind(), "err", rerr)
			}
			continue
		}
		var r received
		var ok bool
		if errQueue {
			r, ok = decodeErrQueue(s, buf[:n], oob[:oobn], from)
		} else {
			r, ok = decodePacket(s, buf[:n], oob[:oobn], from, now)
		}
		if !ok {
			e.stats.foreign.Add(1)
			continue
		}
		e.dispatch(s, r, now)
	}
}

// decodePacket decodes a normal read: an echo reply, or (raw sockets) an
// ICMP error quoting an echo request.
func decodePacket(s *socket, b, oob []byte, from unix.Sockaddr, now time.Time) (received, bool) {
	r := received{from: sockaddrAddr(from), rx: now}
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
func decodeErrQueue(s *socket, b, oob []byte, from unix.Sockaddr) (received, bool) {
	var r received
	var ee *unix.SockExtendedErr
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
			ee = new(unix.SockExtendedErr)
			*ee = *(*unix.SockExtendedErr)(unsafe.Pointer(&c.Data[0]))
			offender = offenderAddr(c.Data[sizeofExtendedErr:])
		}
	}
	if ee == nil {
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
		r.msg = message{id: id, seq: seq, data: data, dst: sockaddrAddr(from),
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
