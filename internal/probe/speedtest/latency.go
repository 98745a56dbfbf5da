package speedtest

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptrace"
	"slices"
	"sync"
	"time"
)

// Loaded-latency probes: how long one may take, and how many may be in
// flight (a link with seconds of queue would otherwise pile them up).
const (
	loadedProbeTimeout  = 5 * time.Second
	loadedProbeInFlight = 8
)

// loadedProber measures latency while a transfer fills the link, in the
// spirit of the responsiveness test (RPM, draft-ietf-ippm-responsiveness):
// every interval it opens a new connection to the test server and fetches
// latency.txt, timing the TCP handshake and the HTTP request/response
// separately; each is one round trip through the loaded queues. These are
// the draft's "foreign" probes; its in-band probes on the load-generating
// connections are impossible here, since speedtest-go's HTTP/1.1
// connections are busy with one transfer at a time.
type loadedProber struct {
	client   *http.Client
	url      string
	interval time.Duration
	from     time.Time // probes started before (the warm-up) are not kept
	record   func(ctx context.Context, rtt time.Duration)

	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	rtts   []timedRTT
	// The draft's foreign components, each probe's own: TCP handshake,
	// TLS handshake (https servers), HTTP request to first response byte.
	tcp, tls, http []time.Duration
}

type timedRTT struct {
	at  time.Time
	rtt time.Duration
}

// newProbeClient returns the client of loaded-latency probes: a new
// connection per probe, dialled with d.
func newProbeClient(d dialFunc) *http.Client {
	return &http.Client{CheckRedirect: limitRedirects, Transport: &http.Transport{
		DialContext:       d,
		DisableKeepAlives: true,
		ForceAttemptHTTP2: false,
	}}
}

func startLoaded(ctx context.Context, client *http.Client, url string, interval time.Duration, warmup time.Duration,
	record func(context.Context, time.Duration)) *loadedProber {
	ctx, cancel := context.WithCancel(ctx)
	lp := &loadedProber{client: client, url: url, interval: interval, from: time.Now().Add(warmup),
		record: record, cancel: cancel}
	lp.wg.Go(func() { lp.loop(ctx) })
	return lp
}

func (lp *loadedProber) loop(ctx context.Context) {
	tick := time.NewTicker(lp.interval)
	defer tick.Stop()
	inFlight := make(chan struct{}, loadedProbeInFlight)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case inFlight <- struct{}{}:
		default:
			continue // the queue is that deep: skip a tick rather than pile up
		}
		lp.wg.Go(func() {
			defer func() { <-inFlight }()
			lp.probe(ctx)
		})
	}
}

func (lp *loadedProber) probe(ctx context.Context) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, loadedProbeTimeout)
	defer cancel()
	var connStart, connDone, tlsStart, tlsDone, wrote, first time.Time
	trace := &httptrace.ClientTrace{
		TLSHandshakeStart: func() { tlsStart = time.Now() },
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			if err == nil {
				tlsDone = time.Now()
			}
		},
		ConnectStart: func(string, string) { connStart = time.Now() },
		ConnectDone: func(_, _ string, err error) {
			if err == nil {
				connDone = time.Now()
			}
		},
		WroteRequest:         func(httptrace.WroteRequestInfo) { wrote = time.Now() },
		GotFirstResponseByte: func() { first = time.Now() },
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, lp.url, nil)
	if err != nil {
		return
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := lp.client.Do(req)
	if err != nil {
		return // lost in the queue or cut at the end of the phase: not a sample
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxLatencyBody))
	_ = resp.Body.Close()
	if ctx.Err() != nil || resp.StatusCode != http.StatusOK || start.Before(lp.from) {
		return
	}
	if connStart.IsZero() || wrote.IsZero() {
		return
	}
	tcpRTT, httpRTT := connDone.Sub(connStart), first.Sub(wrote)
	lp.mu.Lock()
	if tcpRTT > 0 {
		lp.tcp = append(lp.tcp, tcpRTT)
	}
	if httpRTT > 0 {
		lp.http = append(lp.http, httpRTT)
	}
	if !tlsStart.IsZero() && tlsDone.After(tlsStart) {
		lp.tls = append(lp.tls, tlsDone.Sub(tlsStart))
	}
	lp.mu.Unlock()
	for _, rtt := range []time.Duration{tcpRTT, httpRTT} {
		if rtt > 0 {
			lp.mu.Lock()
			lp.rtts = append(lp.rtts, timedRTT{at: start, rtt: rtt})
			lp.mu.Unlock()
			lp.record(ctx, rtt)
		}
	}
}

// foreign returns the draft's foreign components (after stop).
func (lp *loadedProber) foreign() (tcp, tls, http []time.Duration) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return lp.tcp, lp.tls, lp.http
}

// stop ends probing (probes in flight are cut: the load is gone) and
// returns the round trips in the order their probes started.
func (lp *loadedProber) stop() []time.Duration {
	lp.cancel()
	lp.wg.Wait()
	lp.mu.Lock()
	defer lp.mu.Unlock()
	slices.SortStableFunc(lp.rtts, func(a, b timedRTT) int { return a.at.Compare(b.at) })
	out := make([]time.Duration, len(lp.rtts))
	for i, r := range lp.rtts {
		out[i] = r.rtt
	}
	return out
}

// Latency summarises round-trip times, in seconds.
type Latency struct {
	// Mean is the mean of idle samples, and the trimmed mean (the slowest
	// 5 % dropped, as the responsiveness draft does) of loaded ones.
	Mean    float64 `json:"mean_seconds"`
	Min     float64 `json:"min_seconds"`
	Max     float64 `json:"max_seconds"`
	Jitter  float64 `json:"jitter_seconds"`
	Samples int     `json:"samples"`
}

// summarize computes a Latency from samples in the order they were taken;
// trim drops the slowest share from the mean.
func summarize(rtts []time.Duration, trim float64) Latency {
	if len(rtts) == 0 {
		return Latency{}
	}
	l := Latency{Samples: len(rtts), Min: rtts[0].Seconds(), Max: rtts[0].Seconds()}
	var diffs float64
	for i, r := range rtts {
		l.Min, l.Max = min(l.Min, r.Seconds()), max(l.Max, r.Seconds())
		if i > 0 {
			diffs += (r - rtts[i-1]).Abs().Seconds()
		}
	}
	if len(rtts) > 1 {
		l.Jitter = diffs / float64(len(rtts)-1)
	}
	sorted := slices.Clone(rtts)
	slices.Sort(sorted)
	keep := max(1, len(sorted)-int(float64(len(sorted))*trim))
	var sum float64
	for _, r := range sorted[:keep] {
		sum += r.Seconds()
	}
	l.Mean = sum / float64(keep)
	return l
}
