package api

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/scheduler"
)

// The tests in this file start runs: through the fake scheduler and the
// real harness, with a prober whose runs finish when the test says.

type runAnswer struct {
	RunID    string         `json:"run_id"`
	Probe    string         `json:"probe"`
	Target   string         `json:"target"`
	Status   string         `json:"status"`
	Start    time.Time      `json:"start"`
	TraceID  string         `json:"trace_id"`
	TraceURL string         `json:"trace_url"`
	URL      string         `json:"url"`
	Joined   bool           `json:"joined"`
	Result   *resultAnswer  `json:"result"`
	Config   map[string]any `json:"config"`
}

type runNowAnswer struct {
	Runs    []runAnswer `json:"runs"`
	Refused []struct {
		Target string `json:"target"`
		Status int    `json:"status"`
		Error  string `json:"error"`
	} `json:"refused"`
}

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestRunNowAccepted(t *testing.T) {
	at := newAPITest(t, 0)
	a := at.post("/api/v1/probes/lan/runs", `{"target": "gw"}`)
	var rn runNowAnswer
	a.decode(t, &rn)
	if a.status != http.StatusAccepted || len(rn.Runs) != 1 || len(rn.Refused) != 0 {
		t.Fatalf("run now: %d %s", a.status, a.body)
	}
	run := rn.Runs[0]
	if !hex32.MatchString(run.RunID) || !hex32.MatchString(run.TraceID) || run.Status != "running" ||
		run.Probe != "lan" || run.Target != "gw" || run.URL != "/api/v1/runs/"+run.RunID ||
		a.header.Get("Location") != run.URL || run.TraceURL != "http://tempo.example/trace/"+run.TraceID {
		t.Errorf("run now answer %+v, Location %q", run, a.header.Get("Location"))
	}

	// In flight: the debug view says running, with the configuration.
	var v runAnswer
	at.get(run.URL).decode(t, &v)
	if v.Status != "running" || v.Result != nil || v.TraceID != run.TraceID || v.Config["name"] != "lan" {
		t.Errorf("debug view of the run in flight: %+v", v)
	}
	// The view waits for the end when asked; the run ends after the
	// request started waiting or before, the answer is the same.
	got := make(chan answer, 1)
	go func() { got <- serve(t, at.api, request{path: run.URL + "?wait=30s"}) }()
	at.prober.open()
	a = <-got
	v = runAnswer{}
	a.decode(t, &v)
	if a.status != 200 || v.Status != "finished" || v.Result == nil || v.Result.Outcome != "success" || !v.Result.OnDemand ||
		v.Result.TraceID != run.TraceID || *v.Result.Values["rtt_avg_seconds"] != 0.0042 {
		t.Errorf("debug view after the run: %d %s", a.status, a.body)
	}
}

func TestRunNowWait(t *testing.T) {
	at := newAPITest(t, 0)
	// The prober is held: the wait expires and the answer is 202, running.
	var rn runNowAnswer
	a := at.post("/api/v1/probes/lan/runs?wait=20ms", `{"target": "gw"}`)
	a.decode(t, &rn)
	if a.status != http.StatusAccepted || rn.Runs[0].Status != "running" || rn.Runs[0].Result != nil {
		t.Errorf("wait expired: %d %s", a.status, a.body)
	}
	at.prober.open()
	at.sched.wg.Wait()
	// Every target, finished within the wait: 200 with the results.
	rn = runNowAnswer{}
	a = at.post("/api/v1/probes/lan/runs?wait=30s", "")
	a.decode(t, &rn)
	if a.status != http.StatusOK || len(rn.Runs) != 2 || a.header.Get("Location") != "" {
		t.Fatalf("run now of every target with wait: %d %s", a.status, a.body)
	}
	for _, run := range rn.Runs {
		if run.Status != "finished" || run.Result == nil || run.Result.Outcome != "success" || run.Result.RunID != run.RunID {
			t.Errorf("%s: %+v", run.Target, run)
		}
	}
}

