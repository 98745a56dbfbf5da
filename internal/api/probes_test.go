package api

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probes"
)

// The tests in this file read: probes, results, aggregates and their
// errors, over the fixture's real store. They need no scheduler.

type probesAnswer struct {
	Probes []probeAnswer `json:"probes"`
}

type valueAnswer struct {
	Name  string `json:"name"`
	Unit  string `json:"unit"`
	Label string `json:"label"`
	Role  string `json:"role"`
}

// typeValues are a registered type's values as the API should list them.
func typeValues(name string) []valueAnswer {
	var out []valueAnswer
	for _, v := range probes.Registry.Lookup(name).Values {
		out = append(out, valueAnswer{Name: v.Name, Unit: v.Unit, Label: v.Label, Role: v.Role})
	}
	return out
}

type probeAnswer struct {
	Name            string        `json:"name"`
	Type            string        `json:"type"`
	IntervalSeconds float64       `json:"interval_seconds"`
	View            string        `json:"view"`
	Values          []valueAnswer `json:"values"`
	Targets         []struct {
		Name        string             `json:"name"`
		Labels      map[string]string  `json:"labels"`
		Status      string             `json:"status"`
		Reason      string             `json:"status_reason"`
		Thresholds  map[string]float64 `json:"thresholds"`
		Last        *resultAnswer      `json:"last_result"`
		LastSuccess *time.Time         `json:"last_success"`
		TraceURL    string             `json:"last_trace_url"`
	} `json:"targets"`
}

// resultAnswer is a result as a client reads it; pointers tell null (a
// NaN or infinite figure) and absent fields apart from zero.
type resultAnswer struct {
	RunID     string              `json:"run_id"`
	Target    string              `json:"target"`
	Start     time.Time           `json:"start"`
	Outcome   string              `json:"outcome"`
	ErrorType string              `json:"error_type"`
	Error     string              `json:"error"`
	TraceID   string              `json:"trace_id"`
	OnDemand  bool                `json:"on_demand"`
	Values    map[string]*float64 `json:"values"`
	Logs      []map[string]any    `json:"logs"`
}

func TestProbesList(t *testing.T) {
	f := newFixture(t, nil)
	var got probesAnswer
	a := serve(t, f.api, request{path: "/api/v1/probes"})
	a.decode(t, &got)
	if a.status != 200 || len(got.Probes) != 2 || got.Probes[0].Name != "lan" || got.Probes[1].Name != "speed" {
		t.Fatalf("probes: %d %s", a.status, a.body)
	}
	lan, speed := got.Probes[0], got.Probes[1]
	// The type's view and values come from the registry, for the page.
	if lan.Type != "ping" || lan.IntervalSeconds != 30 || lan.View != probe.ViewLatency ||
		!reflect.DeepEqual(lan.Values, typeValues("ping")) {
		t.Errorf("lan: %+v", lan)
	}
	if speed.View != probe.ViewThroughput || !reflect.DeepEqual(speed.Values, typeValues("speedtest")) {
		t.Errorf("speed: view %q values %+v", speed.View, speed.Values)
	}

	gw, v6 := lan.Targets[0], lan.Targets[1]
	live := fixtureDay.Add(2 * time.Hour)
	// gw's last run lost 20% of its echoes against its probe's 5%: degraded, saying so.
	if gw.Name != "gw" || gw.Status != "degraded" || gw.Reason != "loss 20% > 5%" || gw.Labels["site"] != "home" || gw.Last == nil ||
		gw.Thresholds["loss_ratio"] != 0.05 || gw.Thresholds["latency_seconds"] != 0.1 || len(gw.Thresholds) != 2 ||
		gw.Last.RunID != f.ids["live"] || gw.LastSuccess == nil || !gw.LastSuccess.Equal(live.Add(101*time.Millisecond)) {
		t.Errorf("gw: %+v", gw)
	}
	// The last result is shown without its log lines (the debug view has them).
	if gw.Last.Logs != nil || gw.TraceURL != "http://tempo.example/trace/"+gw.Last.TraceID || *gw.Last.Values["loss_ratio"] != 0.2 {
		t.Errorf("gw's last result: %+v, trace URL %q", gw.Last, gw.TraceURL)
	}
	// A failing target with no success on record; its error text bounded
	// as the store bounds it.
	if v6.Status != "down" || v6.Reason != probe.ErrNetwork || v6.LastSuccess != nil || v6.Last.ErrorType != probe.ErrNetwork || !v6.Last.OnDemand ||
		len(v6.Last.Error) != 1024+len("…") || v6.Last.Values == nil {
		t.Errorf("v6: %s %+v, error of %d bytes", v6.Status, v6.Last, len(v6.Last.Error))
	}
	// Seeded from the store at start: the last of the daily speed tests.
	if isp := speed.Targets[0]; isp.Status != "up" || isp.Reason != "" || isp.Thresholds != nil || isp.Last == nil || !isp.Last.Start.Before(fixtureDay) {
		t.Errorf("isp: %+v", isp)
	}

	var one probeAnswer
	if a := serve(t, f.api, request{path: "/api/v1/probes/speed"}); a.status != 200 {
		t.Errorf("one probe: %d %s", a.status, a.body)
	} else if a.decode(t, &one); one.Name != "speed" || len(one.Targets) != 1 {
		t.Errorf("one probe: %+v", one)
	}
}

