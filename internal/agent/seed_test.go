package agent

import (
	"fmt"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/history"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probes"
	"github.com/netpulse/netpulse/internal/testutil"
)

// At start, each target's last outcome and last success come back from
// history: netpulse_probe_success and its last-success time exist before
// the target's next run (an hourly probe would otherwise have no series for
// up to an hour and a half after a restart).
func TestLastResultsRestoredAtStart(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse(fmt.Appendf(nil, `
storage: {path: %s}
probes:
  - name: lan
    type: ping
    interval: 1h
    targets: [{name: up, host: 127.0.0.1}, {name: down, host: 127.0.0.2}, {name: new, host: 127.0.0.3}]
`, dir), probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	store, err := history.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	pc := cfg.Probes[0]
	success := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	up, down := probe.NewTarget(pc, pc.Targets[0]), probe.NewTarget(pc, pc.Targets[1])
	if err := store.Put([]probe.Result{
		{Target: up, Start: success, Duration: time.Millisecond, Outcome: probe.OutcomeSuccess, RunID: probe.NewRunID(up, success)},
		{Target: down, Start: success, Duration: time.Millisecond, Outcome: probe.OutcomeSuccess, RunID: probe.NewRunID(down, success)},
		{Target: down, Start: success.Add(time.Minute), Duration: time.Millisecond, Outcome: probe.OutcomeFailure,
			ErrorType: probe.ErrNoReply, RunID: probe.NewRunID(down, success.Add(time.Minute))},
	}); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	a := newTestAgent(t, cfg)
	t.Cleanup(a.results.close)
	fams, err := a.telemetry.Gatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	f := testutil.Families{}
	for _, mf := range fams {
		f[mf.GetName()] = mf
	}
	for target, want := range map[string]float64{"up": 1, "down": 0} {
		labels := map[string]string{"target_name": target}
		if v, ok := f.Sum("netpulse_probe_success", labels); !ok || v != want {
			t.Errorf("%s: netpulse_probe_success %v (present %v) before any run, want %v from history", target, v, ok, want)
		}
		at, _ := f.Sum("netpulse_probe_last_success_timestamp_seconds", labels)
		if wantAt := float64(success.Add(time.Millisecond).UnixMilli()) / 1e3; at < wantAt-0.01 || at > wantAt+0.01 {
			t.Errorf("%s: last success at %v, want %v (the stored run's end)", target, at, wantAt)
		}
	}
	if _, ok := f.Sum("netpulse_probe_success", map[string]string{"target_name": "new"}); ok {
		t.Error("a target without history has a success series before its first run")
	}
}
