package faults

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/netpulse/netpulse/internal/history"
	"github.com/netpulse/netpulse/internal/probe"
)

// OutageStore keeps the outage log (history.Store).
type OutageStore interface {
	PutOutages([]history.Outage) error
	OpenOutages() ([]history.Outage, error)
}

// Outages keeps the outage log: the contiguous failure periods of every
// target (from the first failed run's start to the next successful run's
// start) and of every fault domain the verdict blamed (from the verdict
// that blamed it to the one that stopped), each with the verdict's domain
// and reasoning. Open outages are written to the store by Flush (the agent
// calls it every second) and resumed after a restart; netpulse_outage_seconds_total counts
// each target's outage time.
type Outages struct {
	store   OutageStore
	judge   *Judge // nil: no tiered target, no verdict
	logger  *slog.Logger
	now     func() time.Time
	started time.Time // outage time before it is not this process's to count

	mu      sync.Mutex
	targets map[uint64]*outageTarget // by series key
	// domain is the open domain outage. It is written once confirmed: its
	// verdict held while every tiered target reported (a round), so the
	// verdicts that pass while a round's results arrive one by one are
	// not outages.
	domain    *history.Outage
	confirmed bool
	reported  map[uint64]bool // tiered targets that reported since domain opened
	dirty     map[[2]uint64]history.Outage
}

type outageTarget struct {
	t    *probe.Target
	open *history.Outage
	// blamed: open's domain is a confirmed domain outage's, not the
	// passing verdict of its first failed run.
	blamed bool
	// counted is the outage time this process counted in closed outages;
	// reported is the counter's last value (it never goes down).
	counted, reported float64
}

// NewOutages resumes the open outages of configured targets from store
// and closes the others (targets no longer configured, or not seen failing
// for longer than their results count: staleAfter intervals) at their last
// failure. It registers netpulse.outage on mp: a counter of outage seconds
// per target, from zero for every target.
func NewOutages(targets []*probe.Target, judge *Judge, store OutageStore, mp metric.MeterProvider, logger *slog.Logger) (*Outages, error) {
	return newOutages(targets, judge, store, mp, logger, time.Now)
}

func newOutages(targets []*probe.Target, judge *Judge, store OutageStore, mp metric.MeterProvider, logger *slog.Logger,
	now func() time.Time) (*Outages, error) {
	o := &Outages{store: store, judge: judge, logger: logger, now: now, targets: map[uint64]*outageTarget{},
		dirty: map[[2]uint64]history.Outage{}}
	o.started = o.now()
	for _, t := range targets {
		o.targets[t.Key] = &outageTarget{t: t}
	}
	if err := o.resume(); err != nil {
		return nil, err
	}
	if mp == nil {
		return o, nil
	}
	m := mp.Meter("github.com/netpulse/netpulse/internal/faults")
	_, err := m.Float64ObservableCounter("netpulse.outage", metric.WithUnit("s"),
		metric.WithDescription("Time the target spent in an outage (from a failed run's start to the next success's), counted while this agent runs."),
		metric.WithFloat64Callback(func(_ context.Context, obs metric.Float64Observer) error {
			o.mu.Lock()
			defer o.mu.Unlock()
			now := o.now()
			for _, ot := range o.targets {
				v := ot.counted
				if ot.open != nil {
					v += o.since(ot.open.Start, now)
				}
				ot.reported = max(ot.reported, v)
				obs.Observe(ot.reported, metric.WithAttributeSet(ot.t.Attrs))
			}
			return nil
		}))
	if err != nil {
		return nil, fmt.Errorf("cannot create outage metrics: %w", err)
	}
	return o, nil
}

// Continue carries the outage time prev counted for the targets both
// follow, so a reload by difference continues their
// netpulse_outage_seconds_total instead of restarting it.
func (o *Outages) Continue(prev *Outages) {
	if o == nil || prev == nil {
		return
	}
	prev.mu.Lock()
	defer prev.mu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	for key, ot := range o.targets {
		pt := prev.targets[key]
		if pt == nil {
			continue
		}
		v := pt.counted
		if pt.open != nil {
			v += prev.since(pt.open.Start, o.started)
		}
		ot.counted = v
		ot.reported = max(pt.reported, v)
	}
}

