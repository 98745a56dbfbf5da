package probe

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/logging"
	"github.com/netpulse/netpulse/internal/redact"
)

// Run outcomes, the values of the outcome attribute.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeTimeout = "timeout"
	OutcomeSkipped = "skipped"
)

// Result is what one run produced; it feeds logs, the API and history.
type Result struct {
	Target    *Target
	Start     time.Time
	Duration  time.Duration
	Outcome   string
	ErrorType string
	Err       error
	Values    Values
	TraceID   trace.TraceID
	// RunID identifies the run (series and start time).
	RunID RunID
	// OnDemand is set for runs started on request (WithDemand).
	OnDemand bool
	// Logs are the lines logged during the run, at every level (bounded).
	Logs []logging.Line
}

// ScopeName names the meter and tracer of the probe harness.
const ScopeName = "github.com/netpulse/netpulse/internal/probe"

// Runner is the harness every run goes through. It owns the metrics common to
// all probe types and the last-result state behind them.
type Runner struct {
	tracer   trace.Tracer
	logger   *slog.Logger
	runs     metric.Int64Counter
	duration metric.Float64Histogram
	// OnResult, when set, receives every result (history, API); it must not block.
	OnResult func(Result)
	// OnStart, when set, is told of every run that starts (its target, start,
	// run id and trace id): the API joins it instead of starting another.
	// It must not block.
	OnStart func(Result)
	// OnProgress, when set, receives what runs report with ReportProgress
	// (a few times a second at most, per run); it must not block.
	OnProgress func(Result, Progress)
	admission  admission

	mu   sync.Mutex
	last map[*Target]lastRun

	// runSets caches the options of each netpulse_probe_runs_total series
	// (a target's attributes, outcome and error type) but the targets'
	// successes (Target.measure), so that a run does not merge and hash a
	// new set: at 1,000 runs/s that was a tenth of the agent's CPU. Bounded
	// as the SDK's own series are.
	runSetsMu sync.Mutex
	runSets   map[runSeries][]metric.AddOption
}

type runSeries struct {
	target           attribute.Distinct
	outcome, errType string
}

type lastRun struct {
	success     bool
	lastSuccess time.Time
}

// NewRunner creates the harness's instruments on mp's meter.
// demandInterval is the least time between on-demand runs of types whose
// Policy limits them (api.speedtest_min_interval).
func NewRunner(mp metric.MeterProvider, tp trace.TracerProvider, logger *slog.Logger, demandInterval time.Duration) (*Runner, error) {
	m := mp.Meter(ScopeName)
	r := &Runner{tracer: tp.Tracer(ScopeName), logger: logger, last: map[*Target]lastRun{}, runSets: map[runSeries][]metric.AddOption{},
		admission: admission{minInterval: demandInterval}}
	var err error
	if r.runs, err = m.Int64Counter("netpulse.probe.runs", metric.WithUnit("{run}"),
		metric.WithDescription("Probe runs by outcome (success, failure, timeout, skipped) and error type.")); err != nil {
		return nil, err
	}
	if r.duration, err = m.Float64Histogram("netpulse.probe.duration", metric.WithUnit("s"),
		metric.WithDescription("Wall-clock duration of probe runs."),
		metric.WithExplicitBucketBoundaries(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)); err != nil {
		return nil, err
	}
	success, err := m.Int64ObservableGauge("netpulse.probe.success",
		metric.WithDescription("Whether the last run of the target succeeded (1) or not (0)."))
	if err != nil {
		return nil, err
	}
	lastSuccess, err := m.Float64ObservableGauge("netpulse.probe.last_success.timestamp", metric.WithUnit("s"),
		metric.WithDescription("Unix time of the target's last successful run."))
	if err != nil {
		return nil, err
	}
	th, err := newThresholdGauges(m)
	if err != nil {
		return nil, err
	}
	// The interval lets an alert call a result stale after a number of
	// missed runs (prometheus/rules/alerts.yml): one series per probe.
	interval, err := m.Float64ObservableGauge("netpulse.probe.interval", metric.WithUnit("s"),
		metric.WithDescription("Configured interval between a probe's runs against each target."))
	if err != nil {
		return nil, err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		probes := map[string]bool{}
		for t, l := range r.last {
			if t.Retired() {
				delete(r.last, t)
				continue
			}
			opt := metric.WithAttributeSet(t.Attrs)
			o.ObserveInt64(success, boolToInt(l.success), opt)
			if !l.lastSuccess.IsZero() {
				o.ObserveFloat64(lastSuccess, float64(l.lastSuccess.UnixNano())/1e9, opt)
			}
			th.observe(o, t, opt)
			if !probes[t.Probe] && t.Config.Interval > 0 {
				probes[t.Probe] = true
				o.ObserveFloat64(interval, t.Config.Interval.Seconds(),
					metric.WithAttributes(KeyProbeName.String(t.Probe), KeyProbeType.String(t.Type)))
			}
		}
		return nil
	}, success, lastSuccess, interval, th.latency, th.jitter, th.loss, th.rate)
	return r, err
}

