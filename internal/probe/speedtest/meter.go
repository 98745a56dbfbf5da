package speedtest

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// sampleEvery is how often a transfer's byte counters are sampled.
const sampleEvery = 50 * time.Millisecond

// meter counts the bytes of every connection the speedtest-go client opens
// (it dials through dial): bytes read and written by the application (the
// byte cap and the budget), and, for rates, the bytes the kernel received
// and the peer acknowledged (TCP_INFO on Linux). Application counts would
// skew short windows: written bytes first fill the socket buffer (an upload
// looks faster at its start by up to the buffer's size), and a reader that
// pauses for 100 ms then drains its socket buffer makes a burst above the
// link's rate.
type meter struct {
	dial0 dialFunc

	read, written atomic.Int64
	// A transfer's byte cap: when read or written reaches its limit (0:
	// none), trip is called once. Checked on every read and write, so a
	// fast link overshoots by what is already in flight, not by a sampling
	// interval's worth.
	readLimit, writeLimit atomic.Int64
	trip                  atomic.Pointer[func()]

	mu     sync.Mutex
	conns  map[*meteredConn]struct{}
	closed tcpCount // of connections already closed
}

// tcpCount is what crossed the link: acknowledged by the peer (sent) and
// received.
type tcpCount struct{ acked, received int64 }

func newMeter(d dialFunc) *meter {
	return &meter{dial0: d, conns: map[*meteredConn]struct{}{}}
}

func (m *meter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := m.dial0(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	mc := &meteredConn{Conn: c, m: m}
	m.mu.Lock()
	m.conns[mc] = struct{}{}
	m.mu.Unlock()
	return mc, nil
}

// tcp returns what crossed the link over every connection (where the OS
// does not say: what was written and read).
func (m *meter) tcp() tcpCount {
	m.mu.Lock()
	defer m.mu.Unlock()
	total := m.closed
	for c := range m.conns {
		n := c.tcp()
		total.acked += n.acked
		total.received += n.received
	}
	return total
}

type meteredConn struct {
	net.Conn
	m             *meter
	written, read atomic.Int64
	once          sync.Once
}

func (c *meteredConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	if total := c.m.read.Add(int64(n)); n > 0 {
		c.m.check(total, &c.m.readLimit)
	}
	return n, err
}

func (c *meteredConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	if total := c.m.written.Add(int64(n)); n > 0 {
		c.m.check(total, &c.m.writeLimit)
	}
	return n, err
}

func (m *meter) check(total int64, limit *atomic.Int64) {
	if l := limit.Load(); l > 0 && total >= l {
		if f := m.trip.Swap(nil); f != nil {
			(*f)()
		}
	}
}

// tcp is what crossed the link on this connection (TCP_INFO), or what was
// written and read where TCP_INFO is unavailable.
func (c *meteredConn) tcp() tcpCount {
	w, r := c.written.Load(), c.read.Load()
	if acked, received, ok := tcpBytes(c.Conn); ok {
		return tcpCount{acked: min(acked, w), received: received}
	}
	return tcpCount{acked: w, received: r}
}

func (c *meteredConn) Close() error {
	c.once.Do(func() {
		n := c.tcp()
		c.m.mu.Lock()
		delete(c.m.conns, c)
		c.m.closed.acked += n.acked
		c.m.closed.received += n.received
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
	tcp0       tcpCount
	mu         sync.Mutex
	samples    []sample // rate-relevant bytes: read (download), acknowledged (upload)
	moved      int64    // bytes that left or reached the application (budget)
	capped     bool
	stoppedAt  time.Duration
	stop       chan struct{}
	done       chan struct{}
}

func (m *meter) begin(upload bool, maxBytes int64, cancel context.CancelFunc,
	progress func(time.Duration, int64, float64)) *transfer {
	tr := &transfer{m: m, upload: upload, maxBytes: maxBytes, cancel: cancel, progress: progress,
		start: time.Now(), read0: m.read.Load(), wr0: m.written.Load(), tcp0: m.tcp(),
		samples: []sample{{}}, stop: make(chan struct{}), done: make(chan struct{})}
	trip := tr.capNow
	m.trip.Store(&trip)
	if upload {
		m.writeLimit.Store(tr.wr0 + maxBytes)
	} else {
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
		}
	}
}

// record takes a sample; capped marks it the last one of the window.
func (tr *transfer) record(capped bool) {
	now := time.Since(tr.start)
	var rateBytes, moved int64
	n := tr.m.tcp()
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
	tr.m.trip.Store(nil)
	tr.m.readLimit.Store(0)
	tr.m.writeLimit.Store(0)
	close(tr.stop)
	<-tr.done
	tr.mu.Lock()
	if !tr.capped {
		tr.stoppedAt = time.Since(tr.start)
	}
	tr.mu.Unlock()
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
