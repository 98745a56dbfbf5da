package icmp

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// txTimestamping asks for the kernel's software TX timestamp of every packet,
// reported on the error queue without the packet (TSONLY), keyed by an ID we
// set per sendmsg (SCM_TS_OPT_ID, Linux 6.13+).
const txTimestamping = unix.SOF_TIMESTAMPING_TX_SOFTWARE | unix.SOF_TIMESTAMPING_SOFTWARE |
	unix.SOF_TIMESTAMPING_OPT_ID | unix.SOF_TIMESTAMPING_OPT_TSONLY

// Socket options x/sys/unix does not name.
const (
	icmpFilter  = 1 // ICMP_FILTER at SOL_RAW: bit n set blocks IPv4 ICMP type n
	icmp6Filter = 1 // ICMP6_FILTER at IPPROTO_ICMPV6: bit n set blocks type n
)

// socket is one ICMP socket of the engine, for one family.
type socket struct {
	v6, raw bool
	// id is the echo identifier we write (raw sockets match it; on datagram
	// sockets the kernel replaces it with the socket's port).
	id   uint16
	file *os.File
	rc   syscall.RawConn
	// txStamps: SO_TIMESTAMPING with per-send IDs works on this socket.
	txStamps atomic.Bool

	// Guarded by Engine.mu.
	inflight map[uint16]*pending // by sequence number
	nextSeq  uint16

	// stampsDue: TX timestamps asked for and not yet read, an upper bound
	// (an echo the kernel dropped before its driver leaves one that never
	// comes); while above zero the receive loop reads the error queue.
	stampsDue atomic.Int64

	// readMu: one reader at a time (the receive loop, or Ping draining the
	// socket before it declares an echo lost), with these buffers; and
	// errPending: a read reported an ICMP error, so the error queue has it.
	readMu     sync.Mutex
	rb         *batch
	errPending bool
}

// openSocket opens the family's socket of the kind mode asks for, or returns
// an error that says how to make it possible.
func openSocket(v6 bool, mode Mode) (*socket, error) {
	switch mode {
	case ModeDatagram:
		return newSocket(v6, false)
	case ModeRaw:
		return newSocket(v6, true)
	}
	first := !datagramAllowed()
	s, err := newSocket(v6, first)
	if err == nil {
		return s, nil
	}
	s, err2 := newSocket(v6, !first)
	if err2 == nil {
		return s, nil
	}
	return nil, fmt.Errorf("%w; and %w", err, err2)
}

// datagramAllowed reports whether net.ipv4.ping_group_range (which also
// governs IPv6 ping sockets) admits one of the process's groups.
func datagramAllowed() bool {
	lo, hi, ok := pingGroupRange()
	if !ok {
		return false
	}
	groups, _ := unix.Getgroups()
	for _, g := range append(groups, unix.Getgid()) {
		if lo <= g && g <= hi {
			return true
		}
	}
	return false
}

func pingGroupRange() (lo, hi int, ok bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
	if err != nil {
		return 0, 0, false
	}
	_, err = fmt.Sscan(strings.TrimSpace(string(b)), &lo, &hi)
	return lo, hi, err == nil
}

func newSocket(v6, raw bool) (*socket, error) {
	family, proto, kind := unix.AF_INET, unix.IPPROTO_ICMP, unix.SOCK_DGRAM
	if v6 {
		family, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	if raw {
		kind = unix.SOCK_RAW
	}
	fd, err := unix.Socket(family, kind|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, openError(v6, raw, err)
	}
	s := &socket{v6: v6, raw: raw, inflight: map[uint16]*pending{}}
	if err := s.configure(fd); err != nil {
		unix.Close(fd)
		return nil, err
	}
	var id [2]byte
	_, _ = rand.Read(id[:])
	s.id = binary.BigEndian.Uint16(id[:])
	var seq [2]byte
	_, _ = rand.Read(seq[:])
	s.nextSeq = binary.BigEndian.Uint16(seq[:])
	// A non-blocking descriptor joins Go's network poller: the receive loop
	// parks until the kernel has something, with no read-deadline polling.
	s.file = os.NewFile(uintptr(fd), s.kind())
	if s.rc, err = s.file.SyscallConn(); err != nil {
		s.file.Close()
		return nil, fmt.Errorf("%s: %w", s.kind(), err)
	}
	return s, nil
}

func (s *socket) kind() string {
	k := "datagram ICMP socket"
	if s.raw {
		k = "raw ICMP socket"
	}
	if s.v6 {
		return k + " (IPv6)"
	}
	return k + " (IPv4)"
}

// openError explains how to make the socket kind possible.
func openError(v6, raw bool, err error) error {
	fam := "IPv4"
	if v6 {
		fam = "IPv6"
	}
	if raw {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return fmt.Errorf("raw ICMP socket (%s): %w: run as root or grant CAP_NET_RAW "+
				"(setcap cap_net_raw+ep on the binary)", fam, err)
		}
		return fmt.Errorf("raw ICMP socket (%s): %w", fam, err)
	}
	if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
		lo, hi, _ := pingGroupRange()
		return fmt.Errorf("datagram ICMP socket (%s): %w: group %d is not within sysctl "+
			"net.ipv4.ping_group_range (%d %d); allow it with "+
			"sysctl -w net.ipv4.ping_group_range=\"%d %d\"", fam, err, unix.Getgid(), lo, hi, unix.Getgid(), unix.Getgid())
	}
	return fmt.Errorf("datagram ICMP socket (%s): %w", fam, err)
}

