package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/netpulse/netpulse/internal/api"
	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/faults"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probes"
	"github.com/netpulse/netpulse/internal/scheduler"
)

// A reload by difference. The agent keeps what a configuration does not
// change: a probe whose settings (everything but its targets) are the same
// keeps its prober, and a target whose settings are the same keeps its
// *probe.Target, and with it its job in the scheduler (slots and jitter),
// its last-result state (netpulse_probe_success, the probers' gauges) and
// any run in flight. Counters and histograms continue because the SDK
// keeps them by instrument and attributes, across probers.
//
// Only what changed starts or stops: a new or changed target gets a new
// job (at a random offset, as at start) and its last result from history;
// a removed or changed one is retired (probe.Target.Retire: its gauges go at
// once), its job stops scheduling, and its run in flight, if any, finishes
// within its timeout rather than being cancelled into a false failure. A
// probe whose settings changed gets a new prober; the old one's gauges go at
// once and it is closed after its last run.
//
// What the harness, telemetry and history were built from (global,
// telemetry, storage, tiers, api.speedtest_min_interval, and a series limit
// the new targets would outgrow) cannot change in place: Apply returns a
// *RestartError and the caller rebuilds the agent as a whole.

// RestartError says why a configuration cannot be applied in place.
type RestartError struct{ Reason string }

func (e *RestartError) Error() string { return "needs a restart of the agent: " + e.Reason }

// Change counts what a reload changed, by target.
type Change struct {
	Added, Removed, Changed, Kept int
	// Duration is how long applying it took.
	Duration time.Duration
}

// proberSlot is one prober with what it holds: its callbacks (scoped
// meters) and its service, if it runs one. Probes that a reload keeps
// share their slot with the previous configuration.
type proberSlot struct {
	prober      probe.Prober
	meters      *scopedMeters
	stopService context.CancelFunc
	stopped     bool
	closeOnce   sync.Once
}

// liveProbe is a configured probe and its targets, by name.
type liveProbe struct {
	cfg     config.Probe
	typ     *probe.Type
	slot    *proberSlot
	targets map[string]*probe.Target
}

// judgeSlot is the fault-domain judge of one set of tiered targets.
type judgeSlot struct {
	judge  *faults.Judge // nil: no tiered target
	meters *scopedMeters
	tiered []*probe.Target
}

func (j *judgeSlot) observe(r probe.Result) {
	if j != nil {
		j.judge.Observe(r) // a nil judge ignores it
	}
}

// change is a planned reload: everything built, nothing running changed.
type change struct {
	cfg      *config.Config
	probes   map[string]*liveProbe
	targets  []*probe.Target
	added    []*probe.Target // new or changed targets
	removed  []*probe.Target // targets gone or replaced
	newSlots []*proberSlot
	oldSlots []*proberSlot // replaced or removed probers
	judge    *judgeSlot
	newJudge bool
	outages  *outageSlot
	newLog   bool
	api      *api.API
	// objectives are the gauges of the targets' objectives and
	// maintenance, registered anew for every change (cheap: a callback).
	objectives *scopedMeters
}

// Apply reloads the agent by difference to next. It returns a
// *RestartError when next changes what cannot change in place (the agent
// is unchanged then), and any other error when next cannot start (a
// prober's constructor failed, the token file is unreadable): the running
// configuration then stays as it was.
func (a *Agent) Apply(next *config.Config) (Change, error) {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	start := time.Now()
	if err := faults.AutoTiers(next, probes.Registry, a.logger); err != nil {
		return Change{}, err
	}
	if reason := a.restartReason(next); reason != "" {
		return Change{}, &RestartError{Reason: reason}
	}
	ch, err := a.apply(next)
	ch.Duration = time.Since(start)
	return ch, err
}