// TestRunNowRefusedByScheduler: the scheduler's refusals are 409 (busy
// with no run known, exclusive) or 503 (stopping); busy with the target's
// run in flight joins that run (202). With every target asked, those
// refused are listed beside those started.
func TestRunNowRefusedByScheduler(t *testing.T) {
	at := newAPITest(t, 0)
	for _, tc := range []struct {
		err    error
		status int
		msg    string
	}{
		{scheduler.ErrBusy, 409, "lan/v6: a run of this job is already in progress"},
		{scheduler.ErrExclusive, 409, "lan/v6: an exclusive run (speed test) holds the link"},
		{scheduler.ErrNotRunning, 503, "the agent is shutting down"},
		{errors.New("waiting for shared runs to finish: context deadline exceeded"), 503, "lan/v6: waiting for shared runs"},
	} {
		at.sched.errs["lan/v6"] = tc.err
		a := at.post("/api/v1/probes/lan/runs", `{"target": "v6"}`)
		if msg := a.errorText(t); a.status != tc.status || msg != tc.msg && !strings.HasPrefix(msg, tc.msg) {
			t.Errorf("%v: %d %q, want %d %q", tc.err, a.status, msg, tc.status, tc.msg)
		}
	}

	// gw has a run in flight (the fixture's): busy joins it.
	at.sched.errs["lan/gw"] = scheduler.ErrBusy
	var rn runNowAnswer
	a := at.post("/api/v1/probes/lan/runs", `{"target": "gw"}`)
	a.decode(t, &rn)
	if a.status != http.StatusAccepted || len(rn.Runs) != 1 || rn.Runs[0].RunID != at.ids["running"] || !rn.Runs[0].Joined ||
		rn.Runs[0].Status != "running" {
		t.Errorf("gw busy with its run in flight: %d %s, want 202 joining %s", a.status, a.body, at.ids["running"])
	}
	// A scheduled run in flight (Runner.OnStart → Feed.Running) is joined
	// too, until its result is published.
	v6 := at.targets["lan/v6"]
	sched := fixtureDay.Add(5 * time.Hour)
	scheduled := probe.Result{Target: v6, Start: sched, RunID: probe.NewRunID(v6, sched), TraceID: traceID(6000)}
	at.feed.Running(scheduled)
	at.sched.errs["lan/v6"] = scheduler.ErrBusy
	rn = runNowAnswer{}
	a = at.post("/api/v1/probes/lan/runs", `{"target": "v6"}`)
	a.decode(t, &rn)
	if a.status != http.StatusAccepted || len(rn.Runs) != 1 || rn.Runs[0].RunID != scheduled.RunID.String() || !rn.Runs[0].Joined {
		t.Errorf("v6 busy with a scheduled run in flight: %d %s, want 202 joining it", a.status, a.body)
	}
	scheduled.Outcome = probe.OutcomeSuccess
	at.feed.Publish(scheduled)
	rn = runNowAnswer{}
	a = at.post("/api/v1/probes/lan/runs", "")
	a.decode(t, &rn)
	if a.status != http.StatusAccepted || len(rn.Runs) != 1 || rn.Runs[0].Target != "gw" || len(rn.Refused) != 1 ||
		rn.Refused[0].Target != "v6" || rn.Refused[0].Status != 409 || !strings.Contains(rn.Refused[0].Error, "already in progress") {
		t.Errorf("every target, gw joined, v6 busy: %d %s", a.status, a.body)
	}
}

