// Package speedtest is the speed-test probe: speedtest-go's server
// selection and idle latency, then netpulse's own download and upload load
// on the same protocol (speedtest-go's upload wrote 1 KB per system call and
// its workers ignored cancellation), measured by netpulse (steady-state
// rates from the kernel's byte counters, latency and responsiveness under
// load per draft-ietf-ippm-responsiveness-09, packet loss) and bounded by
// netpulse (exact byte caps, a data budget in bytes on the wire, prompt
// cancellation, lying servers).
//
// A run has four phases, each a child span: server_selection (the public
// list, a server id, a custom URL or one of the probe's servers list, then
// one request to check the server answers), latency (speedtest-go's HTTP
// ping, with the UDP packet-loss test alongside), download and upload
// (connections parallel requests for the configured duration, while
// loaded-latency probes run on separate connections).
//
// Rates are in bytes per second: bytes moved between the end of a warm-up
// (the first quarter of the transfer) and its end, counted on the
// connections (upload: bytes the server acknowledged, from TCP_INFO), not
// at the application, whose counts lead the link by a socket buffer.
package speedtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	st "github.com/showwin/speedtest-go/speedtest"

	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/tcpcc"
)

// ScopeName names this package's meter and tracer.
const ScopeName = "github.com/netpulse/netpulse/internal/probe/speedtest"

// Error types of speed tests, besides probe.ErrResolve, ErrNetwork,
// ErrNoReply, ErrTimeout and ErrCanceled.
const (
	// ErrServerSelection: the public server list or the server id could not
	// be fetched, or no listed server answered.
	ErrServerSelection = "server_selection"
	// ErrProtocol: the server answered, but not as a speed test server.
	ErrProtocol = "protocol"
)

// SkipBudget is the skip reason Admit returns: a run refused by the data
// budget is counted as outcome="skipped", error_type="budget".
const SkipBudget = "budget"

// warmup is the share of a transfer left out of its rate and loaded latency.
const warmup = 0.25

// preflightTimeout bounds the first request to a server: an unreachable or
// silent server fails the run this quickly.
const preflightTimeout = 5 * time.Second

// Options are settings that do not come from the probe's configuration.
type Options struct {
	// StateDir keeps the data budget's counters across restarts
	// (speedtest-budget-<probe>.json); empty keeps them in memory.
	StateDir string
	// Progress, when set, is told what a run is doing (live display).
	Progress func(Progress)
}

// Progress is a run's state, reported a few times a second.
type Progress struct {
	Phase   string        // server_selection, latency, download, upload
	Elapsed time.Duration // since the phase started
	Bytes   int64         // moved in this phase
	Rate    float64       // bytes/s over the last second
	RTT     time.Duration // the latest latency sample
	Server  string        // the server, once selected
}

// Prober runs speed tests for one probe's targets.
type Prober struct {
	cfg     Config
	name    string
	net     *network.Net
	tracer  trace.Tracer
	logger  *slog.Logger
	metrics *metrics
	budget  *budget
	opts    Options

	rotMu    sync.Mutex
	rotation map[string]int // next entry of the servers list, by target name
}

// New creates the prober; cfg was validated by the config package.
func New(probeName string, cfg Config, deps probe.Deps, opts Options) (*Prober, error) {
	if err := tcpcc.Check(cfg.TCPCongestion); err != nil {
		return nil, fmt.Errorf("probe %s: %w", probeName, err)
	}
	statePath := ""
	if opts.StateDir != "" {
		statePath = filepath.Join(opts.StateDir, "speedtest-budget-"+probeName+".json")
	}
	b, err := newBudget(cfg, statePath, time.Now)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(deps.Meters.Meter(ScopeName), b, probeName)
	if err != nil {
		return nil, fmt.Errorf("cannot create speedtest metrics: %w", err)
	}
	return &Prober{cfg: cfg, name: probeName, net: deps.Net, tracer: deps.Tracers.Tracer(ScopeName), logger: deps.Logger,
		metrics: m, budget: b, opts: opts}, nil
}

// Admit implements probe.Admitter: it refuses a run that would exceed the
// data budget, before anything is transferred.
func (p *Prober) Admit(*probe.Target) (string, error) {
	if err := p.budget.admit(); err != nil {
		return SkipBudget, err
	}
	return "", nil
}

// Probe runs one speed test against t (its host names the server).
// The harness asked Admit first.
func (p *Prober) Probe(ctx context.Context, t *probe.Target) (probe.Values, error) {
	r, err := p.Measure(ctx, t)
	return r.Values(), err
}

