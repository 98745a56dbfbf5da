package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probes"
	"github.com/netpulse/netpulse/internal/testutil"
)

// reloadConfig is a ping probe on loopback whose runs are in flight most
// of the time (a 1.8 s burst every 2 s), so a reload nearly always meets
// one; targets are name=host pairs.
func reloadConfig(t *testing.T, dir string, targets ...string) *config.Config {
	t.Helper()
	list := ""
	for i := 0; i+1 < len(targets); i += 2 {
		list += fmt.Sprintf("{name: %s, host: %s}, ", targets[i], targets[i+1])
	}
	cfg, err := config.Parse(fmt.Appendf(nil, `
storage: {path: %s}
probes:
  - name: lan
    type: ping
    interval: 2s
    timeout: 2s
    targets: [%s]
    ping: {count: 9, packet_interval: 200ms}
`, dir, list), probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// resultLog keeps every result the agent's harness produces.
type resultLog struct {
	mu  sync.Mutex
	all []probe.Result
}

func (l *resultLog) of(target string) []probe.Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []probe.Result
	for _, r := range l.all {
		if r.Target.Name == target {
			out = append(out, r)
		}
	}
	return out
}

func runTestAgent(t *testing.T, cfg *config.Config) (*Agent, *resultLog) {
	t.Helper()
	a := newTestAgent(t, cfg)
	log := &resultLog{}
	next := a.runner.OnResult
	a.runner.OnResult = func(r probe.Result) {
		log.mu.Lock()
		log.all = append(log.all, r)
		log.mu.Unlock()
		next(r)
	}
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return a, log
}

// A reload by difference, with real pings on loopback: the unchanged
// target keeps its *Target, its counters (no reset), its success gauge and
// its run in flight, which completes as a success (no false loss point); a
// changed target keeps its success gauge (same series) and restarts; a
// removed target's gauges disappear at once; an added one's appear with
// its first run.
func TestReloadByDifference(t *testing.T) {
	testutil.NeedICMP(t)
	dir := t.TempDir()
	cfg := reloadConfig(t, dir, "same", "127.0.0.1", "changed", "127.0.0.2", "removed", "127.0.0.3")
	a, log := runTestAgent(t, cfg)
	testutil.Eventually(t, 15*time.Second, func() error {
		for _, name := range []string{"same", "changed", "removed"} {
			if len(log.of(name)) == 0 {
				return fmt.Errorf("no run of %s yet", name)
			}
		}
		return nil
	})
	same := targetOf(a, "lan", "same")
	before := gather(t, a)
	runsBefore, _ := before.Sum("netpulse_probe_runs_total", map[string]string{"target_name": "same"})

	// Reload until one reload met a run of "same" in flight (nearly always
	// the first: its runs take 1.8 s of every 2 s), switching the changed
	// target's host back and forth.
	straddled := false
	hosts := []string{"127.0.0.4", "127.0.0.2"}
	var applied []time.Time
	for i := 0; i < 10 && !straddled; i++ {
		next := reloadConfig(t, dir, "same", "127.0.0.1", "changed", hosts[i%2], "added", "127.0.0.5")
		// Aim at the middle of a run: runs start on a 2 s grid from the last
		// one's start. Only an aim: whether the reload met a run in flight is
		// checked below from the runs' own times.
		runs := log.of("same")
		aim := runs[len(runs)-1].Start.Add(800 * time.Millisecond)
		for time.Until(aim) < 100*time.Millisecond {
			aim = aim.Add(2 * time.Second)
		}
		time.Sleep(time.Until(aim))
		at := time.Now()
		ch, err := a.Apply(next)
		if err != nil {
			t.Fatal(err)
		}
		applied = append(applied, at)
		if i == 0 {
			if ch.Kept != 1 || ch.Changed != 1 || ch.Removed != 1 || ch.Added != 1 {
				t.Errorf("change %+v: want 1 kept, 1 changed, 1 removed, 1 added", ch)
			}
			f := gather(t, a)
			runs, _ := f.Sum("netpulse_probe_runs_total", map[string]string{"target_name": "same"})
			if runs < runsBefore {
				t.Errorf("runs of the unchanged target: %v after the reload, %v before: the counter was reset", runs, runsBefore)
			}
			for target, want := range map[string]bool{"same": true, "changed": true, "removed": false} {
				if _, ok := f.Sum("netpulse_probe_success", map[string]string{"target_name": target}); ok != want {
					t.Errorf("netpulse_probe_success{target_name=%q} present: %v just after the reload, want %v", target, ok, want)
				}
			}
			if _, ok := f.Sum("netpulse_ping_loss_ratio", map[string]string{"target_name": "removed"}); ok {
				t.Error("the removed target's ping gauges are still reported")
			}
		}
		if targetOf(a, "lan", "same") != same {
			t.Fatal("the unchanged target was replaced")
		}
		// Wait for the run that was in flight at the reload, if any, to end.
		testutil.Eventually(t, 10*time.Second, func() error {
			for _, r := range log.of("same") {
				if r.Start.After(at) {
					return nil
				}
			}
			return errors.New("no run of the unchanged target since the reload")
		})
		for _, r := range log.of("same") {
			if r.Start.Before(at) && r.Start.Add(r.Duration).After(at) {
				straddled = true
			}
		}
	}
	if !straddled {
		for _, r := range log.of("same") {
			t.Logf("run %s +%s %s", r.Start.Format(time.StampMilli), r.Duration, r.Outcome)
		}
		t.Logf("reloads at %v", applied)
		t.Fatalf("no reload of %d met a run of the unchanged target in flight", len(applied))
	}
	testutil.Eventually(t, 15*time.Second, func() error {
		if len(log.of("added")) == 0 {
			return errors.New("no run of the added target yet")
		}
		return nil
	})
	for _, r := range log.of("same") {
		if r.Outcome != probe.OutcomeSuccess {
			t.Errorf("unchanged target: run at %s recorded %s (%s): a false loss point", r.Start.Format(time.StampMilli),
				r.Outcome, r.ErrorType)
		}
	}
	f := gather(t, a)
	if _, ok := f.Sum("netpulse_probe_success", map[string]string{"target_name": "added"}); !ok {
		t.Error("the added target has no success series after its first run")
	}
	if _, ok := f.Sum("netpulse_probe_success", map[string]string{"target_name": "removed"}); ok {
		t.Error("the removed target's success series came back")
	}
	for _, r := range log.of("removed") {
		if r.Outcome != probe.OutcomeSuccess {
			t.Errorf("removed target: its last run recorded %s (%s); a run in flight should finish", r.Outcome, r.ErrorType)
		}
	}
}

// What the agent was built from cannot change in place: Apply says so and
// changes nothing; a configuration that cannot start (its token file is
// missing) is refused and the running one stays.
func TestApplyRefusals(t *testing.T) {
	dir := t.TempDir()
	cfg := reloadConfig(t, dir, "one", "127.0.0.1")
	a := newTestAgent(t, cfg)
	t.Cleanup(a.results.close)
	t.Cleanup(a.closeProbers)
	global := reloadConfig(t, dir, "one", "127.0.0.1")
	global.Global.Labels = map[string]string{"site": "b"}
	var restart *RestartError
	if _, err := a.Apply(global); !errors.As(err, &restart) || restart.Reason != "global changed" {
		t.Errorf("a new global block: %v, want a restart for global", err)
	}
	noToken := reloadConfig(t, dir, "one", "127.0.0.1", "two", "127.0.0.2")
	noToken.API.TokenFile = dir + "/missing"
	if _, err := a.Apply(noToken); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing token file: %v, want the read error", err)
	}
	if n := len(jobsOf(a)); n != 1 {
		t.Errorf("%d jobs after refused reloads, want the 1 of the running configuration", n)
	}
}

