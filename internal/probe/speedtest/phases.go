package speedtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	st "github.com/showwin/speedtest-go/speedtest"

	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe"
)

// preflightURL fetches latency.txt (or a responsiveness server's small
// URL) once, within preflightTimeout, so that an unreachable, silent or
// foreign server fails the run at once with a precise error type (speedtest-go would retry for seconds and say only
// "server connect timeout").
func (p *Prober) preflightURL(ctx context.Context, sess *session, u string) error {
	pctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, u, nil)
	if err != nil {
		return probe.Fail(ErrProtocol, fmt.Errorf("server URL %s: %w", u, err))
	}
	resp, err := (&http.Client{Transport: sess, CheckRedirect: limitRedirects}).Do(req)
	sess.takeErr()
	if err == nil {
		// The whole body, within the same timeout: a server that stalls
		// it would stall every latency sample.
		var n int64
		n, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxLatencyBody+1))
		_ = resp.Body.Close()
		if err == nil && n > maxLatencyBody {
			return probe.Fail(ErrProtocol, fmt.Errorf("GET %s: the body goes on past %d bytes: not a speed test server", u, maxLatencyBody))
		}
	}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return ctx.Err() // the run's own timeout or cancellation
	case pctx.Err() != nil:
		return probe.Fail(probe.ErrNoReply, fmt.Errorf("GET %s: no complete answer within %s", u, preflightTimeout))
	case errors.Is(err, errRedirects):
		return probe.Fail(ErrProtocol, fmt.Errorf("GET %s: %w", u, err))
	default:
		return probe.Fail(classify(err), fmt.Errorf("GET %s: %w", u, err))
	}
	if resp.StatusCode != http.StatusOK {
		return probe.Fail(ErrProtocol, fmt.Errorf("GET %s: %s: not a speed test server", u, resp.Status))
	}
	return nil
}

// maxLatencyBody bounds latency.txt: Ookla's is 10 bytes ("test=test\n").
const maxLatencyBody = 64 << 10

// maxRedirects is how many redirects the run's requests follow: a
// server moved elsewhere, not a loop.
const maxRedirects = 3

var errRedirects = fmt.Errorf("more than %d redirects (a redirect loop?)", maxRedirects)

// limitRedirects is the CheckRedirect of every client of a run.
func limitRedirects(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return fmt.Errorf("%w: %s", errRedirects, req.URL.Redacted())
	}
	return nil
}

// classify maps a transport error to an error type: the network package's
// classification, except that a connection closed without an HTTP answer,
// or anything it cannot place (a malformed response, a TLS failure), means
// something answered, not as an HTTP speed test server.
func classify(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrProtocol
	}
	if t := network.Classify(err); t != probe.ErrInternal {
		return t
	}
	return ErrProtocol
}

// idle measures latency with speedtest-go's HTTP ping (10 requests on a
// warm connection, 200 ms apart) and, alongside, packet loss.
func (p *Prober) idle(ctx context.Context, sess *session, srv *st.Server, ep endpoints, t *probe.Target, r *Result) error {
	ctx, span := p.tracer.Start(ctx, "latency")
	defer span.End()
	start := time.Now()
	p.progress(ctx, Progress{Phase: "latency", Server: srv.Name})

	var (
		mu   sync.Mutex
		rtts []time.Duration
		wg   sync.WaitGroup
		loss lossResult
		lerr = errors.New("packet-loss test disabled")
	)
	if p.cfg.PacketLossEnabled() && srv.Host != "" && !ep.nq {
		wg.Go(func() { loss, lerr = measureLoss(ctx, p.dialer(), srv.Host) })
	}
	sample := func(d time.Duration) {
		p.metrics.recordRTT(ctx, t, Idle, d.Seconds())
		mu.Lock()
		rtts = append(rtts, d)
		mu.Unlock()
		p.progress(ctx, Progress{Phase: "latency", Elapsed: time.Since(start), RTT: d, Server: srv.Name})
	}
	var perr, err error
	if ep.nq {
		perr = httpPing(ctx, &http.Client{Transport: sess, CheckRedirect: limitRedirects}, ep.small, 10, 200*time.Millisecond, sample)
		err = ctx.Err()
	} else {
		err = libCall(ctx, sess, func() { perr = srv.PingTestContext(ctx, sample) })
	}
	wg.Wait()
	if err == nil {
		err = perr
	}
	mu.Lock()
	r.Idle = summarize(rtts, 0)
	mu.Unlock()
	if lerr == nil {
		v := loss.ratio()
		r.PacketLoss = &v
		span.SetAttributes(attribute.Int("speedtest.loss.sent", loss.sent), attribute.Int("speedtest.loss.received", loss.received))
	} else {
		span.SetAttributes(attribute.String("speedtest.loss.unavailable", lerr.Error()))
	}
	span.SetAttributes(attribute.Int("speedtest.latency.samples", r.Idle.Samples), attribute.Float64("speedtest.latency.mean", r.Idle.Mean))
	if err == nil && r.Idle.Samples == 0 {
		err = errors.New("no latency sample")
	}
	if err != nil {
		if ctx.Err() == nil {
			err = probe.Fail(p.failure(sess, probe.ErrNoReply), fmt.Errorf("latency test: %w", p.cause(sess, err)))
		}
		fail(span, ctx, err)
		return err
	}
	sess.takeErr()
	return nil
}