// Measure runs one speed test and returns everything it measured, also
// when it failed part-way.
func (p *Prober) Measure(ctx context.Context, t *probe.Target) (*Result, error) {
	r := &Result{}
	m := newMeter(p.dialer())
	sess := newSession(m)
	defer sess.close()
	// Loaded-latency probes have a meter of their own: their connections
	// count in the budget but not in the transfers' rates.
	pm := newMeter(p.dialer())
	defer func() {
		down, up := m.wire()
		pdown, pup := pm.wire()
		down, up = down+pdown, up+pup
		r.Bytes = down + up
		p.metrics.count(ctx, t, down, up)
		p.metrics.remember(t, r)
		if err := p.budget.add(down + up); err != nil {
			p.logger.WarnContext(ctx, "speed-test data budget kept in memory only", "error", err)
		}
	}()

	srv, ep, err := p.selectServer(ctx, sess, t, r)
	if err != nil {
		return r, err
	}
	if err := p.idle(ctx, sess, srv, ep, t, r); err != nil {
		return r, err
	}
	client := newProbeClient(pm.dial)
	for _, dir := range []string{Download, Upload} {
		d, err := p.transfer(ctx, sess, srv, ep, t, dir, client)
		if d.Loaded.Samples > 0 {
			// Clamped: on an idle LAN, a new connection's handshake can beat
			// a warm connection's request by a few microseconds.
			d.LatencyIncrease = max(0, d.Loaded.Mean-r.Idle.Mean)
		}
		if dir == Download {
			r.Download = d
		} else {
			r.Upload = d
		}
		if err != nil {
			return r, err
		}
	}
	trace.SpanFromContext(ctx).SetAttributes(
		attribute.Float64("speedtest.download.bytes_per_second", r.Download.Rate),
		attribute.Float64("speedtest.upload.bytes_per_second", r.Upload.Rate))
	return r, nil
}

// progress tells the live display (Options.Progress) and the harness (the
// API's event stream, probe.ReportProgress) what the run is doing.
func (p *Prober) progress(ctx context.Context, pr Progress) {
	if p.opts.Progress != nil {
		p.opts.Progress(pr)
	}
	probe.ReportProgress(ctx, probe.Progress{Phase: pr.Phase, Rate: pr.Rate, Elapsed: pr.Elapsed})
}

// selectServer resolves the target's host (auto, an id, a URL, or one of
// the servers list) to a server and checks it answers latency.txt.
func (p *Prober) selectServer(ctx context.Context, sess *session, t *probe.Target, r *Result) (*st.Server, endpoints, error) {
	ctx, span := p.tracer.Start(ctx, "server_selection", trace.WithAttributes(attribute.String("speedtest.server.selection", t.Host)))
	defer span.End()
	p.progress(ctx, Progress{Phase: "server_selection"})
	var (
		srv *st.Server
		ep  endpoints
		err error
	)
	switch {
	case t.Host != ServersHost:
		srv, ep, err = p.checkedServer(ctx, sess, t.Host)
	case p.cfg.ServerChoice == ChoiceLowestLatency:
		srv, ep, err = p.fastestServer(ctx, sess)
	default:
		srv, ep, err = p.checkedServer(ctx, sess, p.nextServer(t))
	}
	if srv != nil {
		r.Server = Server{ID: srv.ID, Name: srv.Name, Sponsor: srv.Sponsor, Country: srv.Country, URL: srv.URL,
			Host: srv.Host, DistanceKm: srv.Distance}
		span.SetAttributes(attribute.String("speedtest.server.id", srv.ID), attribute.String("speedtest.server.name", srv.Name),
			attribute.String("speedtest.server.sponsor", srv.Sponsor), attribute.String("url.full", srv.URL))
		trace.SpanFromContext(ctx).SetAttributes(attribute.String("speedtest.server.id", srv.ID))
	}
	if err != nil {
		fail(span, ctx, err)
		return nil, endpoints{}, err
	}
	p.progress(ctx, Progress{Phase: "server_selection", Server: srv.Name})
	return srv, ep, nil
}

func (p *Prober) findServer(ctx context.Context, sess *session, host string) (*st.Server, error) {
	if host != "auto" {
		if _, err := strconv.ParseUint(host, 10, 32); err != nil {
			return lib.CustomServer(host) // a URL (validated by the config)
		}
	}
	var (
		srv *st.Server
		err error
	)
	if cerr := libCall(ctx, sess, func() {
		if host != "auto" {
			srv, err = lib.FetchServerByIDContext(ctx, host)
			return
		}
		var list st.Servers
		if list, err = lib.FetchServerListContext(ctx); err == nil {
			if avail := *list.Available(); len(avail) > 0 {
				srv = avail[0] // lowest latency of the nearest servers
			} else {
				err = errors.New("none of the nearest servers answered")
			}
		}
	}); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		what := "the nearest servers"
		if host != "auto" {
			what = "server " + host
		}
		return nil, probe.Fail(ErrServerSelection, fmt.Errorf("cannot find %s on speedtest.net: %w", what, err))
	}
	return srv, nil
}

// latencyURL is the server's latency.txt, next to its upload.php.
func latencyURL(srv *st.Server) string {
	u, err := url.Parse(srv.URL)
	if err != nil {
		return srv.URL
	}
	u.Path = path.Join(path.Dir(u.Path), "latency.txt")
	return u.String()
}

// fail marks span as failed with the run's error type.
func fail(span trace.Span, ctx context.Context, err error) {
	span.RecordError(err)
	span.SetStatus(codes.Error, probe.ErrorType(ctx, err))
}