// restartReason names what next changes that Apply cannot, or "".
func (a *Agent) restartReason(next *config.Config) string {
	a.mu.Lock()
	cur := a.cfg
	a.mu.Unlock()
	// Probes are applied by difference, api by a new API, and log applies at
	// start only; any other block is something the agent was built from.
	if f := differentField(*cur, *next, "Probes", "API", "Log"); f != "" {
		return f + " changed"
	}
	if cur.API.SpeedtestMinInterval != next.API.SpeedtestMinInterval {
		return "api.speedtest_min_interval changed"
	}
	if next.Telemetry.CardinalityLimit == 0 && cardinalityLimit(next) > a.seriesLimit {
		return fmt.Sprintf("the targets outgrow the series limit of %d per instrument sized at start", a.seriesLimit)
	}
	return ""
}

// apply plans next, then commits it; a failed plan changes nothing.
func (a *Agent) apply(next *config.Config) (Change, error) {
	c, err := a.plan(next)
	if err != nil {
		return Change{}, err
	}
	return a.commit(c), nil
}

// plan builds what next needs that the agent does not have: probers of new
// or changed probes, targets, the judge and the API. On error it releases
// what it built.
func (a *Agent) plan(next *config.Config) (_ *change, err error) {
	a.mu.Lock()
	cur, curTargets := a.probes, a.targets
	a.mu.Unlock()
	c := &change{cfg: next, probes: map[string]*liveProbe{}}
	defer func() {
		if err != nil {
			for _, s := range c.newSlots {
				a.closeSlot(s)
			}
			if c.newJudge && c.judge != nil {
				_ = c.judge.meters.Close()
			}
			if c.newLog {
				_ = c.outages.meters.Close()
			}
			if c.objectives != nil {
				_ = c.objectives.Close()
			}
		}
	}()
	for i, pc := range next.Probes {
		typ := probes.Registry.Lookup(pc.Type) // validated: known
		old := cur[pc.Name]
		lp := &liveProbe{cfg: pc, typ: typ, targets: map[string]*probe.Target{}}
		keep := old != nil && differentField(old.cfg, pc, "Targets") == ""
		if keep {
			lp.slot = old.slot
		} else if lp.slot, err = a.newSlot(pc, typ); err != nil {
			return nil, fmt.Errorf("probes[%d] (%s): %w", i, pc.Name, err)
		} else {
			c.newSlots = append(c.newSlots, lp.slot)
		}
		for _, tc := range pc.Targets {
			var t *probe.Target
			if keep {
				if ot := old.targets[tc.Name]; ot != nil && differentField(ot.Config.Targets[0], tc) == "" {
					t = ot
				}
			}
			if t == nil {
				t = probe.NewTarget(pc, tc)
				t.Policy = typ.Policy
				// A change of the top-level windows restarts the agent
				// (restartReason): a kept target's windows stay right.
				t.Maintenance = next.MaintenanceFor(pc.Name, tc.Name)
				c.added = append(c.added, t)
			}
			lp.targets[tc.Name] = t
			c.targets = append(c.targets, t)
		}
		c.probes[pc.Name] = lp
	}
	kept := map[*probe.Target]bool{}
	for _, t := range c.targets {
		kept[t] = true
	}
	for _, t := range curTargets {
		if !kept[t] {
			c.removed = append(c.removed, t)
		}
	}
	for name, old := range cur {
		if lp := c.probes[name]; lp == nil || lp.slot != old.slot {
			c.oldSlots = append(c.oldSlots, old.slot)
		}
	}
	var tiered []*probe.Target
	for _, t := range c.targets {
		if t.Tier != "" {
			tiered = append(tiered, t)
		}
	}
	c.judge = a.judge.Load()
	if c.judge == nil || !slices.Equal(c.judge.tiered, tiered) {
		m := newScopedMeters(a.deps.Meters)
		j, err := faults.NewJudge(tiered, m)
		if err != nil {
			_ = m.Close()
			return nil, err
		}
		if j != nil {
			j.OnChange = func(v faults.Verdict) { a.logger.Info("fault domain", "domain", v.Domain, "reason", v.Reason) }
		}
		c.judge, c.newJudge = &judgeSlot{judge: j, meters: m, tiered: tiered}, true
	}
	c.objectives = newScopedMeters(a.deps.Meters)
	if err := probe.RegisterObjectives(c.objectives, c.targets, time.Now); err != nil {
		return nil, fmt.Errorf("cannot export objectives: %w", err)
	}
	if c.outages, c.newLog, err = a.planOutages(c); err != nil {
		return nil, err
	}
	if c.api, err = a.newAPI(next, c.targets, c.judge); err != nil {
		return nil, err
	}
	return c, nil
}

