// Package agent assembles netpulse: telemetry, one prober per configured
// probe, the scheduler that runs every (probe, target) pair, and the HTTP
// server. Run blocks until its context ends, then shuts down in order:
// runs are cancelled, HTTP drains, telemetry flushes.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/sync/errgroup"

	"github.com/netpulse/netpulse/internal/api"
	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/faults"
	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probes"
	"github.com/netpulse/netpulse/internal/scheduler"
	"github.com/netpulse/netpulse/internal/server"
	"github.com/netpulse/netpulse/internal/telemetry"
	"github.com/netpulse/netpulse/internal/version"
	"github.com/netpulse/netpulse/internal/web"
)

// Shutdown budget: HTTP drain and the final telemetry flush each get this long.
const shutdownTimeout = 5 * time.Second

// Options configures an agent.
type Options struct {
	Config        *config.Config
	ListenAddress string
	// Listener, when set, is served instead of binding ListenAddress: a
	// server.Handoff's, which keeps the socket across reloads.
	Listener net.Listener
	// Reload, when set, is the status of configuration loads that this
	// agent exports, and its Request serves POST /-/reload.
	Reload *ReloadStatus
	Logger *slog.Logger
	Build  version.Info
	// WebConfigFile is --web.config.file (server.Options.WebConfigFile).
	WebConfigFile string
}

// Agent is a configured, listening, not yet running netpulse. Its
// telemetry, harness, scheduler, history and server live as long as it
// does; its probers and targets change with Apply (reload by difference).
type Agent struct {
	logger    *slog.Logger
	telemetry *telemetry.Telemetry
	runner    *probe.Runner
	scheduler *scheduler.Scheduler
	server    *server.Server
	results   *results // history.go
	build     version.Info
	// deps is what probers get; each gets its own scoped meters.
	deps probe.Deps
	// shared holds the resources probers share, for the agent's lifetime.
	shared *probe.Shared
	// seriesLimit is the SDK's per-instrument series limit set at start.
	seriesLimit int
	loopback    bool

	// api and judge are replaced by Apply; the server and the harness read
	// the current ones.
	api   atomic.Pointer[api.API]
	judge atomic.Pointer[judgeSlot]
	// outages is the outage log of the current targets (outages.go).
	outages atomic.Pointer[outageSlot]
	// routeChanged, when set (tiers: auto with reloads), asks for a reload
	// when the default route changes, to discover the tiers again.
	routeChanged func()

	// applyMu makes reloads one at a time.
	applyMu sync.Mutex
	mu      sync.Mutex
	cfg     *config.Config
	probes  map[string]*liveProbe // by probe name
	targets []*probe.Target       // in configuration order
	retired []*proberSlot         // replaced probers, closed after their last run
	// group runs the probers' services while Run runs (nil otherwise).
	group    *errgroup.Group
	groupCtx context.Context
}

// New builds the agent: telemetry, probers, schedule and listener. Nothing
// runs until Run.
func New(ctx context.Context, opts Options) (_ *Agent, err error) {
	cfg := opts.Config
	if err := faults.AutoTiers(cfg, probes.Registry, opts.Logger); err != nil {
		return nil, err
	}
	tcfg := cfg.Telemetry
	if tcfg.CardinalityLimit == 0 {
		tcfg.CardinalityLimit = cardinalityLimit(cfg)
	}
	tel, err := telemetry.Setup(ctx, tcfg, cfg.Global,
		telemetry.Build{Version: opts.Build.Version, Revision: opts.Build.Revision}, opts.Logger)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = tel.Shutdown(context.WithoutCancel(ctx))
		}
	}()
	if err := registerBuildInfo(tel.Meters(), opts.Build); err != nil {
		return nil, err
	}
	var requestReload func()
	if opts.Reload != nil {
		if err := opts.Reload.register(tel.Meters()); err != nil {
			return nil, err
		}
		requestReload = opts.Reload.Request
	}
	runner, err := probe.NewRunner(tel.Meters(), tel.Tracers(), opts.Logger, cfg.API.SpeedtestMinInterval)
	if err != nil {
		return nil, fmt.Errorf("cannot create probe runner: %w", err)
	}
	a := &Agent{logger: opts.Logger, telemetry: tel, runner: runner, build: opts.Build,
		seriesLimit: tcfg.CardinalityLimit, probes: map[string]*liveProbe{}}
	if a.results, err = openResults(cfg.Storage, tel.Meters(), opts.Logger); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			a.results.close()
		}
	}()
	runner.OnResult = func(r probe.Result) {
		a.results.onResult(r)
		a.judge.Load().observe(r)
		a.outages.Load().observe(r)
	}
	a.shared = &probe.Shared{}
	defer func() {
		if err != nil {
			a.closeProbers()
		}
	}()
	a.deps = probe.Deps{Meters: tel.Meters(), Tracers: tel.Tracers(), Logger: opts.Logger,
		Net: network.New(network.NewResolver(cfg.Global.Resolver), tel.Tracers()), StateDir: cfg.Storage.DataDir(),
		Shared: a.shared, Evidence: a.results.evidence}
	runner.OnStart, runner.OnProgress = a.results.feed.Running, a.results.feed.Progress // run now joins; live progress
	if cfg.Tiers == "auto" {
		a.routeChanged = requestReload
	}
	a.scheduler = scheduler.New(nil)
	if _, err := a.apply(cfg); err != nil {
		return nil, err
	}
	sopts := server.Options{Metrics: tel.Metrics, Gatherer: tel.Gatherer, Version: opts.Build.Version, Logger: opts.Logger,
		API: http.HandlerFunc(a.serveAPI), Page: web.Handler(), OnShutdown: func() { a.api.Load().Shutdown() },
		Reload: requestReload, WebConfigFile: opts.WebConfigFile}
	if opts.Listener != nil {
		a.server = server.New(opts.Listener, sopts)
	} else if a.server, err = server.Listen(opts.ListenAddress, sopts); err != nil {
		return nil, err
	}
	a.loopback = api.IsLoopback(a.server.Addr())
	a.api.Load().SetLoopback(a.loopback)
	return a, nil
}

