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
	// polling period plus wake-up latency, harmless unless it exceeds Delay.
	Read time.Time
	// Delay is the delay the schedule drew; Dropped, whether it dropped the
	// request.
	Delay   time.Duration
	Dropped bool
	// Replied is when the responder began writing the reply to the TUN
	// device; the kernel delivers it to the pinger's socket within that
	// write. Zero while the reply is due.
	Replied time.Time
	// WriteTook is how long that write took.
	WriteTook time.Duration
	// Delivered is the kernel's receive timestamp of the reply (netif_rx,
	// inside the write): the very timestamp SO_TIMESTAMP(NS) hands the
	// pinger's socket. Zero if the tap missed the reply.
	Delivered time.Time
	// Unheard is set by Lab.Run on echoes whose reply was delivered after
	// the pinger had returned (when a loaded machine held the reply back):
	// for that pinger, they were lost.
	Unheard bool
}

// RTT is the round-trip time the echo really had, Delivered-Sent (or
// Replied-Sent if the tap missed the reply): what a pinger timestamping
// both ends in the kernel reports. -1 if dropped, not answered yet, or
// Unheard.
func (e Echo) RTT() time.Duration {
	switch {
	case e.Dropped || e.Replied.IsZero() || e.Unheard:
		return -1
	case e.Delivered.IsZero():
		return e.Replied.Sub(e.Sent)
	}
	return e.Delivered.Sub(e.Sent)
}

// Late is how much later than scheduled the reply was delivered: the
// responder's own error against its schedule (it does not make the truth
// wrong: RTT is what happened, not what was scheduled).
func (e Echo) Late() time.Duration {
	if e.RTT() < 0 {
		return 0
	}
	return e.RTT() - e.Delay
}

// spin is how long before a reply is due the writer stops sleeping and
// busy-waits: it covers the wake-up latency of ppoll with a 1 ns timer slack.
const spin = 150 * time.Microsecond

type reply struct {
	key key
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
	written  map[key]int // replies written, until the tap sees them delivered
	errs     []error

	// passed is when the reader began its last complete pass over the tap
	// (readerDone once it has stopped); caughtUp waits on it.
	passed     time.Time
	readerDone bool
	passCond   *sync.Cond

	wg sync.WaitGroup
}

// The responder's two threads sit in blocking syscalls, and the Go runtime
// leaves a P with a thread in a syscall for up to 10 ms before it hands it
// to another runnable goroutine: on a 2-P machine, a Go pinger in the same
// process would wait for the lab. So each running lab adds two Ps; the
// original GOMAXPROCS returns when the last lab closes.
var procs struct {
	sync.Mutex
	labs, orig int
}

func addProcs(labs int) {
	procs.Lock()
	defer procs.Unlock()
	if procs.labs == 0 {
		procs.orig = runtime.GOMAXPROCS(0)
	}
	procs.labs += labs
	runtime.GOMAXPROCS(procs.orig + 2*procs.labs)
}

func startResponder(s Schedule, tunFD, tapFD int) (*responder, error) {
	r := &responder{sched: s, tunFD: tunFD, tapFD: tapFD, wakeFD: -1, stopFD: -1, written: map[key]int{}}
	r.passCond = sync.NewCond(&r.mu)
	var err error
	if r.wakeFD, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err == nil {
		r.stopFD, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	}
	if err != nil {
		closeFDs(tunFD, tapFD, r.wakeFD)
		return nil, fmt.Errorf("icmplab: eventfd: %w", err)
	}
	addProcs(1)
	r.wg.Add(2)
	go r.readLoop()
	go r.writeLoop()
	return r, nil
}