// commit puts a planned change into effect; it cannot fail.
func (a *Agent) commit(c *change) Change {
	for _, t := range c.removed {
		t.Retire()
	}
	var gone []string
	for _, t := range c.removed {
		gone = append(gone, api.JobKey(t))
	}
	idle := a.scheduler.Remove(gone...)
	if c.newJudge {
		if old := a.judge.Swap(c.judge); old != nil {
			_ = old.meters.Close()
		}
	}
	// The new API seeds the feed from history for the targets it does not
	// know, so new targets' last results are there before their first run.
	if old := a.api.Swap(c.api); old != nil {
		old.Shutdown() // event streams end; the page reconnects to the new API
	}
	if old := a.objectives.Swap(c.objectives); old != nil {
		_ = old.Close()
	}
	if c.newLog {
		if old := a.outages.Swap(c.outages); old != nil {
			_ = old.meters.Close()
			old.log.Flush()
		}
	}
	// A new judge learns from history which tiered targets answered before.
	seed := c.added
	if c.newJudge {
		seed = c.targets
	}
	for _, t := range seed {
		if outcome, lastSuccess, ok := c.api.Last(t); ok {
			if slices.Contains(c.added, t) {
				a.runner.Seed(t, outcome == probe.OutcomeSuccess, lastSuccess)
			}
			c.judge.judge.Seed(t, !lastSuccess.IsZero())
		}
	}
	a.mu.Lock()
	a.cfg, a.probes, a.targets = c.cfg, c.probes, c.targets
	for _, s := range c.newSlots {
		a.startService(s)
	}
	a.retired = append(a.retired, c.oldSlots...)
	a.mu.Unlock()
	var jobs []scheduler.Job
	for _, t := range c.added {
		jobs = append(jobs, a.job(c.probes[t.Probe], t))
	}
	if err := a.scheduler.Add(jobs...); err != nil {
		a.logger.Error("reload: jobs not scheduled", "error", err) // a bug: removed keys go first
	}
	for _, s := range c.oldSlots {
		// Their gauges go now; what they own is closed after their last run.
		_ = s.meters.Close()
	}
	if len(c.oldSlots) > 0 {
		go func() {
			<-idle
			for _, s := range c.oldSlots {
				a.closeSlot(s)
			}
			a.mu.Lock()
			a.retired = slices.DeleteFunc(a.retired, func(s *proberSlot) bool { return slices.Contains(c.oldSlots, s) })
			a.mu.Unlock()
		}()
	}
	return summarize(c, len(c.targets))
}

func summarize(c *change, total int) Change {
	removedKeys := map[uint64]bool{}
	for _, t := range c.removed {
		removedKeys[t.Key] = true
	}
	var ch Change
	for _, t := range c.added {
		if removedKeys[t.Key] {
			ch.Changed++
		}
	}
	ch.Added = len(c.added) - ch.Changed
	ch.Removed = len(c.removed) - ch.Changed
	ch.Kept = total - len(c.added)
	return ch
}

// job is the scheduler's job of target t of lp.
func (a *Agent) job(lp *liveProbe, t *probe.Target) scheduler.Job {
	pc, prober := lp.cfg, lp.slot.prober
	job := scheduler.Job{
		Key:       api.JobKey(t),
		Interval:  pc.Interval,
		Jitter:    time.Duration(lp.typ.Policy.StartJitter * float64(pc.Interval)),
		Exclusive: lp.typ.Policy.Exclusive,
		Coalesce:  lp.typ.Policy.CoalesceStarts,
		Run:       func(ctx context.Context) { a.runner.Run(ctx, prober, t, pc.Timeout) },
		Skipped: func(ctx context.Context, reason string, n int) {
			a.runner.Skipped(ctx, t, reason, n)
		},
	}
	a.schedule(&job, pc, t) // schedule.go: first run, time windows
	return job
}