// TestRunNowRefusedByAdmission: a refusal is 429, with Retry-After when it
// says when to ask again, whether the API's pre-check (Options.Admit) or
// the harness at the run's start (Demand.Refused) refused.
func TestRunNowRefusedByAdmission(t *testing.T) {
	t.Run("Admit", func(t *testing.T) {
		at := newAPITest(t, 0)
		var asked []string
		ref := &probe.Refusal{Reason: probe.ErrRateLimit, RetryAfter: 90*time.Second + 200*time.Millisecond,
			Err: errors.New("on-demand speedtest runs are limited to one every 1h0m0s")}
		at.api.opts.Admit = func(t *probe.Target) *probe.Refusal {
			asked = append(asked, t.Name)
			return ref
		}
		at.sched.errs["speed/isp"] = errors.New("the scheduler was asked") // it must not be
		a := at.post("/api/v1/probes/speed/runs", "")
		if msg := a.errorText(t); a.status != 429 || a.header.Get("Retry-After") != "91" ||
			msg != "speed/isp: run refused (rate_limit): on-demand speedtest runs are limited to one every 1h0m0s" {
			t.Errorf("refused by Admit: %d %q, Retry-After %q", a.status, msg, a.header.Get("Retry-After"))
		}
		if len(asked) != 1 || asked[0] != "isp" {
			t.Errorf("Admit asked for %v", asked)
		}
		// A refusal without a time to retry has no Retry-After.
		ref.RetryAfter = 0
		if a := at.post("/api/v1/probes/speed/runs", ""); a.status != 429 || a.header.Get("Retry-After") != "" {
			t.Errorf("refused without a retry time: %d, Retry-After %q", a.status, a.header.Get("Retry-After"))
		}
	})
	t.Run("rate limit at the start", func(t *testing.T) {
		at := newAPITest(t, time.Hour)
		at.prober.open()
		if a := at.post("/api/v1/probes/speed/runs?wait=30s", ""); a.status != 200 {
			t.Fatalf("first speed test: %d %s", a.status, a.body)
		}
		a := at.post("/api/v1/probes/speed/runs", "")
		retry, _ := strconv.Atoi(a.header.Get("Retry-After"))
		if msg := a.errorText(t); a.status != 429 || retry < 3500 || retry > 3600 ||
			!strings.Contains(msg, "speed/isp: run refused (rate_limit)") || !strings.Contains(msg, "api.speedtest_min_interval") {
			t.Errorf("second speed test: %d %q, Retry-After %q", a.status, msg, a.header.Get("Retry-After"))
		}
		// Ping is not limited.
		if a := at.post("/api/v1/probes/lan/runs?wait=30s", `{"target": "gw"}`); a.status != 200 {
			t.Errorf("ping after a speed test: %d %s", a.status, a.body)
		}
	})
	t.Run("prober's budget", func(t *testing.T) {
		at := newAPITest(t, 0)
		at.sched.prober = refusingProber{}
		a := at.post("/api/v1/probes/speed/runs", "")
		if msg := a.errorText(t); a.status != 429 || a.header.Get("Retry-After") != "" ||
			msg != "speed/isp: run refused (budget): the daily data budget (200 MB) is used up" {
			t.Errorf("over budget: %d %q, Retry-After %q", a.status, msg, a.header.Get("Retry-After"))
		}
	})
}

func TestRunNowBadInput(t *testing.T) {
	at := newAPITest(t, 0)
	inflight := len(at.feed.inflight) // the fixture's run in flight
	for _, tc := range []struct {
		path, body string
		status     int
		msg        string
	}{
		{"/api/v1/probes/nope/runs", "", 404, `probe "nope" is not configured`},
		{"/api/v1/probes/lan/runs", `{"target": "nope"}`, 404, `probe "lan" has no target "nope"`},
		{"/api/v1/probes/lan/runs", `{"target": "` + strings.Repeat("x", 5000) + `"}`, 413, "request body larger than 4096 bytes"},
		{"/api/v1/probes/lan/runs", `{"target": 1}`, 400, "request body: must be a JSON object such as {\"target\": \"name\"}"},
		{"/api/v1/probes/lan/runs", `{"targets": "gw"}`, 400, `unknown field "targets"`},
		{"/api/v1/probes/lan/runs", `["gw"]`, 400, "request body: must be a JSON object"},
		// null decoded to "every target"; data after the object was ignored.
		{"/api/v1/probes/lan/runs", `null`, 400, `request body: must be a JSON object such as {"target": "name"} and nothing else (no body: every target): got "null"`},
		{"/api/v1/probes/lan/runs", " \n null", 400, `got "null"`},
		{"/api/v1/probes/lan/runs", `{"target": "gw"} trailing`, 400, "data after the object"},
		{"/api/v1/probes/lan/runs", `{"target": "gw"}{"target": "v6"}`, 400, "data after the object"},
		{"/api/v1/probes/lan/runs", `{"target": "gw"}]`, 400, "request body: must be a JSON object"},
		{"/api/v1/probes/lan/runs", "   ", 400, "request body: must be a JSON object"},
		{"/api/v1/probes/lan/runs?wait=1y", "", 400, `wait: must be a duration between 0s and 5m0s, such as 10s, not "1y"`},
		{"/api/v1/probes/lan/runs?wait=6m", "", 400, "wait: must be a duration between 0s and 5m0s"},
		{"/api/v1/probes/lan/runs?wait=-1s", "", 400, "wait: must be a duration"},
	} {
		a := at.post(tc.path, tc.body)
		if msg := a.errorText(t); a.status != tc.status || !strings.Contains(msg, tc.msg) {
			t.Errorf("POST %s %.40s: %d %q, want %d %q", tc.path, tc.body, a.status, msg, tc.status, tc.msg)
		}
	}
	if n := len(at.feed.inflight) - inflight; n != 0 {
		t.Errorf("%d runs started by bad requests", n)
	}
}