func (r *responder) close() error {
	signal(r.stopFD)
	r.wg.Wait()
	addProcs(-1)
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

// count and truth first wait for the reader to catch up: a packet the
// kernel handed the tap before the call is in the record, even if the
// machine held the reader back.
func (r *responder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.caughtUp(time.Now())
	return len(r.echoes)
}

func (r *responder) truth(from int) []Echo {
	r.mu.Lock()
	r.caughtUp(time.Now())
	e := append([]Echo(nil), r.echoes[min(from, len(r.echoes)):]...)
	r.mu.Unlock()
	sortBySent(e)
	return e
}

// caughtUp waits, with r.mu held, until the reader has completed a pass
// that began after t (or has stopped).
func (r *responder) caughtUp(t time.Time) {
	for !r.readerDone && !r.passed.After(t) {
		r.passCond.Wait()
	}
}

// readPeriod is how often the reader collects what the tap saw. It polls on
// a timer instead of sleeping on the tap: a sleeping reader would be woken
// from inside the pinger's sendmsg, between the tap's timestamp and the
// driver's, adding ~15 µs (measured) to that sendmsg after the truth's start.
// Requests carry their kernel timestamps, so reading them late costs
// nothing unless a path's delay is shorter than the period. (At 250 µs the
// Go runtime's churn around the frequent syscalls cost 10 % of a core; at
// 1 ms, under 1 %.)
const readPeriod = time.Millisecond

// readLoop takes each request the kernel transmitted to the device, with
// its timestamp, draws its fate and queues its reply; it empties the TUN
// device's own queue as well (the tap has a copy of every request), so it
// never fills.
func (r *responder) readLoop() {
	defer r.wg.Done()
	defer func() {
		r.mu.Lock()
		r.readerDone = true
		r.passCond.Broadcast()
		r.mu.Unlock()
	}()
	lockRealtime()
	buf := make([]byte, 65536)
	oob := make([]byte, 128)
	period := unix.NsecToTimespec(int64(readPeriod))
	for {
		// Only stopFD to watch: ppoll serves as a precise sleep.
		if stop, err := wait(r.stopFD, r.stopFD, &period); err != nil || stop {
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
		pass := time.Now()
		for {
			n, oobn, _, from, err := unix.Recvmsg(r.tapFD, buf, oob, unix.MSG_DONTWAIT)
			if err == unix.EAGAIN {
				r.mu.Lock()
				r.passed = pass
				r.passCond.Broadcast()
				r.mu.Unlock()
				break
			}
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				r.fail(fmt.Errorf("icmplab: read tap: %w", err))
				return
			}
			now := time.Now()
			ll, ok := from.(*unix.SockaddrLinklayer)
			if !ok {
				continue
			}
			stamp, ok := kernelTime(oob[:oobn])
			if !ok {
				r.fail(errors.New("icmplab: a packet came without a kernel timestamp"))
				stamp = now
			}
			if ll.Pkttype != unix.PACKET_OUTGOING {
				r.delivered(buf[:n], stamp) // one of our replies, on its way in
				continue
			}
			req, err := parseEcho(buf[:n], false)
			if err != nil {
				continue // neighbour/router solicitations, MLD, ...
			}
			sent := stamp
			delay, drop := r.sched.Draw(req.dst, req.seq)
			e := Echo{Src: req.src, Dst: req.dst, ID: req.id, Seq: req.seq, PayloadHash: req.hash, Size: req.size,
				Sent: sent, Read: now, Delay: delay, Dropped: drop}
			r.mu.Lock()
			r.echoes = append(r.echoes, e)
			if !drop {
				pkt := append([]byte(nil), buf[:n]...)
				r.incoming = append(r.incoming, reply{key: req.key(), idx: len(r.echoes) - 1, due: sent.UnixNano() + int64(delay), pkt: pkt[:buildReply(pkt)]})
			}
			r.mu.Unlock()
			if !drop {
				signal(r.wakeFD)
			}
		}
	}
}

// lockRealtime wires the goroutine to its thread for good (the thread ends
// with it) and makes the thread real-time (SCHED_FIFO), if allowed, so a
// loaded machine does not delay it: it sleeps in ppoll between packets and
// spins at most spin per reply. Threads the runtime starts later are
// created by its template thread, never by a locked one, so they do not
// inherit the policy (and SCHED_RESET_ON_FORK makes sure).
func lockRealtime() {
	runtime.LockOSThread()
	_ = unix.SchedSetAttr(0, &unix.SchedAttr{
		Size:     unix.SizeofSchedAttr,
		Policy:   unix.SCHED_FIFO,
		Priority: 10,
		Flags:    unix.SCHED_FLAG_RESET_ON_FORK,
	}, 0)
}

// delivered records the kernel's receive timestamp of a reply.
func (r *responder) delivered(pkt []byte, stamp time.Time) {
	rp, err := parseEcho(pkt, true)
	if err != nil {
		return
	}
	k := rp.replyKey()
	r.mu.Lock()
	if i, ok := r.written[k]; ok {
		r.echoes[i].Delivered = stamp
		delete(r.written, k)
	}
	r.mu.Unlock()
}

// writeLoop writes each reply when it is due: it sleeps (ppoll, 1 ns timer
// slack) until spin before, then busy-waits to the due time.
func (r *responder) writeLoop() {
	defer r.wg.Done()
	lockRealtime()
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
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
				r.mu.Lock()
				r.written[rp.key] = rp.idx
				r.mu.Unlock()
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

// wait blocks until fd is readable (false), stopFD is signalled (true) or
// the timeout passes (false).
func wait(fd, stopFD int, timeout *unix.Timespec) (stop bool, err error) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(stopFD), Events: unix.POLLIN}}
	for {
		var left *unix.Timespec
		if timeout != nil {
			t := *timeout // the ppoll syscall overwrites it with the time left
			left = &t
		}
		_, err := unix.Ppoll(fds, left, nil)
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
