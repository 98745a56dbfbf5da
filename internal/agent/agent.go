// Package agent assembles netpulse: telemetry, one prober per configured
// probe, the scheduler that runs every (probe, target) pair, and the HTTP
// server. Run blocks until its context ends, then shuts down in order:
// runs are cancelled, HTTP drains, telemetry flushes.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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

// Agent is a configured, listening, not yet running netpulse.
type Agent struct {
	logger    *slog.Logger
	telemetry *telemetry.Telemetry
	runner    *probe.Runner
	scheduler *scheduler.Scheduler
	jobs      []scheduler.Job
	server    *server.Server
	targets   []*probe.Target
	results   *results      // history.go
	judge     *faults.Judge // nil without tiered targets
	outages   *faults.Outages
	// routeChanged, when set (tiers: auto with reloads), asks for a reload
	// when the default route changes, to discover the tiers again.
	routeChanged func()
	api          *api.API
	// probers and the resources they share live as long as the agent.
	probers []probe.Prober
	shared  *probe.Shared
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
	a := &Agent{logger: opts.Logger, telemetry: tel, runner: runner}
	token, err := cfg.API.ResolveToken()
	if err != nil {
		return nil, err
	}
	if a.results, err = openResults(cfg.Storage, tel.Meters(), opts.Logger); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			a.results.close()
		}
	}()
	runner.OnResult = a.results.onResult

	a.shared = &probe.Shared{}
	defer func() {
		if err != nil {
			a.closeProbers()
		}
	}()
	deps := probe.Deps{Meters: tel.Meters(), Tracers: tel.Tracers(), Logger: opts.Logger,
		Net: network.New(network.NewResolver(cfg.Global.Resolver), tel.Tracers()), StateDir: cfg.Storage.DataDir(),
		Shared: a.shared, Evidence: a.results.evidence}
	var jobs []scheduler.Job
	proberOf := map[*probe.Target]probe.Prober{}
	for i, pc := range cfg.Probes {
		typ := probes.Registry.Lookup(pc.Type) // validated: known
		prober, err := typ.New(pc, deps)
		if err != nil {
			return nil, fmt.Errorf("probes[%d] (%s): %w", i, pc.Name, err)
		}
		a.probers = append(a.probers, prober)
		for _, tc := range pc.Targets {
			t := probe.NewTarget(pc, tc)
			t.Policy = typ.Policy
			t.Maintenance = cfg.MaintenanceFor(pc.Name, tc.Name)
			a.targets = append(a.targets, t)
			proberOf[t] = prober
			job := scheduler.Job{
				Key:       api.JobKey(t),
				Interval:  pc.Interval,
				Jitter:    time.Duration(typ.Policy.StartJitter * float64(pc.Interval)),
				Exclusive: typ.Policy.Exclusive,
				Run:       func(ctx context.Context) { runner.Run(ctx, prober, t, pc.Timeout) },
				Skipped: func(ctx context.Context, reason string, n int) {
					runner.Skipped(ctx, t, reason, n)
				},
			}
			a.schedule(&job, pc, t)
			jobs = append(jobs, job)
		}
	}
	a.jobs = jobs
	if err := probe.RegisterObjectives(tel.Meters(), a.targets, time.Now); err != nil {
		return nil, fmt.Errorf("cannot export objectives: %w", err)
	}
	if cfg.Tiers == "auto" {
		a.routeChanged = requestReload
	}
	// The fault-domain verdict reads every tiered target's results.
	judge, err := faults.NewJudge(a.targets, tel.Meters())
	if err != nil {
		return nil, err
	}
	a.judge = judge
	if judge != nil {
		judge.OnChange = func(v faults.Verdict) { opts.Logger.Info("fault domain", "domain", v.Domain, "reason", v.Reason) }
	}
	// The outage log follows every target, and the verdict.
	if a.outages, err = faults.NewOutages(a.targets, judge, a.results.store, tel.Meters(), opts.Logger); err != nil {
		return nil, err
	}
	runner.OnResult = func(r probe.Result) {
		a.results.onResult(r)
		judge.Observe(r)
		a.outages.Observe(r)
	}
	runner.OnStart, runner.OnProgress = a.results.feed.Running, a.results.feed.Progress // run now joins; live progress
	a.scheduler = scheduler.New(jobs)
	var verdict func() any // nil without tiered targets: no verdict in the API
	if judge != nil {
		verdict = func() any { return judge.Verdict() }
	}
	a.api = api.New(api.Options{Probes: cfg.Probes, Types: probes.Registry, Targets: a.targets, Scheduler: a.scheduler,
		Store: a.results.store, Feed: a.results.feed, Token: token, ProtectReads: cfg.API.TokenProtectsReads, TraceURL: traceURL(cfg, tel),
		SpeedtestMinInterval: cfg.API.SpeedtestMinInterval, Version: opts.Build.Version, Logger: opts.Logger,
		Admit:   func(t *probe.Target) *probe.Refusal { return runner.Admit(proberOf[t], t) },
		Verdict: verdict})
	for _, t := range a.targets {
		if outcome, lastSuccess, ok := a.api.Last(t); ok {
			runner.Seed(t, outcome == probe.OutcomeSuccess, lastSuccess)
			judge.Seed(t, !lastSuccess.IsZero())
		}
	}
	sopts := server.Options{Metrics: tel.Metrics, Gatherer: tel.Gatherer, Version: opts.Build.Version, Logger: opts.Logger,
		API: a.api, Page: web.Handler(), OnShutdown: a.api.Shutdown, Reload: requestReload,
		WebConfigFile: opts.WebConfigFile}
	if opts.Listener != nil {
		a.server = server.New(opts.Listener, sopts)
	} else if a.server, err = server.Listen(opts.ListenAddress, sopts); err != nil {
		return nil, err
	}
	a.api.SetLoopback(api.IsLoopback(a.server.Addr()))
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
	a.logger.Info("netpulse started", "url", pageURL(a.Addr()), "targets", len(a.targets),
		"otlp", a.telemetry.OTLP, "exemplars", a.telemetry.Exemplars)
	wctx, stopWriter := context.WithCancel(context.WithoutCancel(ctx))
	go a.results.run(wctx)
	outagesDone := make(chan struct{})
	go func() {
		defer close(outagesDone)
		a.outages.Run(wctx)
	}()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.server.Serve(gctx, shutdownTimeout) })
	for _, p := range a.probers {
		if svc, ok := p.(probe.Service); ok {
			g.Go(func() error { return svc.Run(gctx) })
		}
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
	a.server.SetReady(true)
	err := g.Wait()
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

// closeProbers releases what probers own (probe.Service, io.Closer) and
// the resources they share.
func (a *Agent) closeProbers() {
	for _, p := range a.probers {
		if c, ok := p.(io.Closer); ok {
			if err := c.Close(); err != nil {
				a.logger.Warn("closing a prober failed", "error", err)
			}
		}
	}
	if err := a.shared.Close(); err != nil {
		a.logger.Warn("closing shared probe resources failed", "error", err)
	}
	a.probers = nil
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
