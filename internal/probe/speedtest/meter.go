package speedtest

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/netpulse/netpulse/internal/tcpcc"
)

// sampleEvery is how often a transfer's byte counters are sampled.
const sampleEvery = 50 * time.Millisecond

// meter counts the bytes of every connection a run opens for its
// transfers (they dial through dial): bytes read and written by the
// application (the byte cap), and, from TCP_INFO on Linux, the bytes the
// kernel received and the peer acknowledged (rates), the bytes on the wire
// with their IP and TCP headers (the budget), and the connections' RTT
// estimates (loaded latency). Application counts would skew short windows:
// written bytes first fill the socket buffer (an upload looks faster at
// its start by up to the buffer's size), and a reader that pauses for
// 100 ms then drains its socket buffer makes a burst above the link's rate.
type meter struct {
	dial0 dialFunc

	read, written atomic.Int64
	// A transfer's byte cap (0: none) holds exactly: every read and write
	// first reserves its size, clipped to what is left under the limit,
	// in readRsv or writeRsv (bytes moved plus reservations in progress),
	// and gives back what it did not use. Once nothing is left, the read
	// or write fails with errByteCap and trip is called once (it stops
	// the transfer). Speed and CPU load cannot make a transfer overshoot.
	readLimit, writeLimit atomic.Int64
	readRsv, writeRsv     atomic.Int64
	trip                  atomic.Pointer[func()]

	mu     sync.Mutex
	conns  map[*meteredConn]struct{}
	closed tcpStat // of connections already closed
	cc     string  // congestion control of the last connection dialled
}

// errByteCap fails a read or write past the transfer's byte cap.
var errByteCap = errors.New("max_bytes reached")

// tcpStat is what crossed the link on a connection, as the kernel counts
// it: payload acknowledged by the peer and received in order (rates); all
// bytes sent and received with their IP and TCP headers (the budget); and
// the RTT estimates (srtt of the sender, rcv_rtt of the receiver).
type tcpStat struct {
	acked, received int64
	wireOut, wireIn int64
	// pending is what the send queue will still put on the wire, with
	// headers: counted when the connection closes (the kernel sends it).
	pending     int64
	rtt, rcvRTT time.Duration
}

func (a *tcpStat) add(b tcpStat) {
	a.acked += b.acked
	a.received += b.received
	a.wireOut += b.wireOut
	a.wireIn += b.wireIn
}

func newMeter(d dialFunc) *meter {
	return &meter{dial0: d, conns: map[*meteredConn]struct{}{}}
}

func (m *meter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := m.dial0(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	mc := &meteredConn{Conn: c, m: m}
	cc := ""
	if sc, ok := c.(syscall.Conn); ok {
		cc = tcpcc.Get(sc)
	}
	m.mu.Lock()
	m.conns[mc] = struct{}{}
	if cc != "" {
		m.cc = cc
	}
	m.mu.Unlock()
	return mc, nil
}

// congestion is the congestion control algorithm of the client's
// connections ("" where the OS does not say).
func (m *meter) congestion() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cc
}

// tcp returns what crossed the link over every connection (where the OS
// does not say: what was written and read).
func (m *meter) tcp() tcpStat {
	m.mu.Lock()
	defer m.mu.Unlock()
	total := m.closed
	for c := range m.conns {
		total.add(c.tcp())
	}
	return total
}

// wire returns the bytes on the wire so far, each way: what the budget
// counts.
func (m *meter) wire() (in, out int64) {
	t := m.tcp()
	return t.wireIn, t.wireOut
}

// loadedRTTs returns the RTT estimate of each open connection that moved
// data since the last call (upload: the sender's smoothed RTT; download:
// the receiver's): the draft's in-band loaded-latency samples where
// HTTP/1.1 cannot carry probes. Idle connections (the ping's) are left out.
func (m *meter) loadedRTTs(upload bool) []time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []time.Duration
	for c := range m.conns {
		st, ok := tcpStats(c.Conn)
		if !ok {
			continue
		}
		moved, rtt := st.received, st.rcvRTT
		if upload {
			moved, rtt = st.acked, st.rtt
		}
		if moved > c.lastMoved && rtt > 0 {
			out = append(out, rtt)
		}
		c.lastMoved = moved
	}
	return out
}

type meteredConn struct {
	net.Conn
	m             *meter
	written, read atomic.Int64
	once          sync.Once
	lastMoved     int64 // guarded by m.mu (loadedRTTs)
}