// Run executes one run of p against t bounded by timeout, inside a span,
// if admission lets it start. A refused run measured nothing: a scheduled
// one is counted as skipped with the reason as error.type (an exhausted
// budget does not look like a broken link) and the target's last result
// stands; an on-demand one is only reported to its Demand.
func (r *Runner) Run(ctx context.Context, p Prober, t *Target, timeout time.Duration) Result {
	growStack()
	demand := demandFrom(ctx)
	if ref := r.admission.admit(p, t, demand != nil, true, time.Now()); ref != nil {
		r.logger.InfoContext(ctx, "probe run refused", "probe", t.Probe, "target", t.Name, "reason", ref.Reason,
			"on_demand", demand != nil, "error", ref.Err)
		if demand != nil {
			if demand.Refused != nil {
				demand.Refused(ref)
			}
		} else {
			r.Skipped(ctx, t, ref.Reason, 1)
		}
		return Result{Target: t, Start: time.Now(), Outcome: OutcomeSkipped, ErrorType: ref.Reason, Err: ref,
			OnDemand: demand != nil}
	}
	ctx, span := r.tracer.Start(ctx, t.spanName(), clientSpan...)
	defer span.End()
	if span.IsRecording() { // not built per run for a span nobody reads (no trace export)
		span.SetAttributes(t.Attrs.ToSlice()...)
		span.SetAttributes(attribute.String("server.address", redact.URLs(t.Host)))
	}
	ctx, capture := logging.WithCapture(ctx, maxLogLines)
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	start := time.Now()
	rc := &runContext{Context: runCtx, id: NewRunID(t, start)}
	rc.started = Result{Target: t, Start: start, RunID: rc.id, TraceID: span.SpanContext().TraceID(), OnDemand: demand != nil}
	if r.OnProgress != nil {
		rc.runner = r
	}
	runCtx = rc
	if demand != nil && demand.Started != nil {
		demand.Started(rc.started)
	}
	if r.OnStart != nil {
		r.OnStart(rc.started)
	}
	values, err := p.Probe(runCtx, t)
	// Its text reaches the span, the log, the API and history: a URL in it
	// keeps no credentials.
	err = redact.Error(err)
	res := Result{Target: t, Start: start, Duration: time.Since(start), Values: values, Err: err,
		TraceID: span.SpanContext().TraceID(), ErrorType: ErrorType(runCtx, err), Outcome: OutcomeSuccess,
		RunID: NewRunID(t, start), OnDemand: demand != nil}
	switch res.ErrorType {
	case "":
	case ErrTimeout:
		res.Outcome = OutcomeTimeout
	case ErrCanceled:
		// Cut short because the agent is stopping (shutdown, or a reload
		// that rebuilds it): the run measured nothing, and a failure would
		// be a false loss point. It is skipped, as a refused run is, and
		// the target's last result stands.
		res.Outcome = OutcomeSkipped
	default:
		res.Outcome = OutcomeFailure
	}

	if span.IsRecording() { // the calls' arguments are allocations, for nobody otherwise
		span.SetAttributes(KeyOutcome.String(res.Outcome))
		if err != nil {
			span.SetAttributes(KeyErrorType.String(res.ErrorType))
			span.RecordError(err)
			span.SetStatus(codes.Error, res.ErrorType)
		}
	}
	if res.Outcome == OutcomeSkipped {
		r.count(ctx, t, res.Outcome, res.ErrorType)
		r.logger.DebugContext(ctx, "probe run cancelled: not recorded as a result", "probe", t.Probe, "target", t.Name)
		res.Logs = capture.Lines()
		if demand != nil && r.OnResult != nil {
			r.OnResult(res) // the one who asked gets an answer
		}
		return res
	}
	// ctx (not runCtx) so that a run that timed out still records.
	r.duration.Record(ctx, res.Duration.Seconds(), t.RecordOptions()...)
	r.count(ctx, t, res.Outcome, res.ErrorType)
	r.remember(ctx, res)
	res.Logs = capture.Lines()
	if r.OnResult != nil {
		r.OnResult(res)
	}
	return res
}