// TestProbesBeforeAnyRun: a target with no result, live or stored, is
// unknown, with a null last result.
func TestProbesBeforeAnyRun(t *testing.T) {
	opts, _ := fixtureOptions(t, t.TempDir())
	var got probesAnswer
	serve(t, New(opts), request{path: "/api/v1/probes"}).decode(t, &got)
	for _, p := range got.Probes {
		for _, tg := range p.Targets {
			if tg.Status != "unknown" || tg.Last != nil || tg.LastSuccess != nil {
				t.Errorf("%s/%s before any run: %+v", p.Name, tg.Name, tg)
			}
		}
	}
}

type resultsAnswer struct {
	Results []resultAnswer `json:"results"`
	Count   int            `json:"count"`
	More    bool           `json:"more"`
	Since   time.Time      `json:"since"`
	Until   time.Time      `json:"until"`
}

func TestResults(t *testing.T) {
	f := newFixture(t, nil)
	gw := "/api/v1/probes/lan/targets/gw/results?"
	results := func(query string) resultsAnswer {
		t.Helper()
		var r resultsAnswer
		a := serve(t, f.api, request{path: gw + query})
		if a.status != 200 {
			t.Fatalf("%s: %d %s", query, a.status, a.body)
		}
		a.decode(t, &r)
		if r.Count != len(r.Results) {
			t.Errorf("%s: count %d, %d results", query, r.Count, len(r.Results))
		}
		return r
	}

	// Runs 60 to 180 started in [10:30, 11:30:00.5).
	r := results("since=2026-11-01T10:30:00Z&until=2026-11-01T11:30:00.5Z")
	if r.Count != 121 || r.More || !r.Results[0].Start.Equal(gwStart(60)) || !r.Results[120].Start.Equal(gwStart(180)) ||
		!r.Since.Equal(fixtureDay.Add(30*time.Minute)) || !r.Until.Equal(fixtureDay.Add(90*time.Minute+500*time.Millisecond)) {
		t.Errorf("an hour: %d results from %v to %v, more %v, window %v–%v", r.Count, r.Results[0].Start,
			r.Results[len(r.Results)-1].Start, r.More, r.Since, r.Until)
	}
	for i, res := range r.Results {
		if i > 0 && !res.Start.After(r.Results[i-1].Start) {
			t.Fatalf("results out of order at %d", i)
		}
		if res.Logs != nil {
			t.Errorf("run %s: a history query carries no log lines", res.RunID)
		}
		if res.RunID == f.ids["failed"] && (res.Outcome != "failure" || res.ErrorType != probe.ErrNoReply ||
			!strings.Contains(res.Error, `("timeout" <5s> & more) ünïcode`) || res.Values["rtt_avg_seconds"] != nil ||
			*res.Values["loss_ratio"] != 1) {
			t.Errorf("the failed run reads %+v", res)
		}
	}

	// The newest first, limited: more says rows were left.
	all := "since=2026-10-01T00:00:00Z&until=2026-11-02T00:00:00Z"
	if r := results(all + "&order=desc&limit=7"); r.Count != 7 || !r.More || !r.Results[0].Start.Equal(gwStart(239)) ||
		!r.Results[6].Start.Equal(gwStart(233)) {
		t.Errorf("desc, limit 7: %d, more %v, first %v", r.Count, r.More, r.Results[0].Start)
	}
	if r := results(all + "&order=asc&limit=240"); r.Count != 240 || r.More || !r.Results[0].Start.Equal(gwStart(0)) {
		t.Errorf("asc, limit 240: %d, more %v", r.Count, r.More)
	}
	if r := results(all); r.Count != 240 {
		t.Errorf("default limit: %d results", r.Count)
	}

	// Durations count back from now; the default window is the last hour.
	now := time.Now()
	tg := f.targets["lan/gw"]
	recent := probe.Result{Target: tg, Start: now.Add(-10 * time.Minute), Outcome: probe.OutcomeSuccess,
		RunID: probe.NewRunID(tg, now.Add(-10*time.Minute))}
	if err := f.store.Put([]probe.Result{recent}); err != nil {
		t.Fatal(err)
	}
	if r := results(""); r.Count != 1 || r.Results[0].RunID != recent.RunID.String() || r.Until.Before(now) {
		t.Errorf("default window: %+v", r)
	}
	if r := results("since=1h&until=5m"); r.Count != 1 {
		t.Errorf("since=1h&until=5m: %d results", r.Count)
	}
	if r := results("since=5m"); r.Count != 0 {
		t.Errorf("since=5m: %d results", r.Count)
	}
}