// since is the outage time from start to end that this process counts.
func (o *Outages) since(start, end time.Time) float64 {
	return max(end.Sub(maxTime(start, o.started)).Seconds(), 0)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (o *Outages) resume() error {
	if o.store == nil {
		return nil
	}
	open, err := o.store.OpenOutages()
	if err != nil {
		return fmt.Errorf("cannot read open outages: %w", err)
	}
	now := o.now()
	for _, out := range open {
		if out.IsDomain() {
			// A domain outage resumes until the verdict, settled, says
			// otherwise (observeVerdict); the newest wins.
			if o.domain != nil {
				o.closeAt(o.domain, o.domain.LastFailure)
			}
			o.domain, o.confirmed, o.reported = &out, true, map[uint64]bool{}
			continue
		}
		ot := o.targets[out.ID()]
		switch {
		case ot == nil || ot.t.Probe != out.Probe || ot.t.Name != out.Target:
			o.closeAt(&out, out.LastFailure)
		case now.Sub(out.LastFailure) > staleAfter*max(ot.t.Config.Interval, time.Second):
			o.closeAt(&out, out.LastFailure)
		default:
			ot.open = &out
		}
	}
	if o.domain != nil && (o.judge == nil || now.Sub(o.domain.LastFailure) > staleAfter*o.judge.maxInterval()) {
		o.closeAt(o.domain, o.domain.LastFailure)
		o.domain = nil
	}
	return nil
}

// closeAt ends out at end (never before its start) and marks it to write.
func (o *Outages) closeAt(out *history.Outage, end time.Time) {
	out.End = maxTime(end, out.Start)
	o.mark(*out)
}

func (o *Outages) mark(out history.Outage) {
	o.dirty[[2]uint64{uint64(out.Start.UnixNano()), out.ID()}] = out
}

// Observe takes a run's result, after the judge has seen it (so the
// verdict includes it). Skipped runs, and runs cancelled by a shutdown,
// measured nothing.
func (o *Outages) Observe(r probe.Result) {
	if o == nil || r.Outcome == probe.OutcomeSkipped || r.ErrorType == probe.ErrCanceled {
		return
	}
	v, settled := o.verdict()
	o.mu.Lock()
	defer o.mu.Unlock()
	if settled {
		o.observeVerdict(v, r.Target)
	}
	ot := o.targets[r.Target.Key]
	if ot == nil {
		return
	}
	end := r.Start.Add(r.Duration)
	failed := r.Outcome != probe.OutcomeSuccess
	switch {
	case failed && ot.open == nil && o.judge.neverAnswered(r.Target):
		// A device that never answered (it filters ICMP) is unknown, not
		// out: no outage, as no blame.
	case failed:
		if ot.open == nil {
			ot.open, ot.blamed = &history.Outage{Probe: ot.t.Probe, Target: ot.t.Name, Start: r.Start}, false
		}
		ot.open.LastFailure = end
		// The outage takes the domain of the domain outage that the
		// verdict confirmed while it lasts; until one is, the verdict's
		// of its runs, a tier replacing the far end or unknown.
		switch domain, why := blame(v, o.judge != nil); {
		case ot.blamed:
		case o.domain != nil && o.confirmed:
			ot.open.Domain, ot.open.Verdict, ot.blamed = o.domain.Domain, o.domain.Verdict, true
		case ot.open.Domain == "" || rank(domain) > rank(ot.open.Domain):
			ot.open.Domain, ot.open.Verdict = domain, why
		}
		o.mark(*ot.open)
	case ot.open != nil:
		// Recovered. When the runs between were not seen (the agent was
		// stopped, slots skipped), the outage ends at its last failure.
		closeAt := r.Start
		if r.Start.Sub(ot.open.LastFailure) > staleAfter*max(ot.t.Config.Interval, time.Second) {
			closeAt = ot.open.LastFailure
		}
		o.closeAt(ot.open, closeAt)
		ot.counted += o.since(ot.open.Start, ot.open.End)
		ot.open = nil
	}
}

// verdict returns the current verdict, and whether the judge has seen a
// result of every tiered target since the agent started: before that, a
// verdict may lack the tier at fault, and must not end a resumed outage.
func (o *Outages) verdict() (Verdict, bool) {
	if o.judge == nil {
		return Verdict{Domain: DomainUnknown, Reason: "no target has a tier: the verdict cannot tell where"}, false
	}
	return o.judge.Verdict(), o.judge.Settled()
}

// observeVerdict opens, extends, confirms or closes the domain outage,
// after a result of t. Called with o.mu held.
func (o *Outages) observeVerdict(v Verdict, t *probe.Target) {
	blamed := slices.Contains(Domains, v.Domain)
	if d := o.domain; d != nil {
		if blamed && v.Domain == d.Domain {
			d.LastFailure, d.Verdict = v.At, v.Reason
			if t.Tier != "" {
				o.reported[t.Key] = true
			}
			if !o.confirmed && len(o.reported) >= o.judge.tiered() {
				o.confirmed = true
			}
			if o.confirmed {
				o.mark(*d)
			}
			return
		}
		if o.confirmed {
			o.closeAt(d, v.At)
		}
		o.domain = nil
	}
	if blamed {
		o.domain, o.confirmed, o.reported = &history.Outage{Domain: v.Domain, Start: v.At, LastFailure: v.At, Verdict: v.Reason},
			false, map[uint64]bool{}
		if t.Tier != "" {
			o.reported[t.Key] = true
		}
	}
}

// blame is the domain and reasoning recorded with a target's outage:
// the verdict's, or, when every tier answers while the target fails, the
// far end's (target); without tiers, unknown.
func blame(v Verdict, judged bool) (string, string) {
	switch {
	case !judged:
		return DomainUnknown, v.Reason
	case v.Domain == DomainNone:
		return "target", v.Reason + "; this target fails while the tiers answer: its far end"
	}
	return v.Domain, v.Reason
}

// rank orders what an outage's domain may become while it lasts: a tier
// the verdict blames replaces the far end or unknown, never the reverse.
func rank(domain string) int {
	switch domain {
	case DomainUnknown, DomainNone, "":
		return 0
	case "target":
		return 1
	}
	return 2
}

// Flush writes the outages changed since the last flush. A failed write
// keeps them for the next.
func (o *Outages) Flush() {
	if o == nil || o.store == nil {
		return
	}
	o.mu.Lock()
	batch := make([]history.Outage, 0, len(o.dirty))
	for _, out := range o.dirty {
		batch = append(batch, out)
	}
	clear(o.dirty)
	o.mu.Unlock()
	if err := o.store.PutOutages(batch); err != nil {
		o.logger.Error("outage log write failed", "outages", len(batch), "error", err)
		o.mu.Lock()
		for _, out := range batch {
			k := [2]uint64{uint64(out.Start.UnixNano()), out.ID()}
			if _, newer := o.dirty[k]; !newer {
				o.dirty[k] = out
			}
		}
		o.mu.Unlock()
	}
}
