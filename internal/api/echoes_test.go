package api

import (
	"encoding/json"
	"testing"

	"github.com/netpulse/netpulse/internal/probe"
)

// failedRunEchoes are the echoes the ping type keeps of a run, as JSON:
// one of each fate.
const failedRunEchoes = `[{"seq":0,"sent_offset_seconds":0.000026,"rtt_seconds":null,"fate":"lost"},` +
	`{"seq":1,"sent_offset_seconds":0.2,"rtt_seconds":0.0123,"fate":"replied","ttl":57,"duplicates":1},` +
	`{"seq":2,"sent_offset_seconds":0.4,"rtt_seconds":null,"fate":"error","icmp_error":{"type":3,"code":1,"from":"192.0.2.254","meaning":"host unreachable"}},` +
	`{"seq":3,"sent_offset_seconds":null,"rtt_seconds":null,"fate":"error","error":"sendmsg: operation not permitted","network_type":"ipv6"}]`

// putEchoes keeps failedRunEchoes as the fixture's failed run's evidence.
func putEchoes(t *testing.T, f *fixture) {
	t.Helper()
	id, err := probe.ParseRunID(f.ids["failed"])
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.PutEvidence(id, "echoes", json.RawMessage(failedRunEchoes)); err != nil {
		t.Fatal(err)
	}
}

// A run's kept echoes are in its debug view, as the ping type kept them
// (checked against openapi.json by serve); a run without any shows none.
func TestRunEchoes(t *testing.T) {
	f := newFixture(t, nil)
	putEchoes(t, f)
	var run struct {
		Echoes json.RawMessage `json:"echoes"`
	}
	serve(t, f.api, request{path: "/api/v1/runs/" + f.ids["failed"]}).decode(t, &run)
	if string(run.Echoes) != failedRunEchoes {
		t.Errorf("debug view's echoes\n%s\nwant\n%s", run.Echoes, failedRunEchoes)
	}
	var other map[string]any
	serve(t, f.api, request{path: "/api/v1/runs/" + f.ids["on-demand"]}).decode(t, &other)
	if _, ok := other["echoes"]; ok {
		t.Error("a run without kept echoes shows echoes")
	}
}