type aggregateAnswer struct {
	Buckets []struct {
		Start    time.Time `json:"start"`
		Runs     int       `json:"runs"`
		Failures int       `json:"failures"`
		Values   map[string]struct {
			Min, Avg, Max *float64
		} `json:"values"`
	} `json:"buckets"`
	StepSeconds float64 `json:"step_seconds"`
}

func TestAggregate(t *testing.T) {
	f := newFixture(t, nil)
	var agg aggregateAnswer
	a := serve(t, f.api, request{path: "/api/v1/probes/lan/targets/gw/aggregate?since=2026-11-01T10:30:00Z&until=2026-11-01T11:30:00.5Z&step=10m"})
	if a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	a.decode(t, &agg)
	// Buckets aligned to the step: 10:30 … 11:30 (run 180 alone in the last).
	if len(agg.Buckets) != 7 || agg.StepSeconds != 600 || !agg.Buckets[6].Start.Equal(fixtureDay.Add(90*time.Minute)) {
		t.Fatalf("%d buckets, step %v", len(agg.Buckets), agg.StepSeconds)
	}
	runs := 0
	for _, b := range agg.Buckets {
		runs += b.Runs
		// Runs 107 (10:53:30) and 157 (11:18:30) had no reply.
		failed := b.Start.Equal(fixtureDay.Add(50*time.Minute)) || b.Start.Equal(fixtureDay.Add(70*time.Minute))
		loss := b.Values["loss_ratio"]
		if failed != (b.Failures == 1) || (failed && *loss.Max != 1) || *loss.Min != 0 {
			t.Errorf("bucket %v: %d failures, loss %v–%v", b.Start, b.Failures, *loss.Min, *loss.Max)
		}
	}
	if runs != 121 || agg.Buckets[6].Runs != 1 {
		t.Errorf("%d runs in all, %d in the last bucket", runs, agg.Buckets[6].Runs)
	}
	// Run 113 (10:56:30) reported an infinite RTT: null, not an error.
	if st := agg.Buckets[2].Values["rtt_max_seconds"]; st.Max != nil || st.Min == nil {
		t.Errorf("an infinite figure reads %v–%v, want a finite min and a null max", st.Min, st.Max)
	}

	a = serve(t, f.api, request{path: "/api/v1/probes/lan/targets/gw/aggregate?since=2026-11-01T10:30:00Z&until=2026-11-01T11:30:00Z&step=1h&values=loss_ratio,rtt_avg_seconds,nope"})
	agg = aggregateAnswer{}
	a.decode(t, &agg)
	// Hours aligned to the epoch: the window touches two.
	if len(agg.Buckets) != 2 || len(agg.Buckets[0].Values) != 2 || len(agg.Buckets[1].Values) != 2 ||
		agg.Buckets[0].Values["rtt_avg_seconds"].Avg == nil || !agg.Buckets[0].Start.Equal(fixtureDay) {
		t.Errorf("values=loss_ratio,rtt_avg_seconds,nope: %s", a.body)
	}
	// The bucket limit is inclusive.
	if a := serve(t, f.api, request{path: "/api/v1/probes/lan/targets/gw/aggregate?since=2026-11-01T10:00:00Z&until=2026-11-01T12:46:40Z&step=1s"}); a.status != 200 {
		t.Errorf("10000 buckets: %d %s", a.status, a.body)
	}
}

