//go:build linux

package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probes"
	"github.com/netpulse/netpulse/internal/testutil"
)

type outageEntry struct {
	Probe, Target, Domain, Verdict string
	Start                          time.Time
	End                            *time.Time
}

func outagesOf(t *testing.T, a *Agent) []outageEntry {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/api/v1/outages", nil)
	req.Host = "localhost"
	a.api.Load().ServeHTTP(rec, req)
	var out struct{ Outages []outageEntry }
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%v: %s", err, rec.Body)
	}
	return out.Outages
}

// runAgent runs a until the returned stop is called.
func runAgent(t *testing.T, a *Agent) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	}
}

// waitOutages polls the agent's outage log until ok accepts it.
func waitOutages(t *testing.T, a *Agent, what string, ok func([]outageEntry) bool) []outageEntry {
	t.Helper()
	var got []outageEntry
	testutil.Eventually(t, 30*time.Second, func() error {
		if got = outagesOf(t, a); !ok(got) {
			return fmt.Errorf("no %s in the outage log: %+v", what, got)
		}
		return nil
	})
	return got
}

// The ISP link of a namespace chain breaks: the outage log shows the ISP
// router's and the internet targets' outages, blamed on the ISP, and an
// ISP domain outage; the agent restarts while the link is down, and after
// the repair each outage is one period across the restart.
func TestOutagesAcrossRestart(t *testing.T) {
	testutil.NeedICMP(t)
	testutil.NeedNft(t)
	c := testutil.NewChain(t)
	dir := t.TempDir()
	load := func() *config.Config {
		cfg, err := config.Parse(fmt.Appendf(nil, `
storage: {path: %q}
probes:
  - name: tiers
    type: ping
    interval: 2s
    timeout: 1500ms
    ping: {count: 3, packet_interval: 50ms}
    targets:
      - {name: home, host: %s, tier: gateway}
      - {name: isp, host: %s, tier: isp}
      - {name: inet, host: %s, tier: internet}
      - {name: dst, host: %s, tier: internet}
`, dir, c.HomeAddr, c.ISPAddr, c.InetAddr, c.Target), probes.Registry)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	ispDown := func(open bool) func([]outageEntry) bool {
		return func(got []outageEntry) bool {
			n := 0
			for _, o := range got {
				if o.Domain == "isp" && (o.End == nil) == open && (o.Target == "isp" || o.Target == "inet" || o.Target == "dst" || o.Probe == "") {
					n++
				}
			}
			return n == 4
		}
	}
	a := newTestAgent(t, load())
	stop := runAgent(t, a)
	// Every target answers once (their last success goes to history).
	waitOutages(t, a, "a success of every target", func([]outageEntry) bool {
		for _, tg := range a.targets {
			if outcome, _, _ := a.api.Load().Last(tg); outcome != "success" {
				return false
			}
		}
		return true
	})
	c.LinkDown(t, 1)
	broken := time.Now()
	waitOutages(t, a, "an ISP verdict", func([]outageEntry) bool { return a.judge.Load().judge.Verdict().Domain == "isp" })
	// The figure of "time from a link failing to the verdict changing"
	// (scheduled runs: 2 s interval, random offsets, 1.5 s timeout).
	t.Logf("ISP link down: verdict isp after %v (%.2f intervals)", time.Since(broken).Round(10*time.Millisecond),
		time.Since(broken).Seconds()/2)
	before := waitOutages(t, a, "open ISP outages", ispDown(true))
	stop()

	b := newTestAgent(t, load())
	stop = runAgent(t, b)
	defer stop()
	// Resumed: read from history.
	if got := outagesOf(t, b); !ispDown(true)(got) {
		t.Fatalf("after the restart: %+v, want the open outages resumed", got)
	}
	waitOutages(t, b, "a round of the new agent", func([]outageEntry) bool { return b.judge.Load().judge.Settled() })
	c.LinkUp(t, 1)
	after := waitOutages(t, b, "closed ISP outages", ispDown(false))
	if len(after) != len(before) {
		t.Errorf("outages before the restart %+v, after the repair %+v: want the same ones, closed", before, after)
	}
	fams, err := b.telemetry.Gatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	f := testutil.Families{}
	for _, mf := range fams {
		f[mf.GetName()] = mf
	}
	if v, ok := f.Sum("netpulse_outage_seconds_total", map[string]string{"target_name": "dst"}); !ok || v <= 0 {
		t.Errorf("netpulse_outage_seconds_total of dst: %v (present %v), want the time since the restart", v, ok)
	}
	for _, o := range after {
		for _, p := range before {
			if o.Target == p.Target && o.Probe == p.Probe && !o.Start.Equal(p.Start) {
				t.Errorf("%s/%s: outage from %v after the restart, want from %v (one outage across it)", o.Probe, o.Target, o.Start, p.Start)
			}
		}
		if o.End == nil {
			continue
		}
		t.Logf("%s/%s %s: %v – %v: %s", o.Probe, o.Target, o.Domain, o.Start.Format(time.TimeOnly), o.End.Format(time.TimeOnly), o.Verdict)
	}
}
