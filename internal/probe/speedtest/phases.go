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

// preflight fetches latency.txt once, within preflightTimeout, so that an
// unreachable, silent or foreign server fails the run at once with a
// precise error type (speedtest-go would retry for seconds and say only
// "server connect timeout").
func (p *Prober) preflight(ctx context.Context, sess *session, srv *st.Server) error {
	pctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	u := latencyURL(srv)
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, u, nil)
	if err != nil {
		return probe.Fail(ErrProtocol, fmt.Errorf("server URL %s: %w", srv.URL, err))
	}
	resp, err := (&http.Client{Transport: sess}).Do(req)
	sess.takeErr()
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return ctx.Err() // the run's own timeout or cancellation
	case pctx.Err() != nil:
		return probe.Fail(probe.ErrNoReply, fmt.Errorf("GET %s: no answer within %s", u, preflightTimeout))
	default:
		return probe.Fail(classify(err), fmt.Errorf("GET %s: %w", u, err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return probe.Fail(ErrProtocol, fmt.Errorf("GET %s: %s: not a speed test server", u, resp.Status))
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
func (p *Prober) idle(ctx context.Context, sess *session, srv *st.Server, t *probe.Target, r *Result) error {
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
	if p.cfg.PacketLossEnabled() && srv.Host != "" {
		wg.Go(func() { loss, lerr = measureLoss(ctx, p.dialer(), srv.Host) })
	}
	var perr error
	err := libCall(ctx, sess, func() {
		perr = srv.PingTestContext(ctx, func(d time.Duration) {
			p.metrics.recordRTT(ctx, t, Idle, d.Seconds())
			mu.Lock()
			rtts = append(rtts, d)
			mu.Unlock()
			p.progress(ctx, Progress{Phase: "latency", Elapsed: time.Since(start), RTT: d, Server: srv.Name})
		})
	})
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
func (p *Prober) transfer(ctx context.Context, sess *session, srv *st.Server, t *probe.Target, dir, probeURL string,
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
	tr := sess.meter.begin(upload, int64(p.cfg.MaxBytes), stop, progress)
	lp := startLoaded(phaseCtx, client, probeURL, p.cfg.LatencyInterval, time.Duration(float64(p.cfg.Duration)*warmup),
		func(ctx context.Context, rtt time.Duration) { p.metrics.recordRTT(ctx, t, dir, rtt.Seconds()) })
	err := libCall(ctx, sess, func() {
		// A new DataManager rather than Reset: handlers and totals of the
		// previous phase would otherwise carry over, and its upload-worker
		// tuner outlives the phase by up to a second, reading the manager's
		// state that Reset rewrites (a data race in speedtest-go).
		lib.Manager = st.NewDataManager()
		lib.SetNThread(p.cfg.Connections)
		lib.SetCaptureTime(p.cfg.Duration)
		if upload {
			_ = srv.UploadTestContext(phaseCtx)
		} else {
			_ = srv.DownloadTestContext(phaseCtx)
		}
	})
	tr.end()
	rtts := lp.stop()
	rate, moved, capped := tr.result(warmup)
	d := &Direction{Name: dir, Rate: rate, Bytes: moved, Capped: capped, Loaded: summarize(rtts, 0.05)}
	if d.Loaded.Samples > 0 {
		d.RPM = 60 / d.Loaded.Mean
	}
	if err == nil { // else speedtest-go may still be writing them
		library := float64(srv.DLSpeed)
		if upload {
			library = float64(srv.ULSpeed)
		}
		span.SetAttributes(attribute.Float64("speedtest.library_bytes_per_second", library))
	}
	span.SetAttributes(attribute.Float64("speedtest.bytes_per_second", rate), attribute.Int64("speedtest.bytes", moved),
		attribute.Bool("speedtest.capped", capped), attribute.Int("speedtest.loaded_latency.samples", d.Loaded.Samples),
		attribute.Float64("speedtest.loaded_latency.mean", d.Loaded.Mean))
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