func TestDebugView(t *testing.T) {
	at := newAPITest(t, 0)
	view := func(id string) runAnswer {
		t.Helper()
		var v runAnswer
		a := at.get("/api/v1/runs/" + id)
		if a.status != 200 {
			t.Fatalf("run %s: %d %s", id, a.status, a.body)
		}
		a.decode(t, &v)
		return v
	}
	// Stored: the configuration is the one stored with the run.
	v := view(at.ids["failed"])
	if v.Status != "finished" || v.Result.Outcome != "failure" || v.Result.ErrorType != probe.ErrNoReply ||
		v.Config["type"] != "ping" || fmt.Sprint(v.Config["targets"]) != "[map[host:192.0.2.1 labels:map[room:attic & <roof> site:home] name:gw]]" {
		t.Errorf("stored failed run: %+v", v)
	}
	// Stored on demand: its log lines were kept.
	if v := view(at.ids["on-demand"]); len(v.Result.Logs) != 2 || v.Result.Logs[1]["msg"] != `done "quoted" <b>` || v.TraceID != "" {
		t.Errorf("stored on-demand run: %+v", v.Result)
	}
	// Live, not stored yet: from the feed, with its logs and the target's
	// configuration rendered as the store would.
	if v := view(at.ids["live"]); v.Result == nil || len(v.Result.Logs) != 1 || v.Result.Logs[0]["level"] != "WARN" ||
		v.Config["name"] != "lan" {
		t.Errorf("live run: %+v", v)
	}
	// Running: no result yet; a wait that expires answers running.
	if v := view(at.ids["running"] + "?wait=10ms"); v.Status != "running" || v.Result != nil || v.Config["name"] != "lan" {
		t.Errorf("running run: %+v", v)
	}
	for _, tc := range []struct {
		id     string
		status int
		msg    string
	}{
		{"not-a-run-id", 400, "run id must be 32 hex digits, not 12 characters"},
		{strings.Repeat("g", 32), 400, "run id must be 32 hex digits: encoding/hex: invalid byte"},
		{strings.Repeat("0", 32), 404, "run 00000000000000000000000000000000 not found (unknown, or past the history's retention)"},
		{at.ids["running"] + "?wait=forever", 400, "wait: must be a duration"},
	} {
		a := at.get("/api/v1/runs/" + tc.id)
		if msg := a.errorText(t); a.status != tc.status || !strings.Contains(msg, tc.msg) {
			t.Errorf("run %s: %d %q, want %d %q", tc.id, a.status, msg, tc.status, tc.msg)
		}
	}
}

// TestFeedKeepsRecentRuns: the feed keeps the last recentSize results; an
// older one is found in the store, or not at all.
func TestFeedKeepsRecentRuns(t *testing.T) {
	at := newAPITest(t, 0)
	v6 := at.targets["lan/v6"]
	start := fixtureDay.Add(3 * time.Hour)
	for i := range recentSize {
		s := start.Add(time.Duration(i) * time.Second)
		at.feed.Publish(probe.Result{Target: v6, Start: s, Outcome: probe.OutcomeSuccess, RunID: probe.NewRunID(v6, s)})
	}
	if a := at.get("/api/v1/runs/" + at.ids["live-long-error"]); a.status != 404 {
		t.Errorf("a live run pushed out of the feed, never stored: %d", a.status)
	}
	if a := at.get("/api/v1/runs/" + probe.NewRunID(v6, start).String()); a.status != 200 {
		t.Errorf("the oldest run the feed keeps: %d", a.status)
	}
	if a := at.get("/api/v1/runs/" + at.ids["failed"]); a.status != 200 {
		t.Errorf("a stored run: %d", a.status)
	}
}