func gather(t *testing.T, a *Agent) testutil.Families {
	t.Helper()
	fams, err := a.telemetry.Gatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	f := testutil.Families{}
	for _, mf := range fams {
		f[mf.GetName()] = mf
	}
	return f
}

func targetOf(a *Agent, probeName, target string) *probe.Target {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.probes[probeName].targets[target]
}

// Every probe type's settings compare equal when they are parsed again
// from the same file: a reload of an unchanged configuration keeps every
// prober and target (a setting that never compared equal would restart its
// probe at every reload, and lose its state).
func TestReloadOfTheSameFileKeepsEverything(t *testing.T) {
	web, caFile := surfaceTLSServer(t)
	parse := func() *config.Config {
		cfg, err := config.Parse(fmt.Appendf(nil, surfaceConfig, "127.0.0.1:53", "http://127.0.0.1:1", t.TempDir(),
			web.Listener.Addr().String(), caFile, web.URL), probes.Registry)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	a := newTestAgent(t, parse())
	t.Cleanup(a.results.close)
	t.Cleanup(a.closeProbers)
	before := map[string]*proberSlot{}
	for name, lp := range a.probes {
		before[name] = lp.slot
	}
	next := parse()
	next.Storage = a.cfg.Storage // another temporary directory: not what this test is about
	ch, err := a.Apply(next)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Kept != len(a.targets) || ch.Added+ch.Removed+ch.Changed != 0 {
		t.Errorf("reload of the same file: %+v, want all %d targets kept", ch, len(a.targets))
	}
	for name, lp := range a.probes {
		if lp.slot != before[name] {
			t.Errorf("probe %s (%s) got a new prober: its settings do not compare equal", name, lp.cfg.Type)
		}
	}
}