// traceURL is api.trace_url when traces are exported, else "": a link to a
// trace that was never sent would be dead (the page shows none then).
func traceURL(cfg *config.Config, tel *telemetry.Telemetry) string {
	if !tel.Exemplars {
		return ""
	}
	return cfg.API.TraceURL
}

// serveAPI serves /api/ with the current configuration's API.
func (a *Agent) serveAPI(w http.ResponseWriter, r *http.Request) { a.api.Load().ServeHTTP(w, r) }

// seriesPerTarget bounds the series one target can have in one
// instrument: netpulse_probe_runs_total has one per outcome and error type
// (success; failure and timeout by about a dozen error types; skipped by
// four reasons); the others have at most three (direction, phase).
const seriesPerTarget = 24

// cardinalityLimit sizes the SDK's per-instrument series limit from the
// configuration: every target's worst case, twice over (targets renamed by
// a reload keep their old series until restart), and never below the
// SDK's default of 2,000. The SDK's memory grows with the series that
// exist, not with the limit.
func cardinalityLimit(cfg *config.Config) int {
	series := 0
	for _, p := range cfg.Probes {
		per := seriesPerTarget
		// A type with more series per target says so (a path probe: one
		// per hop, up to max_hops).
		if s, ok := p.Settings.(interface{ SeriesPerTarget() int }); ok {
			per = max(per, s.SeriesPerTarget())
		}
		series += per * len(p.Targets)
	}
	return max(2000, 2*series)
}

// pageURL is the address a person opens: a wildcard listener is reached
// through localhost.
func pageURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// Addr is the HTTP server's bound address.
func (a *Agent) Addr() net.Addr { return a.server.Addr() }

// Run probes and serves until ctx ends, then shuts everything down within a
// bounded time and returns the first error.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	a.logger.Info("netpulse started", "url", pageURL(a.Addr()), "targets", len(a.targets),
		"otlp", a.telemetry.OTLP, "exemplars", a.telemetry.Exemplars)
	wctx, stopWriter := context.WithCancel(context.WithoutCancel(ctx))
	go a.results.run(wctx)
	outagesDone := make(chan struct{})
	go func() {
		defer close(outagesDone)
		a.writeOutages(wctx)
	}()
	g, gctx := errgroup.WithContext(ctx)
	a.group, a.groupCtx = g, gctx
	g.Go(func() error { return a.server.Serve(gctx, shutdownTimeout) })
	for _, lp := range a.probes {
		a.startService(lp.slot)
	}
	g.Go(func() error { a.scheduler.Run(gctx); return nil })
	if a.routeChanged != nil {
		g.Go(func() error {
			if err := faults.WatchRoutes(gctx, a.routeChanged, a.logger); err != nil {
				a.logger.Warn("tiers: auto: route changes are not followed", "error", err)
			}
			return nil
		})
	}
	a.mu.Unlock()
	a.server.SetReady(true)
	err := g.Wait()
	a.mu.Lock()
	a.group, a.groupCtx = nil, nil
	a.mu.Unlock()
	// The scheduler has stopped: no run uses a prober any more.
	a.closeProbers()
	// Write the last results, then close.
	stopWriter()
	<-a.results.done
	<-outagesDone
	a.results.close()

	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if terr := a.telemetry.Shutdown(flushCtx); terr != nil {
		a.logger.Warn("telemetry shutdown incomplete", "error", terr)
	}
	a.logger.Info("netpulse stopped")
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// closeProbers releases what probers own (probe.Service, io.Closer),
// replaced ones included, and the resources they share.
func (a *Agent) closeProbers() {
	a.mu.Lock()
	all := slices.Clone(a.retired)
	for _, lp := range a.probes {
		all = append(all, lp.slot)
	}
	a.retired = nil
	a.mu.Unlock()
	for _, s := range all {
		a.closeSlot(s)
	}
	if err := a.shared.Close(); err != nil {
		a.logger.Warn("closing shared probe resources failed", "error", err)
	}
}

func registerBuildInfo(mp metric.MeterProvider, b version.Info) error {
	m := mp.Meter("github.com/netpulse/netpulse/internal/agent")
	attrs := metric.WithAttributes(attribute.String("version", b.Version),
		attribute.String("revision", b.Revision), attribute.String("goversion", b.GoVersion))
	_, err := m.Int64ObservableGauge("netpulse.build.info",
		metric.WithDescription("Build information; the value is always 1."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(1, attrs)
			return nil
		}))
	return err
}