// configure sets the socket options: kernel receive timestamps (required),
// TX timestamps (best effort), reply TTL, error reporting and filters.
func (s *socket) configure(fd int) error {
	set := func(level, opt, v int, what string) error {
		if err := unix.SetsockoptInt(fd, level, opt, v); err != nil {
			return fmt.Errorf("%s: setsockopt %s: %w", s.kind(), what, err)
		}
		return nil
	}
	if err := set(unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1, "SO_TIMESTAMPNS"); err != nil {
		return err
	}
	s.txStamps.Store(unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING, txTimestamping) == nil)
	// Room for replies from thousands of targets while the process is not
	// scheduled: beyond net.core.rmem_max when allowed (CAP_NET_ADMIN).
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	}
	if s.v6 {
		if err := set(unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1, "IPV6_RECVHOPLIMIT"); err != nil {
			return err
		}
	} else if !s.raw {
		if err := set(unix.IPPROTO_IP, unix.IP_RECVTTL, 1, "IP_RECVTTL"); err != nil {
			return err
		}
	}
	if !s.raw {
		// Datagram sockets learn of ICMP errors only through the error queue.
		if s.v6 {
			return set(unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1, "IPV6_RECVERR")
		}
		return set(unix.IPPROTO_IP, unix.IP_RECVERR, 1, "IP_RECVERR")
	}
	// A raw socket gets every ICMP message of the host: let only echo
	// replies and the errors we handle through.
	if s.v6 {
		var filter [8]uint32
		for i := range filter {
			filter[i] = ^uint32(0)
		}
		for _, t := range []int{typeEchoReply6, typeUnreachable6, typePacketTooBig6, typeTimeExceeded6} {
			filter[t>>5] &^= 1 << (t & 31)
		}
		b := unsafe.Slice((*byte)(unsafe.Pointer(&filter[0])), 32)
		if err := unix.SetsockoptString(fd, unix.IPPROTO_ICMPV6, icmp6Filter, string(b)); err != nil {
			return fmt.Errorf("%s: setsockopt ICMP6_FILTER: %w", s.kind(), err)
		}
		return nil
	}
	mask := ^uint32(1<<typeEchoReply4 | 1<<typeUnreachable4 | 1<<typeTimeExceeded4)
	return set(unix.SOL_RAW, icmpFilter, int(mask), "ICMP_FILTER")
}

// send hands one echo to the kernel with its per-packet options: TTL, source
// address, TX timestamp ID. It may run on several goroutines at once (Ping
// sends a request's first echo itself), so each send takes its own buffer
// from a pool. A datagram socket may fail a send with the error of an
// earlier ICMP error (IP_RECVERR sets the socket error); reporting clears
// it, so the send is tried again.
func (s *socket) send(sb *sendBuf, dst netip.Addr, zoneID uint32, src netip.Addr, ttl int, tsKey uint32) error {
	oob := sb.oob[:0]
	if ttl > 0 {
		if s.v6 {
			oob = appendCmsgInt(oob, unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, uint32(ttl))
		} else {
			oob = appendCmsgInt(oob, unix.IPPROTO_IP, unix.IP_TTL, uint32(ttl))
		}
	}
	if src.IsValid() {
		if s.v6 {
			pi := unix.Inet6Pktinfo{Addr: src.As16()}
			oob = appendCmsg(oob, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO,
				unsafe.Slice((*byte)(unsafe.Pointer(&pi)), unix.SizeofInet6Pktinfo))
		} else {
			pi := unix.Inet4Pktinfo{Spec_dst: src.As4()}
			oob = appendCmsg(oob, unix.IPPROTO_IP, unix.IP_PKTINFO,
				unsafe.Slice((*byte)(unsafe.Pointer(&pi)), unix.SizeofInet4Pktinfo))
		}
	}
	noStamp := len(oob)
	stamped := s.txStamps.Load()
	if stamped {
		oob = appendCmsgInt(oob, unix.SOL_SOCKET, unix.SCM_TS_OPT_ID, tsKey)
		// Counted before the send: on loopback the stamp and the reply are
		// queued before sendmsg returns.
		s.stampsDue.Add(1)
	}
	sb.oob = oob
	sb.address(dst, zoneID)
	err := s.sendmsg(sb)
	if err == unix.EINVAL && stamped {
		// A kernel before 6.13 has no SCM_TS_OPT_ID: take userspace send
		// times instead.
		s.txStamps.Store(false)
		s.stampsDue.Add(-1)
		stamped = false
		sb.oob = oob[:noStamp]
		err = s.sendmsg(sb)
	}
	if err != nil && !s.raw && pendingICMPError(err) {
		err = s.sendmsg(sb)
	}
	if err != nil && stamped {
		s.stampsDue.Add(-1)
	}
	return err
}