// TestBadRequests: every refusal of a read is a JSON error naming what is
// wrong.
func TestBadRequests(t *testing.T) {
	f := newFixture(t, nil)
	gw := "/api/v1/probes/lan/targets/gw/"
	for _, tc := range []struct {
		method, path string
		status       int
		msg          string
	}{
		{"GET", gw + "results?since=yesterday", 400, `since: must be an RFC 3339 time (2026-01-02T15:04:05Z) or a duration before now (1h), not "yesterday"`},
		{"GET", gw + "results?until=-1h", 400, `until: must be an RFC 3339 time`},
		{"GET", gw + "results?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", 400, "since (2026-01-02T00:00:00Z) must be before until (2026-01-01T00:00:00Z)"},
		{"GET", gw + "results?since=2026-01-01T00:00:00Z&until=2026-01-01T00:00:00Z", 400, "must be before until"},
		// Beyond what a nanosecond key can hold: the answer was an empty 200.
		{"GET", gw + "results?since=1600-01-01T00:00:00Z", 400, "since: 1600-01-01T00:00:00Z is outside the times the history can hold (1677-09-21T00:12:44Z to 2262-04-11T23:47:16Z)"},
		{"GET", gw + "results?since=2026-01-01T00:00:00Z&until=2300-01-01T00:00:00Z", 400, "until: 2300-01-01T00:00:00Z is outside the times"},
		{"GET", gw + "results?until=0001-01-01T00:00:00Z", 400, "until: 0001-01-01T00:00:00Z is outside the times"},
		{"GET", gw + "results?since=9999-12-31T23:59:59Z&until=9999-12-31T23:59:59.5Z", 400, "until: 9999-12-31T23:59:59Z is outside"},
		{"GET", gw + "aggregate?since=1677-09-21T00:12:43Z&until=1677-09-21T01:00:00Z", 400, "since: 1677-09-21T00:12:43Z is outside"},
		{"GET", gw + "results?limit=0", 400, `limit: must be an integer between 1 and 100000, not "0"`},
		{"GET", gw + "results?limit=100001", 400, "limit: must be an integer between 1 and 100000"},
		{"GET", gw + "results?limit=many", 400, `not "many"`},
		{"GET", gw + "results?order=sideways", 400, `order: must be asc or desc, not "sideways"`},
		{"GET", gw + "aggregate?step=1ms", 400, `step: must be a duration of at least 1s, not "1ms"`},
		{"GET", gw + "aggregate?step=often", 400, "step: must be a duration"},
		{"GET", gw + "aggregate?since=yesterday", 400, "since: must be an RFC 3339 time"},
		{"GET", gw + "aggregate?since=2026-11-01T10:00:00Z&until=2026-11-01T12:46:41Z&step=1s", 400, "makes 10001 buckets, more than 10000; use a larger step"},
		{"GET", "/api/v1/probes/nope", 404, `probe "nope" is not configured`},
		{"GET", "/api/v1/probes/nope/targets/gw/results", 404, `probe "nope" is not configured`},
		{"GET", "/api/v1/probes/lan/targets/nope/results", 404, `probe "lan" has no target "nope"`},
		{"GET", "/api/v1/probes/lan/targets/isp/aggregate", 404, `probe "lan" has no target "isp"`},
		{"GET", "/api/v1/nothing-here", 404, "no such endpoint: /api/v1/nothing-here (see /api/v1/openapi.json)"},
		{"GET", "/api/v2/probes", 404, "no such endpoint"},
		{"POST", "/api/v1/probes", 405, "POST is not allowed on /api/v1/probes"},
		{"DELETE", "/api/v1/probes/lan/runs", 405, "DELETE is not allowed"},
		{"PUT", gw + "results", 405, "PUT is not allowed"},
	} {
		a := serve(t, f.api, request{method: tc.method, path: tc.path})
		if msg := a.errorText(t); a.status != tc.status || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s %s: %d %q, want %d with %q", tc.method, tc.path, a.status, msg, tc.status, tc.msg)
		}
		if a.status == 405 && a.header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tc.method, tc.path)
		}
	}
	if a := serve(t, f.api, request{method: "DELETE", path: "/api/v1/probes/lan/runs"}); a.header.Get("Allow") != "POST" {
		t.Errorf("Allow %q on runs, want POST", a.header.Get("Allow"))
	}
	if a := serve(t, f.api, request{method: "HEAD", path: "/api/v1/probes"}); a.status != 200 {
		t.Errorf("HEAD on a GET endpoint: %d", a.status)
	}
	if a := serve(t, f.api, request{path: "/api/v1/probes"}); a.header.Get("Cache-Control") != "no-store" ||
		a.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v", a.header)
	}
}

