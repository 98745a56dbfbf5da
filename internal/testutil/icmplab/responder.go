package icmplab

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Echo is the truth about one echo request: what the lab saw and did.
type Echo struct {
	Src, Dst netip.Addr
	// ID and Seq as on the wire (a datagram socket's kernel rewrites the
	// identifier to its port).
	ID, Seq     uint16
	PayloadHash uint64 // FNV-1a of the echo payload
	Size        int    // payload bytes
	// Sent is the kernel's timestamp of the request entering the lab's
	// device (dev_queue_xmit, within the pinger's sendmsg call).
	Sent time.Time
	// Read is when the responder had read the request: Read-Sent is its
	// wake-up latency, harmless unless it exceeds Delay.
	Read time.Time
	// Delay is the delay the schedule drew; Dropped, whether it dropped the
	// request.
	Delay   time.Duration
	Dropped bool
	// Replied is when the responder began writing the reply to the TUN
	// device; the kernel delivers it to the pinger's socket (and takes its
	// receive timestamp) within that write. Zero while the reply is due.
	Replied time.Time
	// WriteTook is how long that write took.
	WriteTook time.Duration
}

// RTT is the round-trip time the echo really had: Replied-Sent, the time a
// perfect pinger (timestamps at the syscall) would report. -1 if dropped or
// not answered yet.
func (e Echo) RTT() time.Duration {
	if e.Dropped || e.Replied.IsZero() {
		return -1
	}
	return e.Replied.Sub(e.Sent)
}

// Late is how much later than scheduled the reply was written (the
// responder's own error, already included in RTT).
func (e Echo) Late() time.Duration {
	if e.Dropped || e.Replied.IsZero() {
		return 0
	}
	return e.Replied.Sub(e.Sent) - e.Delay
}

// spin is how long before a reply is due the writer stops sleeping and
// busy-waits: it covers the wake-up latency of ppoll with a 1 ns timer slack.
const spin = 150 * time.Microsecond

type reply struct {
	idx int   // into responder.echoes
	due int64 // Unix ns
	pkt []byte
}

type replyHeap []reply