func (s *socket) sendmsg(sb *sendBuf) error {
	sb.fill()
	if err := s.rc.Write(sb.write); err != nil {
		return err
	}
	return sb.err
}

// sendBuf is one echo's message, control messages and destination, and the
// msghdr that points at them: pooled, and sent with a raw sendmsg(2),
// because x/sys's SendmsgN allocates the destination's sockaddr and the
// closure that RawConn.Write needs on every send.
type sendBuf struct {
	msg, oob []byte
	name     unix.RawSockaddrInet6 // room for either family
	namelen  uint32
	iov      unix.Iovec
	hdr      unix.Msghdr
	write    func(fd uintptr) bool // RawConn.Write's callback, made once
	err      error
}

var sendBufs = sync.Pool{New: func() any {
	sb := &sendBuf{oob: make([]byte, 0, 128)}
	sb.write = func(fd uintptr) bool {
		_, _, errno := unix.Syscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&sb.hdr)), 0)
		sb.err = nil
		if errno != 0 {
			sb.err = errno
		}
		return errno != unix.EAGAIN
	}
	return sb
}}

// address sets the destination.
func (sb *sendBuf) address(dst netip.Addr, zoneID uint32) {
	sb.name = unix.RawSockaddrInet6{}
	if dst.Is4() {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sb.name))
		sa.Family, sa.Addr = unix.AF_INET, dst.As4()
		sb.namelen = unix.SizeofSockaddrInet4
		return
	}
	sb.name.Family, sb.name.Addr, sb.name.Scope_id = unix.AF_INET6, dst.As16(), zoneID
	sb.namelen = unix.SizeofSockaddrInet6
}

// fill points the msghdr at the message, its control messages and address.
func (sb *sendBuf) fill() {
	sb.iov.Base = &sb.msg[0]
	sb.iov.SetLen(len(sb.msg))
	sb.hdr = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&sb.name)), Namelen: sb.namelen, Iov: &sb.iov}
	sb.hdr.SetIovlen(1)
	if len(sb.oob) > 0 {
		sb.hdr.Control = &sb.oob[0]
		sb.hdr.SetControllen(len(sb.oob))
	}
}

// pendingICMPError: errnos an ICMP error leaves on a socket with IP_RECVERR.
func pendingICMPError(err error) bool {
	switch err {
	case unix.EHOSTUNREACH, unix.ENETUNREACH, unix.ECONNREFUSED, unix.EHOSTDOWN, unix.EPROTO,
		unix.EMSGSIZE, unix.EACCES, unix.ENONET, unix.ENOPROTOOPT:
		return true
	}
	return false
}

// appendCmsg appends one control message; b's backing array must be 8-byte
// aligned (slices from make are).
func appendCmsg(b []byte, level, typ int, data []byte) []byte {
	off := len(b)
	space := unix.CmsgSpace(len(data))
	if cap(b)-off < space {
		nb := make([]byte, off, 2*cap(b)+space)
		copy(nb, b)
		b = nb
	}
	b = b[:off+space]
	clear(b[off:])
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[off]))
	h.Level, h.Type = int32(level), int32(typ)
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[off+unix.CmsgLen(0):], data)
	return b
}

func appendCmsgInt(b []byte, level, typ int, v uint32) []byte {
	var d [4]byte
	binary.NativeEndian.PutUint32(d[:], v)
	return appendCmsg(b, level, typ, d[:])
}