// Seed restores a target's last outcome and last success (from history,
// at start), so netpulse_probe_success and its last-success time exist at
// once instead of after the target's next run: an hourly speed test would
// otherwise have no series for up to 90 minutes after a restart. A target
// that has run already keeps what it has.
func (r *Runner) Seed(t *Target, success bool, lastSuccess time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ran := r.last[t]; !ran && !t.Retired() {
		r.last[t] = lastRun{success: success, lastSuccess: lastSuccess}
	}
}

// Admit tells whether an on-demand run of p against t would be admitted
// now, without taking the rate limit's slot: the API asks first, so that a
// refusal is answered as such (429) before the scheduler's busy or
// exclusive (409). Run decides again, with the same rules, when it starts.
func (r *Runner) Admit(p Prober, t *Target) *Refusal {
	return r.admission.admit(p, t, true, false, time.Now())
}

// Skipped records a run that did not happen, with the reason as error.type
// (overdue: the previous run overran its slot; exclusive: another probe held
// the link).
func (r *Runner) Skipped(ctx context.Context, t *Target, reason string, n int) {
	r.runs.Add(ctx, int64(n), r.runOpts(t, OutcomeSkipped, reason)...)
	r.logger.DebugContext(ctx, "probe runs skipped", "probe", t.Probe, "target", t.Name, "reason", reason, "count", n)
}

func (r *Runner) count(ctx context.Context, t *Target, outcome, errType string) {
	r.runs.Add(ctx, 1, r.runOpts(t, outcome, errType)...)
}

// runOpts are the options that add to t's runs with outcome and errType
// (none when empty): a success, nearly every run, from the target's own;
// the others from a cache by series.
func (r *Runner) runOpts(t *Target, outcome, errType string) []metric.AddOption {
	if m := t.opts(); m != nil && outcome == OutcomeSuccess && errType == "" {
		return m.success
	}
	key := runSeries{target: t.Attrs.Equivalent(), outcome: outcome, errType: errType}
	r.runSetsMu.Lock()
	defer r.runSetsMu.Unlock()
	if opts, ok := r.runSets[key]; ok {
		return opts
	}
	opts := []metric.AddOption{metric.WithAttributeSet(runAttrs(t, outcome, errType))}
	r.runSets[key] = opts
	return opts
}

// clientSpan are the run span's options (its kind), built once.
var clientSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}

// remember updates the last-result state and logs transitions: a failing
// target logs once when it starts failing and once when it recovers, not on
// every run.
func (r *Runner) remember(ctx context.Context, res Result) {
	ok := res.Outcome == OutcomeSuccess
	r.mu.Lock()
	prev, seen := r.last[res.Target]
	next := lastRun{success: ok, lastSuccess: prev.lastSuccess}
	if ok {
		next.lastSuccess = res.Start.Add(res.Duration)
	}
	if res.Target.Retired() {
		// A run in flight when a reload removed or changed its target.
		delete(r.last, res.Target)
	} else {
		r.last[res.Target] = next
	}
	r.mu.Unlock()

	level, msg := slog.LevelDebug, "probe run"
	switch {
	case !ok && (!seen || prev.success):
		level, msg = slog.LevelWarn, "probe failing"
	case ok && seen && !prev.success:
		level, msg = slog.LevelInfo, "probe recovered"
	}
	// The line's arguments only when it is written (or captured for the
	// run's debug view): built for nothing, they were allocations per run.
	if !r.logger.Enabled(ctx, level) {
		return
	}
	attrs := []any{"probe", res.Target.Probe, "target", res.Target.Name, "outcome", res.Outcome,
		"duration", res.Duration, "values", map[string]float64(res.Values)}
	switch level {
	case slog.LevelWarn:
		attrs = append(attrs, "error.type", res.ErrorType, "error", res.Err)
	case slog.LevelDebug:
		attrs = append(attrs, "error", res.Err)
	}
	r.logger.Log(ctx, level, msg, attrs...)
}

func boolToInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// growStack grows the calling goroutine's stack while it is shallow.
//
// Every GC halves the stacks of parked goroutines, and the scheduler's
// workers park between runs: without this, a worker's first run after a
// GC grew its stack at its deepest point, where copying it means walking a
// dozen frames (with a goroutine per job, a tenth of the agent's CPU at
// 1,000 runs/s). Grown here, the copy walks only the few frames above Run.
//
//go:noinline
func growStack() {
	if stackPadUsed { // never: the frame is reserved by the prologue, not written
		var pad [runStack]byte
		stackSink(pad[:])
	}
}

// runStack is about what a run needs beyond Run's caller.
const runStack = 8 << 10

var stackPadUsed bool

//go:noinline
func stackSink([]byte) {}
