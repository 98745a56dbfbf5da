package faults

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/history"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/testutil"
)

// outageLab feeds made-up results (a minute apart) to a judge and an
// outage log over a real history file.
type outageLab struct {
	t       *testing.T
	dir     string
	store   *history.Store
	judge   *Judge
	log     *Outages
	tel     *testutil.Telemetry
	now     time.Time
	targets []*probe.Target
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func newOutageLab(t *testing.T, dir string, now time.Time, targets []*probe.Target) *outageLab {
	t.Helper()
	store, err := history.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	l := &outageLab{t: t, dir: dir, store: store, now: now, targets: targets, tel: testutil.NewTelemetry(t)}
	if l.judge, err = NewJudge(targets, nil); err != nil {
		t.Fatal(err)
	}
	if l.judge != nil {
		l.judge.now = func() time.Time { return l.now }
	}
	clock := func() time.Time { return l.now }
	if l.log, err = newOutages(targets, l.judge, store, l.tel.Meters, quietLog, clock); err != nil {
		t.Fatal(err)
	}
	return l
}

// step moves a minute on and runs every target in ok (true: success).
func (l *outageLab) step(ok map[*probe.Target]bool) {
	l.now = l.now.Add(time.Minute)
	for _, tg := range l.targets {
		up, ran := ok[tg]
		if !ran {
			continue
		}
		r := probe.Result{Target: tg, Start: l.now, Duration: time.Second, Outcome: probe.OutcomeSuccess}
		if !up {
			r.Outcome, r.ErrorType = probe.OutcomeFailure, probe.ErrNoReply
		}
		l.judge.Observe(r)
		l.log.Observe(r)
	}
	l.now = l.now.Add(time.Second)
}

func (l *outageLab) outages() []history.Outage {
	l.t.Helper()
	l.log.Flush()
	var out []history.Outage
	if err := l.store.Outages(time.Time{}, l.now.Add(time.Hour), func(o history.Outage) bool {
		out = append(out, o)
		return true
	}); err != nil {
		l.t.Fatal(err)
	}
	return out
}

func (l *outageLab) close() {
	l.log.Flush()
	if err := l.store.Close(); err != nil {
		l.t.Fatal(err)
	}
}

func (l *outageLab) counter(tg *probe.Target) float64 {
	l.t.Helper()
	v, ok := testutil.Value(l.tel.Collect(l.t)["netpulse.outage"], probe.KeyTargetName.String(tg.Name))
	if !ok {
		l.t.Fatalf("no netpulse.outage series for %s", tg.Name)
	}
	return v
}

func tiered(name, tier string) *probe.Target {
	return probe.NewTarget(config.Probe{Name: "p", Type: "ping", Interval: time.Minute},
		config.Target{Name: name, Host: name, Tier: tier})
}

// A gateway failure is an outage of the gateway target and of the gateway
// domain, and of the internet target behind it (blamed on the gateway);
// they end when the runs succeed again, and survive a restart.
func TestOutageLog(t *testing.T) {
	gw, isp, inet := tiered("192.168.1.1", "gateway"), tiered("100.64.0.1", "isp"), tiered("1.1.1.1", "internet")
	all := []*probe.Target{gw, isp, inet}
	up := map[*probe.Target]bool{gw: true, isp: true, inet: true}
	down := map[*probe.Target]bool{gw: false, isp: false, inet: false}
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	l := newOutageLab(t, dir, t0, all)
	l.step(up)
	if got := l.outages(); len(got) != 0 {
		t.Fatalf("outages while everything answers: %+v", got)
	}
	if v := l.counter(inet); v != 0 {
		t.Errorf("outage seconds %v before any outage, want 0", v)
	}
	l.step(down) // 12:02:01
	failedAt := l.now.Add(-time.Second)
	l.step(down)
	got := l.outages()
	if len(got) != 4 {
		t.Fatalf("%d outages, want 3 targets' and the gateway domain's: %+v", len(got), got)
	}
	for _, o := range got {
		if !o.Open() || o.Domain != "gateway" || !o.Start.Equal(failedAt) && !o.IsDomain() {
			t.Errorf("outage %+v: want open, blamed on the gateway, from %v", o, failedAt)
		}
	}
	if v := l.counter(inet); v != 62 {
		t.Errorf("outage seconds %v after 62 s of outage, want 62", v)
	}

	// Restart: a new process resumes the open outages.
	l.close()
	l = newOutageLab(t, dir, l.now.Add(10*time.Second), all)
	for _, tg := range all {
		l.judge.Seed(tg, true) // they answered before (the agent seeds from history)
	}
	if v := l.counter(inet); v != 0 {
		t.Errorf("outage seconds %v at start, want 0: the time before the start was counted by the last process", v)
	}
	l.step(down)
	l.step(up)
	recovered := l.now.Add(-time.Second)
	got = l.outages()
	if len(got) != 4 {
		t.Fatalf("%d outages after restart and recovery, want the same 4: %+v", len(got), got)
	}
	for _, o := range got {
		if o.Open() {
			t.Errorf("outage %+v still open after recovery", o)
			continue
		}
		if !o.IsDomain() && (!o.Start.Equal(failedAt) || !o.End.Equal(recovered)) {
			t.Errorf("target outage %v–%v, want %v–%v (one outage across the restart)", o.Start, o.End, failedAt, recovered)
		}
		if o.Domain != "gateway" || !strings.Contains(o.Verdict, "192.168.1.1 fails") {
			t.Errorf("outage %+v: want the gateway blamed with its reasoning", o)
		}
	}
	if v := l.counter(inet); v != 121 {
		t.Errorf("outage seconds %v, want 121 (from the restart to the recovery)", v)
	}
	l.close()
}

// The far end: one internet target fails while the tiers answer. Without
// tiers the domain is unknown. A target not seen failing for longer than
// its results count ends at its last failure.
func TestOutageBlame(t *testing.T) {
	gw, a, b := tiered("192.168.1.1", "gateway"), tiered("1.1.1.1", "internet"), tiered("9.9.9.9", "internet")
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	l := newOutageLab(t, t.TempDir(), t0, []*probe.Target{gw, a, b})
	l.step(map[*probe.Target]bool{gw: true, a: true, b: true})
	l.step(map[*probe.Target]bool{gw: true, a: false, b: true})
	if got := l.outages(); len(got) != 1 {
		t.Fatalf("%d outages, want the target's alone: a verdict that did not hold for a round is no domain outage: %+v", len(got), got)
	}
	l.step(map[*probe.Target]bool{gw: true, a: false, b: true})
	got := l.outages()
	if len(got) != 2 {
		t.Fatalf("%d outages, want the target's and the target domain's: %+v", len(got), got)
	}
	for _, o := range got {
		if o.Domain != "target" {
			t.Errorf("outage %+v, want the far end (target)", o)
		}
	}
	lastFailure := l.now
	l.now = l.now.Add(10 * time.Minute) // runs of a were not seen
	l.step(map[*probe.Target]bool{gw: true, a: true, b: true})
	for _, o := range l.outages() {
		if !o.IsDomain() && !o.End.Equal(lastFailure) {
			t.Errorf("outage ended %v, want its last failure %v: the runs between were not seen", o.End, lastFailure)
		}
	}
	l.close()

	plain := probe.NewTarget(config.Probe{Name: "p", Type: "ping", Interval: time.Minute}, config.Target{Name: "x", Host: "x"})
	l = newOutageLab(t, t.TempDir(), t0, []*probe.Target{plain})
	l.log.Observe(probe.Result{Target: plain, Start: t0, Duration: time.Second, Outcome: probe.OutcomeFailure})
	if got := l.outages(); len(got) != 1 || got[0].Domain != DomainUnknown || !strings.Contains(got[0].Verdict, "no target has a tier") {
		t.Errorf("outages without tiers: %+v, want one of domain unknown", got)
	}
	l.close()
}

// At start, the open outage of a target no longer configured, or one not
// seen failing for longer than its results count, ends at its last failure.
func TestOutageResumeCloses(t *testing.T) {
	dir := t.TempDir()
	store, err := history.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	kept := tiered("kept", "internet")
	if err := store.PutOutages([]history.Outage{
		{Probe: "p", Target: "gone", Domain: "isp", Start: t0, LastFailure: t0.Add(time.Minute)},
		{Probe: "p", Target: "kept", Domain: "isp", Start: t0, LastFailure: t0.Add(2 * time.Minute)},
		{Domain: "isp", Start: t0, LastFailure: t0.Add(2 * time.Minute)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	l := newOutageLab(t, dir, t0.Add(time.Hour), []*probe.Target{kept})
	got := l.outages()
	if len(got) != 3 {
		t.Fatalf("outages %+v", got)
	}
	for _, o := range got {
		if o.Open() || !o.End.Equal(o.LastFailure) {
			t.Errorf("outage %+v: want it closed at its last failure", o)
		}
	}
	l.close()
}

// A gateway that never answered (it filters ICMP) has no outage: it is
// unknown, not out; once it has answered, its failures are outages.
func TestOutageSilentDevice(t *testing.T) {
	gw, inet := tiered("192.168.1.1", "gateway"), tiered("1.1.1.1", "internet")
	l := newOutageLab(t, t.TempDir(), time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), []*probe.Target{gw, inet})
	l.step(map[*probe.Target]bool{gw: false, inet: true})
	l.step(map[*probe.Target]bool{gw: false, inet: true})
	if got := l.outages(); len(got) != 0 {
		t.Errorf("outages of a gateway that never answered: %+v", got)
	}
	l.step(map[*probe.Target]bool{gw: true, inet: true})
	l.step(map[*probe.Target]bool{gw: false, inet: true})
	if got := l.outages(); len(got) != 1 || got[0].Target != gw.Name {
		t.Errorf("outages %+v, want the gateway's once it had answered", got)
	}
	l.close()
}
