package agent

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/faults"
	"github.com/netpulse/netpulse/internal/probes"
	"github.com/netpulse/netpulse/internal/testutil"
)

// The API's info carries the fault-domain verdict of the tiered targets'
// runs, with its reasoning.
func TestVerdictInInfo(t *testing.T) {
	testutil.NeedICMP(t)
	cfg, err := config.Parse([]byte(`
probes:
  - name: gw
    type: ping
    interval: 1m
    timeout: 2s
    targets: [{name: self, host: 127.0.0.1, tier: gateway}]
    ping: {count: 2, packet_interval: 10ms}
storage: {path: "`+t.TempDir()+`"}
`), probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	a := newTestAgent(t, cfg)
	jobs := jobsOf(a)
	for _, j := range jobs {
		j.Run(t.Context())
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/api/v1/info", nil)
	req.Host = "localhost" // reads on a loopback listener check Host (DNS rebinding)
	a.api.Load().ServeHTTP(rec, req)
	var info struct {
		Verdict faults.Verdict `json:"verdict"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &info); err != nil {
		t.Fatalf("%v: %s", err, rec.Body)
	}
	if v := info.Verdict; v.Domain != faults.DomainNone || !strings.Contains(v.Reason, "gateway self (127.0.0.1) answers") {
		t.Errorf("verdict %+v, want none, with the gateway answering", v)
	}
}
