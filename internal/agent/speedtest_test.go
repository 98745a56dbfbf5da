package agent

import (
	"fmt"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probes"
	"github.com/netpulse/netpulse/internal/speedtestserver/servertest"
	"github.com/netpulse/netpulse/internal/testutil"
)

// A speed test whose next run would exceed the data budget is skipped,
// counted as such, and transfers nothing; the budget's use is exported.
func TestSpeedtestBudgetSkip(t *testing.T) {
	srv := servertest.Start(t)

	cfg, err := config.Parse(fmt.Appendf(nil, `
storage: {path: %s}
probes:
  - name: speed
    type: speedtest
    interval: 1h
    timeout: 30s
    targets: [{name: lan, host: "%s"}]
    speedtest: {duration: 1s, max_bytes: 5MB, packet_loss: false, budget: {daily: 10MB}}
`, t.TempDir(), srv.URL()), probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	a := newTestAgent(t, cfg)
	jobs := jobsOf(a)
	if len(jobs) != 1 || !jobs[0].Exclusive || jobs[0].Jitter != 30*time.Minute {
		t.Fatalf("speed-test job %+v: want exclusive with 30m jitter", jobs[0])
	}

	jobs[0].Run(t.Context()) // a loopback link reaches both 5 MB caps: the next run may not fit
	after1 := srv.Stats()
	jobs[0].Run(t.Context())
	// Requests, not bytes: the first run's last upload bytes may still be
	// draining from loopback socket buffers into the server.
	if after2 := srv.Stats(); after2.Downloads != after1.Downloads || after2.Uploads != after1.Uploads {
		t.Errorf("the skipped run reached the server: %+v, then %+v", after1, after2)
	}

	fams, err := a.telemetry.Gatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	f := testutil.Families{}
	for _, mf := range fams {
		f[mf.GetName()] = mf
	}
	runs := func(outcome, errType string) float64 {
		labels := map[string]string{"probe_name": "speed", "outcome": outcome}
		if errType != "" {
			labels["error_type"] = errType
		}
		v, _ := f.Sum("netpulse_probe_runs_total", labels)
		return v
	}
	if s, k := runs("success", ""), runs("skipped", "budget"); s != 1 || k != 1 {
		t.Errorf("runs: %g successful, %g skipped for the budget; want 1 and 1", s, k)
	}
	used, _ := f.Sum("netpulse_speedtest_budget_used_bytes", map[string]string{"probe_name": "speed", "period": "day"})
	moved, _ := f.Sum("netpulse_speedtest_bytes_total", map[string]string{"probe_name": "speed"})
	limit, _ := f.Sum("netpulse_speedtest_budget_limit_bytes", map[string]string{"probe_name": "speed", "period": "day"})
	// On the wire: at least the 5 MB the download read (bytes an upload
	// left in a socket buffer when its cap closed the connection never
	// crossed it).
	if used < 5e6 || used != moved || limit != 10e6 {
		t.Errorf("budget used %g (bytes_total %g), limit %g; want >= 5 MB used, equal to the bytes moved, of 10 MB", used, moved, limit)
	}
}