// newSlot builds the prober of pc with meters of its own.
func (a *Agent) newSlot(pc config.Probe, typ *probe.Type) (*proberSlot, error) {
	m := newScopedMeters(a.deps.Meters)
	deps := a.deps
	deps.Meters = m
	p, err := typ.New(pc, deps)
	if err != nil {
		_ = m.Close()
		return nil, err
	}
	return &proberSlot{prober: p, meters: m}, nil
}

// newAPI builds the API of cfg's probes and targets.
func (a *Agent) newAPI(cfg *config.Config, targets []*probe.Target, judge *judgeSlot) (*api.API, error) {
	token, err := cfg.API.ResolveToken()
	if err != nil {
		return nil, err
	}
	var verdict func() any // nil without tiered targets: no verdict in the API
	if j := judge.judge; j != nil {
		verdict = func() any { return j.Verdict() }
	}
	x := api.New(api.Options{Probes: cfg.Probes, Types: probes.Registry, Targets: targets, Scheduler: a.scheduler,
		Store: a.results.store, Feed: a.results.feed, Token: token, ProtectReads: cfg.API.TokenProtectsReads,
		TraceURL: traceURL(cfg, a.telemetry), SpeedtestMinInterval: cfg.API.SpeedtestMinInterval, Version: a.build.Version,
		Logger: a.logger, Admit: a.admit, Verdict: verdict})
	x.SetLoopback(a.loopback)
	return x, nil
}

// admit tells whether the harness would admit an on-demand run of t now.
func (a *Agent) admit(t *probe.Target) *probe.Refusal {
	a.mu.Lock()
	lp := a.probes[t.Probe]
	a.mu.Unlock()
	if lp == nil {
		return nil // gone by a reload: the scheduler refuses it
	}
	return a.runner.Admit(lp.slot.prober, t)
}

// startService runs s's prober's service, if it has one, while Run runs;
// a.mu is held.
func (a *Agent) startService(s *proberSlot) {
	svc, ok := s.prober.(probe.Service)
	if !ok || a.group == nil || s.stopService != nil {
		return
	}
	ctx, cancel := context.WithCancel(a.groupCtx)
	s.stopService = cancel
	a.group.Go(func() error {
		err := svc.Run(ctx)
		a.mu.Lock()
		stopped := s.stopped
		a.mu.Unlock()
		if stopped && errors.Is(err, context.Canceled) {
			return nil // replaced by a reload
		}
		return err
	})
}

// closeSlot stops and closes a prober once: its callbacks, its service,
// what it owns.
func (a *Agent) closeSlot(s *proberSlot) {
	s.closeOnce.Do(func() {
		_ = s.meters.Close()
		a.mu.Lock()
		s.stopped = true
		stop := s.stopService
		a.mu.Unlock()
		if stop != nil {
			stop()
		}
		if c, ok := s.prober.(io.Closer); ok {
			if err := c.Close(); err != nil {
				a.logger.Warn("closing a prober failed", "error", err)
			}
		}
	})
}

// differentField names the first exported field of structs x and y (of
// one type) that differs, by its YAML key, skipping the fields named in
// skip; "" when none does. Fields added to the configuration later are
// compared without a change here.
func differentField[T any](x, y T, skip ...string) string {
	vx, vy := reflect.ValueOf(x), reflect.ValueOf(y)
	typ := vx.Type()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() || slices.Contains(skip, f.Name) {
			continue
		}
		if !reflect.DeepEqual(vx.Field(i).Interface(), vy.Field(i).Interface()) {
			if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != "" && name != "-" {
				return name
			}
			return f.Name
		}
	}
	return ""
}