// TestWithoutHistory: an API without a store answers history queries
// with 503 and still lists probes and live results.
func TestWithoutHistory(t *testing.T) {
	opts, _ := fixtureOptions(t, t.TempDir())
	a := New(opts)
	for _, p := range []string{"/api/v1/probes/lan/targets/gw/results", "/api/v1/probes/lan/targets/gw/aggregate"} {
		ans := serve(t, a, request{path: p})
		if msg := ans.errorText(t); ans.status != http.StatusServiceUnavailable || msg != "history is not available" {
			t.Errorf("%s: %d %q", p, ans.status, msg)
		}
	}
	if ans := serve(t, a, request{path: "/api/v1/runs/" + strings.Repeat("0", 32)}); ans.status != 404 {
		t.Errorf("unknown run without history: %d", ans.status)
	}
	if ans := serve(t, a, request{path: "/api/v1/probes"}); ans.status != 200 {
		t.Errorf("probes without history: %d", ans.status)
	}
}

func TestInfoAndIndex(t *testing.T) {
	f := newFixture(t, nil)
	var info struct {
		Version  string `json:"version"`
		TraceURL string `json:"trace_url"`
		RunNow   struct {
			Enabled       bool   `json:"enabled"`
			TokenRequired bool   `json:"token_required"`
			Reason        string `json:"reason"`
		} `json:"run_now"`
		Storage struct {
			Path      string `json:"path"`
			FileBytes int64  `json:"file_bytes"`
		} `json:"storage"`
	}
	serve(t, f.api, request{path: "/api/v1/info"}).decode(t, &info)
	if info.Version != "test" || info.RunNow.Enabled || !strings.Contains(info.RunNow.Reason, "api.token is not set") ||
		info.Storage.Path != f.store.Path() || info.Storage.FileBytes <= 0 {
		t.Errorf("info beyond loopback, no token: %+v", info)
	}
	f.api.SetLoopback(true)
	serve(t, f.api, request{path: "/api/v1/info"}).decode(t, &info)
	if !info.RunNow.Enabled || info.RunNow.TokenRequired {
		t.Errorf("info on loopback: %+v", info.RunNow)
	}
	f.api.opts.Token = "s3cret"
	serve(t, f.api, request{path: "/api/v1/info"}).decode(t, &info)
	if !info.RunNow.Enabled || !info.RunNow.TokenRequired {
		t.Errorf("info with a token: %+v", info.RunNow)
	}

	var index map[string]any
	serve(t, f.api, request{path: "/api/v1/"}).decode(t, &index)
	var spec struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	serve(t, f.api, request{path: index["openapi"].(string)}).decode(t, &spec)
	if spec.OpenAPI != "3.1.0" || spec.Paths["/api/v1/probes/{probe}/runs"] == nil || index["probes"] != "/api/v1/probes" {
		t.Errorf("index %v, openapi %q with %d paths", index, spec.OpenAPI, len(spec.Paths))
	}
}
