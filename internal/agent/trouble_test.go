//go:build linux

package agent

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probes"
	"github.com/netpulse/netpulse/internal/testutil"
)

// get answers a GET of path from the agent's API as a loopback client.
func get(t *testing.T, a *Agent, path string, v any) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", path, nil)
	req.Host = "localhost"
	a.api.Load().ServeHTTP(rec, req)
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, rec.Body)
	}
}

// A ping target behind a broken link: its failed run's debug view shows
// the path snapshot its loss triggered, kept in history, with the hop
// where loss starts.
func TestPathSnapshotInDebugView(t *testing.T) {
	testutil.NeedICMP(t)
	testutil.NeedNft(t)
	c := testutil.NewChain(t)
	cfg, err := config.Parse(fmt.Appendf(nil, `
storage: {path: %q}
probes:
  - name: wan
    type: ping
    interval: 2s
    timeout: 1500ms
    ping:
      count: 3
      packet_interval: 50ms
      path_on_trouble: {loss: 50%%, min_gap: 1m, max_hops: 6}
    targets: [{name: dst, host: %s}]
`, t.TempDir(), c.Target), probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	c.LinkDown(t, 3)
	a := newTestAgent(t, cfg)
	stop := runAgent(t, a)
	defer stop()
	type snapshot struct {
		HopList     string `json:"hop_list"`
		LossFromHop int    `json:"loss_from_hop"`
		PacketsSent int    `json:"packets_sent"`
		Trigger     string `json:"trigger"`
	}
	var snap *snapshot
	testutil.Eventually(t, 30*time.Second, func() error {
		var res struct {
			Results []struct {
				RunID   string `json:"run_id"`
				Outcome string `json:"outcome"`
			} `json:"results"`
		}
		get(t, a, "/api/v1/probes/wan/targets/dst/results?since=10m", &res)
		for _, r := range res.Results {
			var run struct {
				PathSnapshot *snapshot `json:"path_snapshot"`
			}
			get(t, a, "/api/v1/runs/"+r.RunID, &run)
			if run.PathSnapshot != nil {
				snap = run.PathSnapshot
				return nil
			}
		}
		return fmt.Errorf("no run with a path snapshot among %d", len(res.Results))
	})
	t.Logf("debug view's path snapshot: %+v", *snap)
	if want := c.HomeAddr.String() + " " + c.ISPAddr.String() + " " + c.InetAddr.String() + " *"; snap.HopList != want ||
		snap.LossFromHop != 4 || snap.Trigger != "loss" {
		t.Errorf("path snapshot %+v, want %q with loss from hop 4, triggered by loss", *snap, want)
	}
}