func (c *meteredConn) Read(p []byte) (int, error) {
	want, capped := c.m.reserve(&c.m.readRsv, &c.m.readLimit, len(p))
	if capped && want == 0 {
		return 0, errByteCap
	}
	n, err := c.Conn.Read(p[:want])
	if capped {
		c.m.readRsv.Add(int64(n - want))
	}
	c.read.Add(int64(n))
	c.m.read.Add(int64(n))
	return n, err
}

func (c *meteredConn) Write(p []byte) (int, error) {
	want, capped := c.m.reserve(&c.m.writeRsv, &c.m.writeLimit, len(p))
	if capped && want == 0 {
		return 0, errByteCap
	}
	n, err := c.Conn.Write(p[:want])
	if capped {
		c.m.writeRsv.Add(int64(n - want))
	}
	c.written.Add(int64(n))
	c.m.written.Add(int64(n))
	if err == nil && want < len(p) {
		err = errByteCap
	}
	return n, err
}

// reserve takes up to want bytes under limit (0: none; capped false);
// with nothing left it trips the cap and returns 0.
func (m *meter) reserve(rsv, limit *atomic.Int64, want int) (int, bool) {
	l := limit.Load()
	if l <= 0 {
		return want, false
	}
	for {
		cur := rsv.Load()
		take := min(int64(want), l-cur)
		if take <= 0 {
			if f := m.trip.Swap(nil); f != nil {
				(*f)()
			}
			return 0, true
		}
		if rsv.CompareAndSwap(cur, cur+take) {
			return int(take), true
		}
	}
}

// tcp is what crossed the link on this connection (TCP_INFO), or what was
// written and read where TCP_INFO is unavailable.
func (c *meteredConn) tcp() tcpStat {
	w, r := c.written.Load(), c.read.Load()
	if st, ok := tcpStats(c.Conn); ok {
		st.acked = min(st.acked, w)
		return st
	}
	return tcpStat{acked: w, received: r, wireOut: w, wireIn: r}
}

func (c *meteredConn) Close() error {
	c.once.Do(func() {
		n := c.tcp()
		n.wireOut += n.pending
		c.m.mu.Lock()
		delete(c.m.conns, c)
		c.m.closed.add(n)
		c.m.mu.Unlock()
	})
	return c.Conn.Close()
}

// sample is a transfer's progress at an instant: bytes moved since its start.
type sample struct {
	at    time.Duration
	bytes int64
}

// transfer watches one direction of a test: it samples the meter, stops the
// transfer (cancel) once maxBytes have moved, and reports progress.
type transfer struct {
	m        *meter
	upload   bool
	maxBytes int64
	cancel   context.CancelFunc
	progress func(elapsed time.Duration, bytes int64, rate float64)

	start      time.Time
	read0, wr0 int64
	tcp0       tcpStat
	mu         sync.Mutex
	samples    []sample // rate-relevant bytes: read (download), acknowledged (upload)
	moved      int64    // bytes that left or reached the application (budget)
	capped     bool
	stoppedAt  time.Duration
	stop       chan struct{}
	done       chan struct{}

	// In-band loaded RTTs (the draft's http_l): the load's connections'
	// RTT estimates, every rttEvery once rttFrom has passed.
	rttFrom, rttEvery time.Duration
	lastRTT           time.Duration
	rtts              []time.Duration
}

func (m *meter) begin(upload bool, maxBytes int64, cancel context.CancelFunc, rttFrom, rttEvery time.Duration,
	progress func(time.Duration, int64, float64)) *transfer {
	tr := &transfer{m: m, upload: upload, maxBytes: maxBytes, cancel: cancel, progress: progress,
		start: time.Now(), read0: m.read.Load(), wr0: m.written.Load(), tcp0: m.tcp(),
		samples: []sample{{}}, stop: make(chan struct{}), done: make(chan struct{}),
		rttFrom: rttFrom, rttEvery: max(rttEvery, sampleEvery)}
	trip := tr.capNow
	m.trip.Store(&trip)
	if upload {
		m.writeRsv.Store(tr.wr0)
		m.writeLimit.Store(tr.wr0 + maxBytes)
	} else {
		m.readRsv.Store(tr.read0)
		m.readLimit.Store(tr.read0 + maxBytes)
	}
	go tr.loop()
	return tr
}

// capNow ends the transfer's window (its last sample is taken now) and
// stops the transfer.
func (tr *transfer) capNow() {
	tr.record(true)
	tr.cancel()
}

func (tr *transfer) loop() {
	defer close(tr.done)
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	for {
		select {
		case <-tr.stop:
			tr.record(false)
			return
		case <-tick.C:
			tr.record(false)
			if now := time.Since(tr.start); now >= tr.rttFrom && now-tr.lastRTT >= tr.rttEvery {
				tr.lastRTT = now
				rtts := tr.m.loadedRTTs(tr.upload)
				tr.mu.Lock()
				if !tr.capped {
					tr.rtts = append(tr.rtts, rtts...)
				}
				tr.mu.Unlock()
			}
		}
	}
}

