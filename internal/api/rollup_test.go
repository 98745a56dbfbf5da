package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/history"
	"github.com/netpulse/netpulse/internal/probe"
)

// TestHistoryPastRawRetention: where raw results were trimmed, the
// results answer has summaries (rollup, the latency quantiles, no run
// id) that account for every run, and aggregates carry the quantiles.
func TestHistoryPastRawRetention(t *testing.T) {
	s, err := history.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetSpecs(map[string]history.Spec{"ping": {Distribution: "rtt_avg_seconds", Values: []string{"loss_ratio"}}})
	p := config.Probe{Name: "lan", Type: "ping", Interval: 10 * time.Second, Timeout: time.Second,
		Targets: []config.Target{{Name: "gw", Host: "192.0.2.1"}}}
	tg := probe.NewTarget(p, p.Targets[0])
	t0 := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	var batch []probe.Result
	for i := range 3 * 360 { // every 10 s for 3 hours
		st := t0.Add(time.Duration(i) * 10 * time.Second)
		batch = append(batch, probe.Result{Target: tg, Start: st, Duration: time.Millisecond, Outcome: probe.OutcomeSuccess,
			RunID: probe.NewRunID(tg, st), Values: probe.Values{"rtt_avg_seconds": 0.001 * float64(1+i%10), "loss_ratio": 0}})
	}
	if err := s.Put(batch); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(3 * time.Hour)
	if _, err := s.Trim(now, history.Retention{MaxAge: 24 * time.Hour, RawMaxAge: time.Hour, MinuteMaxAge: 2 * time.Hour,
		MaxBytes: 1 << 40}); err != nil {
		t.Fatal(err)
	}
	a := New(Options{Probes: []config.Probe{p}, Targets: []*probe.Target{tg}, Store: s, Feed: NewFeed(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	window := "since=" + t0.Format(time.RFC3339) + "&until=" + now.Format(time.RFC3339)

	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/probes/lan/targets/gw/results?limit=5000&"+window, nil))
	var res struct {
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || rec.Code != 200 {
		t.Fatalf("%d %v: %.300s", rec.Code, err, rec.Body)
	}
	runs, summaries := 0, 0
	for _, r := range res.Results {
		ru, ok := r["rollup"].(map[string]any)
		if !ok {
			runs++
			continue
		}
		summaries++
		runs += int(ru["runs"].(float64))
		if _, has := r["run_id"]; has {
			t.Errorf("a summary has a run id: %v", r)
		}
		q, _ := ru["quantiles"].(map[string]any)["rtt_avg_seconds"].(map[string]any)
		if med, _ := q["median"].(float64); med < 0.001 || med > 0.0105 {
			t.Errorf("summary %v: median %v", r["start"], q["median"])
		}
	}
	if runs != 3*360 || summaries != 61 { // an hour summary, 60 minute summaries, then raw
		t.Errorf("%d runs in %d rows (%d summaries), want %d runs and 61 summaries", runs, len(res.Results), summaries, 3*360)
	}

	rec = httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/probes/lan/targets/gw/aggregate?step=1h&"+window, nil))
	var agg struct {
		Buckets []struct {
			Runs   int                           `json:"runs"`
			Values map[string]map[string]float64 `json:"values"`
		} `json:"buckets"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &agg); err != nil || len(agg.Buckets) != 3 {
		t.Fatalf("%d buckets, %v: %.300s", len(agg.Buckets), err, rec.Body)
	}
	for i, b := range agg.Buckets {
		v := b.Values["rtt_avg_seconds"]
		if b.Runs != 360 || !(v["min"] <= v["p10"] && v["p10"] <= v["median"] && v["median"] <= v["p90"] && v["p90"] <= v["max"]) {
			t.Errorf("hour %d: %d runs, rtt %v", i, b.Runs, v)
		}
	}
}