// failure is the error type of the first request failure of the phase, or
// def when every request succeeded.
func (p *Prober) failure(sess *session, def string) string {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	var se *statusError
	switch {
	case sess.firstErr == nil:
		return def
	case errors.As(sess.firstErr, &se):
		return ErrProtocol
	}
	return classify(sess.firstErr)
}

// cause prefers the first request failure, which says what went wrong, to
// speedtest-go's summary.
func (p *Prober) cause(sess *session, err error) error {
	if first := sess.takeErr(); first != nil {
		return first
	}
	return err
}

// transfer runs one direction: speedtest-go's workers for the configured
// duration (stopped early at max_bytes), loaded-latency probes alongside.
func (p *Prober) transfer(ctx context.Context, sess *session, srv *st.Server, ep endpoints, t *probe.Target, dir string,
	client *http.Client) (*Direction, error) {
	ctx, span := p.tracer.Start(ctx, dir, trace.WithAttributes(
		attribute.Int("speedtest.connections", p.cfg.Connections),
		attribute.Float64("speedtest.duration", p.cfg.Duration.Seconds()),
		attribute.Int64("speedtest.max_bytes", int64(p.cfg.MaxBytes))))
	defer span.End()
	upload := dir == Upload
	phaseCtx, stop := context.WithCancel(ctx)
	defer stop()

	progress := func(elapsed time.Duration, bytes int64, rate float64) {
		p.progress(ctx, Progress{Phase: dir, Elapsed: elapsed, Bytes: bytes, Rate: rate, Server: srv.Name})
	}
	sess.takeErr()
	// New connections for the load: an idle one from an earlier phase has
	// a read pending since before the cap (net/http reads ahead), which
	// would let its first response's bytes past the cap.
	sess.transport.CloseIdleConnections()
	warm := time.Duration(float64(p.cfg.Duration) * warmup)
	tr := sess.meter.begin(upload, int64(p.cfg.MaxBytes), stop, warm, p.cfg.LatencyInterval, progress)
	lp := startLoaded(phaseCtx, client, ep.small, p.cfg.LatencyInterval, warm,
		func(ctx context.Context, rtt time.Duration) { p.metrics.recordRTT(ctx, t, dir, rtt.Seconds()) })
	loadCtx, cancel := context.WithTimeout(phaseCtx, p.cfg.Duration)
	loadClient := &http.Client{Transport: sess, CheckRedirect: limitRedirects}
	if upload {
		uploadLoad(loadCtx, loadClient, ep.upload, p.cfg.Connections)
	} else {
		downloadLoad(loadCtx, loadClient, ep.download, p.cfg.Connections)
	}
	cancel()
	err := ctx.Err()
	tr.end()
	rtts := lp.stop()
	rate, moved, capped := tr.result(warmup)
	d := &Direction{Name: dir, Rate: rate, Bytes: moved, Capped: capped, Loaded: summarize(rtts, 0.05)}
	if upload {
		d.TCPCongestion = sess.meter.congestion()
	} else {
		sess.mu.Lock()
		d.TCPCongestion = sess.serverCC
		sess.mu.Unlock()
	}
	tcpF, tlsF, httpF := lp.foreign()
	d.Responsiveness = responsiveness(tcpF, tlsF, httpF, tr.loadedRTTs())
	d.RPM = d.Responsiveness.RPM
	span.SetAttributes(attribute.Float64("speedtest.bytes_per_second", rate), attribute.Int64("speedtest.bytes", moved),
		attribute.Bool("speedtest.capped", capped), attribute.String("speedtest.tcp_congestion", d.TCPCongestion), attribute.Int("speedtest.loaded_latency.samples", d.Loaded.Samples),
		attribute.Float64("speedtest.loaded_latency.mean", d.Loaded.Mean),
		attribute.Float64("speedtest.rpm", d.RPM), attribute.Float64("speedtest.rpm.foreign", d.Responsiveness.ForeignRPM),
		attribute.Float64("speedtest.rpm.loaded", d.Responsiveness.LoadedRPM),
		attribute.Int("speedtest.rpm.loaded.samples", d.Responsiveness.Samples.Loaded))
	if err == nil && rate <= 0 {
		err = probe.Fail(p.failure(sess, probe.ErrNoReply), fmt.Errorf("%s: no data moved: %w", dir,
			p.cause(sess, errors.New("the server sent or accepted nothing"))))
	}
	if err != nil {
		fail(span, ctx, err)
		return d, err
	}
	sess.takeErr()
	return d, nil
}
