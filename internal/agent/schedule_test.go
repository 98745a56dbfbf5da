package agent

import (
	"fmt"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probes"
	"github.com/netpulse/netpulse/internal/speedtestserver/servertest"
)

// The schedule block reaches the jobs: a speed test runs within a minute
// of a start without history, an interval after its last run once history
// has one; a probe with windows waits for their opening; ping runs
// coalesce, speed tests do not.
func TestScheduleReachesJobs(t *testing.T) {
	srv := servertest.Start(t)
	cfg, err := config.Parse(fmt.Appendf(nil, `
storage: {path: %s}
probes:
  - name: speed
    type: speedtest
    interval: 1h
    timeout: 30s
    targets: [{name: lan, host: "%s"}]
    speedtest: {duration: 1s, max_bytes: 5MB, packet_loss: false}
  - name: night
    type: ping
    schedule: {windows: ["01:00-06:00"]}
    targets: [{host: 127.0.0.1}]
`, t.TempDir(), srv.URL()), probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	a := newTestAgent(t, cfg)
	jobs := jobsOf(a)
	speed, night := jobs[0], jobs[1]
	if speed.First == nil || night.First != nil || night.Open == nil || speed.Open != nil {
		t.Fatalf("speed: first %v open %v; night: first %v open %v", speed.First != nil, speed.Open != nil,
			night.First != nil, night.Open != nil)
	}
	now := time.Now()
	if first := speed.First(now); first.Before(now) || first.After(now.Add(time.Minute)) {
		t.Errorf("without history the first speed test is at %s, want within a minute of %s", first, now)
	}
	start := time.Now()
	speed.Run(t.Context())
	if first := speed.First(time.Now()); first.Before(start.Add(time.Hour-time.Second)) || first.After(time.Now().Add(time.Hour)) {
		t.Errorf("after a run started at %s the first slot is %s, want an hour after it", start, first)
	}
	// Ping's runs are timed by the kernel: they may start on the
	// scheduler's tick, together; a speed test's start on its slot.
	if !night.Coalesce || speed.Coalesce {
		t.Errorf("coalescing starts: ping %v, speed test %v; want ping only", night.Coalesce, speed.Coalesce)
	}
	noon := time.Date(2026, 11, 27, 12, 0, 0, 0, time.Local)
	if got, want := night.Open(noon), time.Date(2026, 11, 28, 1, 0, 0, 0, time.Local); !got.Equal(want) {
		t.Errorf("a noon slot opens at %s, want %s", got, want)
	}
}