// record takes a sample; capped marks it the last one of the window.
func (tr *transfer) record(capped bool) {
	// The sample's time is the middle of the counters' reading, which
	// takes a while with many connections on a busy machine.
	before := time.Since(tr.start)
	var rateBytes, moved int64
	n := tr.m.tcp()
	now := (before + time.Since(tr.start)) / 2
	if tr.upload {
		rateBytes, moved = n.acked-tr.tcp0.acked, tr.m.written.Load()-tr.wr0
	} else {
		rateBytes, moved = n.received-tr.tcp0.received, tr.m.read.Load()-tr.read0
	}
	tr.mu.Lock()
	tr.moved = max(tr.moved, moved)
	if tr.capped {
		tr.mu.Unlock()
		return // the rate window ended at the cap
	}
	tr.samples = append(tr.samples, sample{at: now, bytes: rateBytes})
	if capped {
		tr.capped, tr.stoppedAt = true, now
	}
	recent := recentRate(tr.samples, time.Second)
	tr.mu.Unlock()
	if tr.progress != nil && !capped {
		tr.progress(now, rateBytes, recent)
	}
}

// end stops sampling; the transfer's window ends now unless the cap ended it.
func (tr *transfer) end() {
	// The last sample first, under the cap: a connection's read-ahead
	// after the load stopped must not count in the transfer's bytes.
	close(tr.stop)
	<-tr.done
	tr.m.trip.Store(nil)
	tr.m.readLimit.Store(0)
	tr.m.writeLimit.Store(0)
	tr.mu.Lock()
	if !tr.capped {
		tr.stoppedAt = time.Since(tr.start)
	}
	tr.mu.Unlock()
}

// loadedRTTs returns the in-band loaded RTT samples (after end).
func (tr *transfer) loadedRTTs() []time.Duration {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.rtts
}

// result returns the steady-state rate (bytes/s), the bytes moved and
// whether the cap stopped the transfer.
func (tr *transfer) result(warmup float64) (rate float64, moved int64, capped bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return steadyRate(tr.samples, tr.stoppedAt, warmup), tr.moved, tr.capped
}

// steadyRate is the mean rate between the end of the warm-up (a share of
// the transfer's duration: TCP slow start and connection set-up) and the
// end of the transfer.
//
// The counters are of in-order bytes: after a loss, TCP holds what arrives
// behind the hole until the retransmission fills it, and the counter then
// jumps (by up to hundreds of kB at 20 Mbit/s). An endpoint sampled during
// a hole would be off by that much. So each endpoint moves, within the
// first and the last fifth of the window, to the sample lying highest
// above the line of the rate estimated so far: a moment without a hole.
func steadyRate(s []sample, end time.Duration, warmup float64) float64 {
	if len(s) < 2 || end <= 0 {
		return 0
	}
	from := time.Duration(float64(end) * warmup)
	first, last := -1, -1
	for i, x := range s {
		if x.at > end {
			break
		}
		if first < 0 && x.at >= from {
			first = i
		}
		last = i
	}
	if first < 0 || last <= first {
		first, last = 0, len(s)-1
	}
	slope := func(a, b int) float64 {
		dt := (s[b].at - s[a].at).Seconds()
		if dt <= 0 {
			return 0
		}
		return float64(s[b].bytes-s[a].bytes) / dt
	}
	highest := func(lo, hi int, rate float64) int {
		best := lo
		for i := lo; i <= hi; i++ {
			if float64(s[i].bytes)-rate*s[i].at.Seconds() > float64(s[best].bytes)-rate*s[best].at.Seconds() {
				best = i
			}
		}
		return best
	}
	rate := slope(first, last)
	edge := (last - first) / 5
	for range 2 {
		a, b := highest(first, first+edge, rate), highest(last-edge, last, rate)
		if b <= a {
			break
		}
		rate = slope(a, b)
	}
	return rate
}

// recentRate is the rate over the last window of samples (live progress).
func recentRate(s []sample, window time.Duration) float64 {
	if len(s) < 2 {
		return 0
	}
	last := s[len(s)-1]
	i := len(s) - 1
	for i > 0 && last.at-s[i-1].at <= window {
		i--
	}
	if i == len(s)-1 {
		i--
	}
	dt := (last.at - s[i].at).Seconds()
	if dt <= 0 {
		return 0
	}
	return float64(last.bytes-s[i].bytes) / dt
}
