package api

import (
	"net/url"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/history"
	"github.com/netpulse/netpulse/internal/probe"
)

// The outage log: newest first, by overlap with the window, filtered by
// probe, target or domain; an open outage has no end and lasts until now.
func TestOutages(t *testing.T) {
	f := newFixture(t, nil)
	t0 := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
	if err := f.store.PutOutages([]history.Outage{
		{Probe: "lan", Target: "gw", Domain: "isp", Start: t0, End: t0.Add(time.Minute), LastFailure: t0.Add(50 * time.Second),
			Verdict: "gateway answers; isp fails ⇒ isp"},
		{Domain: "isp", Start: t0.Add(10 * time.Second), End: t0.Add(time.Minute), LastFailure: t0.Add(50 * time.Second)},
		{Probe: "lan", Target: "v6", Domain: "target", Start: t0.Add(2 * time.Hour), LastFailure: t0.Add(2 * time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	type outage struct {
		Probe, Target, Domain, Verdict string
		Start                          time.Time
		End                            *time.Time
		Duration                       float64 `json:"duration_seconds"`
	}
	get := func(query string) []outage {
		t.Helper()
		var out struct {
			Outages []outage
			More    bool
		}
		a := serve(t, f.api, request{path: "/api/v1/outages?" + query})
		if a.status != 200 {
			t.Fatalf("%s: %d %s", query, a.status, a.body)
		}
		a.decode(t, &out)
		return out.Outages
	}
	all := get("")
	if len(all) != 3 || all[0].Target != "v6" || all[0].End != nil || all[0].Duration < 3600 || all[2].Target != "gw" {
		t.Fatalf("outages %+v, want 3, newest (open, lasting an hour or more) first", all)
	}
	if gw := all[2]; gw.End == nil || !gw.End.Equal(t0.Add(time.Minute)) || gw.Duration != 60 || gw.Domain != "isp" ||
		gw.Verdict != "gateway answers; isp fails ⇒ isp" {
		t.Errorf("closed outage %+v", gw)
	}
	if got := get("probe=lan&target=gw"); len(got) != 1 || got[0].Target != "gw" {
		t.Errorf("probe and target: %+v", got)
	}
	if got := get("domain=isp"); len(got) != 2 {
		t.Errorf("domain isp: %+v, want the target's and the domain's", got)
	}
	if got := get("since=90m"); len(got) != 1 || got[0].Target != "v6" {
		t.Errorf("since 90m: %+v, want the open one", got)
	}
	if got := get("until=" + url.QueryEscape(t0.Add(5*time.Second).Format(time.RFC3339))); len(got) != 1 || got[0].Target != "gw" {
		t.Errorf("until t0+5s: %+v, want the first", got)
	}
	if a := serve(t, f.api, request{path: "/api/v1/outages?since=yesterday"}); a.status != 400 {
		t.Errorf("bad since: %d %s", a.status, a.body)
	}
}

// A run's evidence (a path snapshot taken on trouble) is in its debug view.
func TestRunPathSnapshot(t *testing.T) {
	f := newFixture(t, nil)
	id, err := probe.ParseRunID(f.ids["failed"])
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.PutEvidence(id, "path_snapshot", map[string]any{"hop_list": "192.0.2.254 *", "loss_from_hop": 2}); err != nil {
		t.Fatal(err)
	}
	var run struct {
		PathSnapshot struct {
			HopList     string `json:"hop_list"`
			LossFromHop int    `json:"loss_from_hop"`
		} `json:"path_snapshot"`
	}
	serve(t, f.api, request{path: "/api/v1/runs/" + f.ids["failed"]}).decode(t, &run)
	if run.PathSnapshot.HopList != "192.0.2.254 *" || run.PathSnapshot.LossFromHop != 2 {
		t.Errorf("debug view's path snapshot %+v", run.PathSnapshot)
	}
	var other map[string]any
	serve(t, f.api, request{path: "/api/v1/runs/" + f.ids["on-demand"]}).decode(t, &other)
	if _, ok := other["path_snapshot"]; ok {
		t.Error("a run without evidence shows a path snapshot")
	}
}