func (h replyHeap) Len() int           { return len(h) }
func (h replyHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h replyHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *replyHeap) Push(x any)        { *h = append(*h, x.(reply)) }
func (h *replyHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// responder reads echo requests from the tap (with kernel timestamps) on
// one locked thread and writes the replies to the TUN device on another.
type responder struct {
	sched        Schedule
	tunFD, tapFD int
	wakeFD       int // eventfd: a new reply is queued
	stopFD       int // eventfd: stop both threads

	mu       sync.Mutex
	echoes   []Echo
	incoming []reply
	errs     []error

	wg sync.WaitGroup
}

func startResponder(s Schedule, tunFD, tapFD int) (*responder, error) {
	r := &responder{sched: s, tunFD: tunFD, tapFD: tapFD, wakeFD: -1, stopFD: -1}
	var err error
	if r.wakeFD, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err == nil {
		r.stopFD, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	}
	if err != nil {
		closeFDs(tunFD, tapFD, r.wakeFD)
		return nil, fmt.Errorf("icmplab: eventfd: %w", err)
	}
	r.wg.Add(3)
	go r.readLoop()
	go r.writeLoop()
	go r.drainLoop()
	return r, nil
}

func (r *responder) close() error {
	signal(r.stopFD)
	r.wg.Wait()
	closeFDs(r.tunFD, r.tapFD, r.wakeFD, r.stopFD)
	r.mu.Lock()
	defer r.mu.Unlock()
	return errors.Join(r.errs...)
}

func (r *responder) fail(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

func (r *responder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.echoes)
}

func (r *responder) truth(from int) []Echo {
	r.mu.Lock()
	e := append([]Echo(nil), r.echoes[min(from, len(r.echoes)):]...)
	r.mu.Unlock()
	sortBySent(e)
	return e
}

// readLoop takes each request the kernel transmits to the device, with its
// timestamp, draws its fate and queues its reply.
func (r *responder) readLoop() {
	defer r.wg.Done()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	buf := make([]byte, 65536)
	oob := make([]byte, 128)
	for {
		if stop, err := wait(r.tapFD, r.stopFD, nil); err != nil || stop {
			if err != nil {
				r.fail(err)
			}
			return
		}
		for {
			n, oobn, _, from, err := unix.Recvmsg(r.tapFD, buf, oob, unix.MSG_DONTWAIT)
			if err == unix.EAGAIN || err == unix.EINTR {
				break
			}
			if err != nil {
				r.fail(fmt.Errorf("icmplab: read tap: %w", err))
				return
			}
			now := time.Now()
			if ll, ok := from.(*unix.SockaddrLinklayer); !ok || ll.Pkttype != unix.PACKET_OUTGOING {
				continue // our own replies, seen on their way in
			}
			req, err := parseEcho(buf[:n])
			if err != nil {
				continue // neighbour/router solicitations, MLD, ...
			}
			sent, ok := kernelTime(oob[:oobn])
			if !ok {
				r.fail(errors.New("icmplab: a request came without a kernel timestamp"))
				sent = now
			}
			delay, drop := r.sched.Draw(req.dst, req.seq)
			e := Echo{Src: req.src, Dst: req.dst, ID: req.id, Seq: req.seq, PayloadHash: req.hash, Size: req.size,
				Sent: sent, Read: now, Delay: delay, Dropped: drop}
			r.mu.Lock()
			r.echoes = append(r.echoes, e)
			if !drop {
				pkt := append([]byte(nil), buf[:n]...)
				r.incoming = append(r.incoming, reply{idx: len(r.echoes) - 1, due: sent.UnixNano() + int64(delay), pkt: pkt[:buildReply(pkt)]})
			}
			r.mu.Unlock()
			if !drop {
				signal(r.wakeFD)
			}
		}
	}
}

// writeLoop writes each reply when it is due: it sleeps (ppoll, 1 ns timer
// slack) until spin before, then busy-waits to the due time.
func (r *responder) writeLoop() {
	defer r.wg.Done()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	defer unix.Prctl(unix.PR_SET_TIMERSLACK, 0, 0, 0, 0) // back to the thread's default
	var h replyHeap
	for {
		r.mu.Lock()
		for _, rp := range r.incoming {
			heap.Push(&h, rp)
		}
		r.incoming = r.incoming[:0]
		r.mu.Unlock()

		var timeout *unix.Timespec
		if len(h) > 0 {
			left := time.Duration(h[0].due - time.Now().UnixNano())
			if left <= spin {
				for time.Now().UnixNano() < h[0].due {
				}
				rp := heap.Pop(&h).(reply)
				start := time.Now()
				_, err := unix.Write(r.tunFD, rp.pkt)
				took := time.Since(start)
				if err != nil {
					r.fail(fmt.Errorf("icmplab: write reply: %w", err))
				}
				r.mu.Lock()
				r.echoes[rp.idx].Replied, r.echoes[rp.idx].WriteTook = start, took
				r.mu.Unlock()
				continue
			}
			ts := unix.NsecToTimespec(int64(left - spin))
			timeout = &ts
		}
		stop, err := wait(r.wakeFD, r.stopFD, timeout)
		if err != nil {
			r.fail(err)
			return
		}
		if stop {
			return
		}
		drain(r.wakeFD)
	}
}

// drainLoop empties the TUN device's queue (the tap already has a copy of
// every request), so it never fills.
func (r *responder) drainLoop() {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		stop, err := wait(r.tunFD, r.stopFD, nil)
		if err != nil || stop {
			if err != nil {
				r.fail(err)
			}
			return
		}
		for {
			if _, err := unix.Read(r.tunFD, buf); err != nil {
				break
			}
		}
	}
}

// wait blocks until fd is readable (false), stopFD is signalled (true) or
// the timeout passes (false).
func wait(fd, stopFD int, timeout *unix.Timespec) (stop bool, err error) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(stopFD), Events: unix.POLLIN}}
	for {
		_, err := unix.Ppoll(fds, timeout, nil)
		if err == unix.EINTR {
			if timeout != nil {
				return false, nil // the caller recomputes the time left
			}
			continue
		}
		if err != nil {
			return false, fmt.Errorf("icmplab: ppoll: %w", err)
		}
		return fds[1].Revents != 0, nil
	}
}

func signal(fd int) {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(fd, one[:])
}

func drain(fd int) {
	var b [8]byte
	_, _ = unix.Read(fd, b[:])
}

// kernelTime extracts the SCM_TIMESTAMPNS control message.
func kernelTime(oob []byte) (time.Time, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
			ts := *(*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			return time.Unix(ts.Sec, ts.Nsec), true
		}
	}
	return time.Time{}, false
}
