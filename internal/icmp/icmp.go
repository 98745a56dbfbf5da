// Package icmp is a shared ICMP echo engine: one socket per address family
// for the whole process, one receive loop per socket taking the kernel's
// receive timestamp (SO_TIMESTAMPNS), one sender goroutine that sends every
// request's echoes when they are due, and replies and ICMP errors dispatched
// to the echo they answer.
//
// Why not a pinger per run: a socket, goroutines and a userspace receive
// timestamp per run cost ~30 % of a core at 1,000 targets × 1 Hz and read
// 0.15–0.3 ms high; one socket with kernel timestamps does the same work for
// a few percent and reads what the kernel saw.
//
// The engine is Linux only; elsewhere Open returns ErrUnsupported so callers
// can fall back to another pinger. It takes plain parameters and knows
// nothing of the agent's configuration.
package icmp

import (
	"errors"
	"log/slog"
	"net/netip"
	"time"
)

// Mode chooses the socket kind.
type Mode int

const (
	// ModeAuto uses datagram sockets when net.ipv4.ping_group_range admits
	// the process's group, raw sockets otherwise.
	ModeAuto Mode = iota
	// ModeDatagram forces ICMP datagram ("ping") sockets: unprivileged, the
	// kernel demultiplexes replies by identifier so no other process's
	// replies ever reach us.
	ModeDatagram
	// ModeRaw forces raw ICMP sockets (root or CAP_NET_RAW): they see every
	// ICMP message for the host, so foreign replies are filtered here.
	ModeRaw
)

func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeDatagram:
		return "datagram"
	case ModeRaw:
		return "raw"
	}
	return "Mode(?)"
}

// Options configure an Engine.
type Options struct {
	Mode   Mode
	Logger *slog.Logger // may be nil
}

// ErrUnsupported is returned by Open where the engine has no implementation.
var ErrUnsupported = errors.New("icmp engine: not supported on this operating system")

// ErrClosed is returned by Ping on an engine that was closed before or while
// the request ran.
var ErrClosed = errors.New("icmp engine: closed")

// Request is one run of echoes to one destination.
type Request struct {
	Dst netip.Addr
	// Source, optional: send from this local address (IP_PKTINFO /
	// IPV6_PKTINFO per packet). Must be of Dst's family.
	Source netip.Addr
	// Count of echoes, at least 1.
	Count int
	// Interval between echoes of this request; 0 means 1 s.
	Interval time.Duration
	// Size of the ICMP payload in bytes; 0 means 56. At least 16: the payload
	// carries the engine's nonce and a per-echo token.
	Size int
	// TTL (IPv6 hop limit) of the echoes; 0 = the system default. Set per
	// packet through a control message, never with setsockopt.
	TTL int
	// Timeout, optional: an echo not answered this long after it was sent is
	// Lost at once (a reply after that counts as Late). 0: echoes wait until
	// ctx ends.
	Timeout time.Duration
	// Deadline, optional: when the request stops waiting for replies, as
	// when ctx ends (echoes still pending are Lost), without a context of
	// its own per request.
	Deadline time.Time
	// OnEcho, if set, is called with every echo's fate as soon as it is known
	// (to record an RTT histogram live). It runs on the goroutine that called
	// Ping, never on the receive loop, and every call has returned when Ping
	// returns.
	OnEcho func(Echo)
}

// Fate is what became of one echo.
type Fate int

const (
	Pending Fate = iota
	Replied
	Lost
	Unreachable
	TTLExceeded
	SendFailed
)

func (f Fate) String() string {
	switch f {
	case Pending:
		return "pending"
	case Replied:
		return "replied"
	case Lost:
		return "lost"
	case Unreachable:
		return "unreachable"
	case TTLExceeded:
		return "ttl_exceeded"
	case SendFailed:
		return "send_failed"
	}
	return "Fate(?)"
}

// Echo is one echo request and what answered it.
type Echo struct {
	Seq int // 0..Count-1 within the request
	// Sent is the send time: the kernel's software TX timestamp when the
	// kernel gives one, else the time just before sendmsg. Zero for echoes
	// never sent (after an ICMP error ended the request).
	Sent time.Time
	// RTT is the kernel's receive timestamp of the reply minus Sent (same
	// clock) for Replied; for the echo an ICMP error answered (Unreachable,
	// TTLExceeded), the time until the error came: a router's round trip,
	// which a path probe reports per hop. 0 otherwise (Lost, and the other
	// echoes an ICMP error ended).
	RTT time.Duration
	// TTL (hop limit) of the reply, when known.
	TTL  int
	Fate Fate
	// Duplicates counts further replies to the same echo.
	Duplicates int
	// ICMPType and ICMPCode of the error, for Unreachable and TTLExceeded.
	ICMPType, ICMPCode int
	// From is who answered: the target, or the router that reported the error.
	From netip.Addr
	// Err is the send error for SendFailed (a syscall.Errno can be found with
	// errors.As).
	Err error
}

// Result of a Ping.
type Result struct {
	// Echoes: one per echo sent or attempted, in order. When an ICMP error
	// ended the request, the echoes not yet sent are included with the same
	// fate (and a zero Sent).
	Echoes []Echo
	// Privileged: a raw socket was used.
	Privileged bool
	// Late counts replies that came after their echo was declared Lost (while
	// the request was still running); Foreign counts replies from the
	// destination with one of our sequence numbers that did not carry our
	// token (another pinger's) — both ignored.
	Late, Foreign int
}

// Stats are an engine's cumulative counters since Open.
type Stats struct {
	Sent       uint64 // echoes handed to the kernel
	SendErrors uint64 // echoes whose sendmsg failed
	Received   uint64 // replies matched to a waiting echo
	Lost       uint64 // echoes declared lost
	ICMPErrors uint64 // ICMP errors matched to an echo
	Duplicates uint64 // further replies to an already answered echo
	// Late: replies carrying our token whose echo no longer waited for one
	// (declared lost, or its request had already returned).
	Late uint64
	// Foreign: ICMP messages for the host that were not ours (raw sockets see
	// every reply and error on the host).
	Foreign uint64
}
