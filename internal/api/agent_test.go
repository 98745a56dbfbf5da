package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/api"
	"github.com/netpulse/netpulse/internal/speedtestserver/servertest"
	"github.com/netpulse/netpulse/internal/testutil"
)

// These tests run the real agent binary with real ping probes on loopback.

func TestMain(m *testing.M) { testutil.Main(m) }

// agentConfig pings loopback (a long burst when slow is set, so a run is
// still in flight when the test asks for another) and keeps history in dir;
// extra follows the probe list (more probes, or top-level sections). The
// interval is a day: the tests start runs on demand, and a scheduled run,
// whose random first offset could fall anywhere in a shorter interval, would
// make run now answer 409 at an unpredictable moment.
func agentConfig(dir, extra string, slow bool) string {
	ping := "{count: 2, packet_interval: 20ms}"
	if slow {
		ping = "{count: 30, packet_interval: 100ms}"
	}
	return fmt.Sprintf(`
storage: {path: %q}
probes:
  - name: lan
    type: ping
    interval: 24h
    timeout: 5s
    targets:
      - {name: loopback, host: 127.0.0.1}
      - {name: loopback6, host: "::1"}
    ping: %s
%s`, dir, ping, extra)
}

type client struct {
	t     *testing.T
	base  string
	token string
}

// do sends a request and decodes a JSON answer into out (when not nil).
func (c client) do(method, path, body string, out any) (int, http.Header) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	api.CheckOpenAPI(c.t, req, resp.StatusCode, resp.Header, data)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		c.t.Errorf("%s %s: Content-Type %q, want JSON (status %d: %s)", method, path, ct, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			c.t.Fatalf("%s %s: status %d, cannot decode %s: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode, resp.Header
}

type runNowResponse struct {
	Runs []struct {
		RunID   string `json:"run_id"`
		TraceID string `json:"trace_id"`
		Target  string `json:"target"`
		Status  string `json:"status"`
		URL     string `json:"url"`
		Joined  bool   `json:"joined"`
		Result  *struct {
			Outcome  string             `json:"outcome"`
			OnDemand bool               `json:"on_demand"`
			Values   map[string]float64 `json:"values"`
		} `json:"result"`
	} `json:"runs"`
	Refused []struct {
		Target string `json:"target"`
		Status int    `json:"status"`
	} `json:"refused"`
}

type runView struct {
	RunID   string `json:"run_id"`
	Status  string `json:"status"`
	TraceID string `json:"trace_id"`
	Result  *struct {
		Outcome string `json:"outcome"`
		Logs    []struct {
			Msg string `json:"msg"`
		} `json:"logs"`
		Values map[string]float64 `json:"values"`
	} `json:"result"`
	Config map[string]any `json:"config"`
}

type apiError struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

// TestRunNowTraceReachesCollector: run now answers with a run id and a
// trace id; the run finishes, its debug view has values, logs and config,
// and the collector receives the run's spans under that trace id.
func TestRunNowTraceReachesCollector(t *testing.T) {
	testutil.NeedICMP(t)
	col := testutil.StartCollector(t)
	a := testutil.StartAgent(t, agentConfig(t.TempDir(), fmt.Sprintf(`
telemetry:
  otlp: {endpoint: "http://%s", protocol: http, signals: [traces]}
`, col.HTTPEndpoint), false))
	c := client{t: t, base: a.URL}

	var rn runNowResponse
	status, hdr := c.do("POST", "/api/v1/probes/lan/runs", `{"target": "loopback"}`, &rn)
	if status != http.StatusAccepted || len(rn.Runs) != 1 {
		t.Fatalf("run now: status %d, %+v", status, rn)
	}
	run := rn.Runs[0]
	if len(run.RunID) != 32 || len(run.TraceID) != 32 || run.Target != "loopback" || hdr.Get("Location") != run.URL {
		t.Errorf("run now answer %+v, Location %q", run, hdr.Get("Location"))
	}

	var v runView
	if status, _ := c.do("GET", run.URL+"?wait=20s", "", &v); status != http.StatusOK || v.Status != "finished" {
		t.Fatalf("debug view: status %d, %+v", status, v)
	}
	if v.Result.Outcome != "success" || v.Result.Values["packets_received"] != 2 || v.TraceID != run.TraceID {
		t.Errorf("finished run: %+v", v.Result)
	}
	if len(v.Result.Logs) == 0 || v.Config["name"] != "lan" || v.Config["type"] != "ping" {
		t.Errorf("debug view lacks logs or config: logs %+v, config %v", v.Result.Logs, v.Config)
	}

	testutil.Eventually(t, 20*time.Second, func() error {
		r, err := col.Read()
		if err != nil {
			return err
		}
		if !r.HasTrace(run.TraceID) {
			return fmt.Errorf("trace %s not among the %d spans the collector received", run.TraceID, len(r.Spans))
		}
		return nil
	})
}

// TestHistorySurvivesRestart: a run recorded before a restart is found
// after it, by id and in the history query, and is the target's last result.
func TestHistorySurvivesRestart(t *testing.T) {
	testutil.NeedICMP(t)
	dir := t.TempDir()
	cfg := agentConfig(dir, "", false)
	a := testutil.StartAgent(t, cfg)
	c := client{t: t, base: a.URL}
	var rn runNowResponse
	if status, _ := c.do("POST", "/api/v1/probes/lan/runs?wait=20s", `{"target": "loopback"}`, &rn); status != http.StatusOK ||
		rn.Runs[0].Result == nil || !rn.Runs[0].Result.OnDemand {
		t.Fatalf("run now with wait: status %d, %+v", status, rn)
	}
	id := rn.Runs[0].RunID
	if code, err := a.Process.Stop(15 * time.Second); err != nil || code != 0 {
		t.Fatalf("agent stop: exit %d, %v", code, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "history.db")); err != nil {
		t.Fatalf("no history file: %v", err)
	}

	b := testutil.StartAgent(t, cfg)
	c = client{t: t, base: b.URL}
	var v runView
	if status, _ := c.do("GET", "/api/v1/runs/"+id, "", &v); status != http.StatusOK || v.Result == nil ||
		v.Result.Outcome != "success" || len(v.Result.Logs) == 0 || v.Config["name"] != "lan" {
		t.Fatalf("run %s after restart: status %d, %+v", id, status, v)
	}
	var hist struct {
		Results []struct {
			RunID string `json:"run_id"`
		} `json:"results"`
		Count int `json:"count"`
	}
	c.do("GET", "/api/v1/probes/lan/targets/loopback/results?since=1h", "", &hist)
	found := false
	for _, r := range hist.Results {
		found = found || r.RunID == id
	}
	if !found {
		t.Errorf("run %s not in the history after restart (%d results)", id, hist.Count)
	}
	var probes struct {
		Probes []struct {
			Targets []struct {
				Name        string  `json:"name"`
				Status      string  `json:"status"`
				LastSuccess *string `json:"last_success"`
			} `json:"targets"`
		} `json:"probes"`
	}
	c.do("GET", "/api/v1/probes", "", &probes)
	if tg := probes.Probes[0].Targets[0]; tg.Name != "loopback" || tg.Status != "up" || tg.LastSuccess == nil {
		t.Errorf("loopback after restart: %+v, want up with a last success from the stored history", tg)
	}
}

// TestRefusedRunsAndBadInput: run now of a target whose run is in flight
// joins that run (202 with its id, joined) instead of starting another;
// malformed input gets 4xx JSON errors that say why.
func TestRefusedRunsAndBadInput(t *testing.T) {
	testutil.NeedICMP(t)
	a := testutil.StartAgent(t, agentConfig(t.TempDir(), "", true))
	c := client{t: t, base: a.URL}

	var first runNowResponse
	if status, _ := c.do("POST", "/api/v1/probes/lan/runs", `{"target": "loopback"}`, &first); status != http.StatusAccepted {
		t.Fatalf("first run now: %d", status)
	}
	var second runNowResponse
	status, _ := c.do("POST", "/api/v1/probes/lan/runs", `{"target": "loopback"}`, &second)
	if status != http.StatusAccepted || len(second.Runs) != 1 || second.Runs[0].RunID != first.Runs[0].RunID ||
		!second.Runs[0].Joined || second.Runs[0].Status != "running" {
		t.Errorf("second run now while the first runs: %d %+v, want 202 joining run %s", status, second, first.Runs[0].RunID)
	}
	// All targets: loopback's run is joined, loopback6's starts.
	var both runNowResponse
	if status, _ := c.do("POST", "/api/v1/probes/lan/runs", "", &both); status != http.StatusAccepted ||
		len(both.Runs) != 2 || len(both.Refused) != 0 || both.Runs[0].RunID != first.Runs[0].RunID || !both.Runs[0].Joined ||
		both.Runs[1].Target != "loopback6" || both.Runs[1].Joined {
		t.Errorf("run now of every target with one in flight: %d %+v", status, both)
	}
	var v runView
	if status, _ := c.do("GET", first.Runs[0].URL, "", &v); status != http.StatusOK || v.Status != "running" {
		t.Errorf("debug view of a run in flight: %d %+v, want running", status, v)
	}
	// Waiting on a joined run returns its result.
	var waited runNowResponse
	if status, _ := c.do("POST", "/api/v1/probes/lan/runs?wait=20s", `{"target": "loopback"}`, &waited); status != http.StatusOK ||
		len(waited.Runs) != 1 || waited.Runs[0].Result == nil || waited.Runs[0].Result.Outcome != "success" {
		t.Errorf("run now with wait on a joined run: %d %+v, want 200 with its result", status, waited)
	}

	huge := `{"target": "` + strings.Repeat("x", 10000) + `"}`
	cases := []struct {
		method, path, body string
		status             int
		msg                string
	}{
		{"GET", "/api/v1/runs/not-a-run-id", "", 400, "run id must be 32 hex digits"},
		{"GET", "/api/v1/runs/" + strings.Repeat("g", 32), "", 400, "run id must be 32 hex digits"},
		{"GET", "/api/v1/runs/" + strings.Repeat("0", 32), "", 404, "not found"},
		{"GET", "/api/v1/runs/" + first.Runs[0].RunID + "?wait=forever", "", 400, "wait: must be a duration"},
		{"POST", "/api/v1/probes/nope/runs", "", 404, `probe "nope" is not configured`},
		{"POST", "/api/v1/probes/lan/runs", `{"target": "nope"}`, 404, `probe "lan" has no target "nope"`},
		{"POST", "/api/v1/probes/lan/runs", huge, 413, "request body larger than 4096 bytes"},
		{"POST", "/api/v1/probes/lan/runs", `{"target": 1}`, 400, "request body: must be a JSON object"},
		{"POST", "/api/v1/probes/lan/runs", `{"targets": "loopback"}`, 400, `unknown field "targets"`},
		{"POST", "/api/v1/probes/lan/runs?wait=1y", "", 400, "wait: must be a duration"},
		{"GET", "/api/v1/probes/nope", "", 404, `probe "nope" is not configured`},
		{"GET", "/api/v1/probes/lan/targets/nope/results", "", 404, `has no target "nope"`},
		{"GET", "/api/v1/probes/lan/targets/loopback/results?since=yesterday", "", 400, "since: must be an RFC 3339 time"},
		{"GET", "/api/v1/probes/lan/targets/loopback/results?until=-1h", "", 400, "until: must be an RFC 3339 time"},
		{"GET", "/api/v1/probes/lan/targets/loopback/results?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "", 400, "must be before until"},
		{"GET", "/api/v1/probes/lan/targets/loopback/results?limit=0", "", 400, "limit: must be an integer between 1 and 100000"},
		{"GET", "/api/v1/probes/lan/targets/loopback/results?limit=many", "", 400, "limit: must be an integer"},
		{"GET", "/api/v1/probes/lan/targets/loopback/results?order=sideways", "", 400, "order: must be asc or desc"},
		{"GET", "/api/v1/probes/lan/targets/loopback/aggregate?step=1ms", "", 400, "step: must be a duration of at least 1s"},
		{"GET", "/api/v1/probes/lan/targets/loopback/aggregate?since=8760h&step=1s", "", 400, "more than 10000"},
		{"DELETE", "/api/v1/probes/lan/runs", "", 405, "DELETE is not allowed"},
		{"GET", "/api/v1/nothing-here", "", 404, "no such endpoint"},
	}
	for _, tc := range cases {
		var e apiError
		status, _ := c.do(tc.method, tc.path, tc.body, &e)
		if status != tc.status || e.Status != tc.status || !strings.Contains(e.Error, tc.msg) {
			t.Errorf("%s %s: %d %+v, want %d with %q", tc.method, tc.path[:min(len(tc.path), 90)], status, e, tc.status, tc.msg)
		}
	}
	var spec map[string]any
	if status, _ := c.do("GET", "/api/v1/openapi.json", "", &spec); status != 200 || spec["openapi"] != "3.1.0" {
		t.Errorf("openapi.json: %d %v", status, spec["openapi"])
	}
}

// TestToken: with api.token set, run now needs it; reads do not.
func TestToken(t *testing.T) {
	testutil.NeedICMP(t)
	a := testutil.StartAgent(t, agentConfig(t.TempDir(), "api: {token: s3cret-token}", false))
	for _, tc := range []struct {
		token  string
		status int
		msg    string
	}{
		{"", 401, "missing bearer token"},
		{"wrong", 401, "invalid bearer token"},
		{"s3cret-token", 202, ""},
	} {
		c := client{t: t, base: a.URL, token: tc.token}
		var e apiError
		status, hdr := c.do("POST", "/api/v1/probes/lan/runs", `{"target": "loopback6"}`, &e)
		if status != tc.status || !strings.Contains(e.Error, tc.msg) {
			t.Errorf("token %q: %d %+v, want %d %q", tc.token, status, e, tc.status, tc.msg)
		}
		if status == 401 && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("401 without WWW-Authenticate: Bearer")
		}
	}
	var info struct {
		RunNow struct {
			Enabled, TokenRequired bool
		} `json:"run_now"`
	}
	c := client{t: t, base: a.URL}
	if status, _ := c.do("GET", "/api/v1/info", "", &info); status != 200 {
		t.Errorf("reads need no token: %d", status)
	}
}

// TestEventsStreamResults: /api/v1/events delivers the started and result
// events of a run now.
func TestEventsStreamResults(t *testing.T) {
	testutil.NeedICMP(t)
	a := testutil.StartAgent(t, agentConfig(t.TempDir(), "", false))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", a.URL+"/api/v1/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Scan() // the stream is open once its first line arrives
	c := client{t: t, base: a.URL}
	var rn runNowResponse
	c.do("POST", "/api/v1/probes/lan/runs", `{"target": "loopback"}`, &rn)
	id := rn.Runs[0].RunID
	var event string
	seen := map[string]bool{}
	for sc.Scan() && !(seen["started"] && seen["result"]) {
		line := sc.Text()
		if ev, ok := strings.CutPrefix(line, "event: "); ok {
			event = ev
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok && bytes.Contains([]byte(data), []byte(id)) {
			seen[event] = true
		}
	}
	if !seen["started"] || !seen["result"] {
		t.Errorf("events for run %s: %v (stream error %v)", id, seen, sc.Err())
	}
}

// TestSpeedTestRunNowRules: an on-demand speed test starts (202); while it
// runs, ping run now is refused by exclusivity (409) and a second speed
// test of the same target joins it (202, joined); once it has ended, another
// is rate-limited (429 with Retry-After); a probe over its data budget is
// refused (429); the speed test's result carries its rates.
func TestSpeedTestRunNowRules(t *testing.T) {
	testutil.NeedICMP(t)
	server := servertest.Start(t).URL()
	dir := t.TempDir()
	// The capped probe has used its whole daily budget today.
	now := time.Now()
	state := fmt.Sprintf(`{"day": %q, "day_used_bytes": 200000000, "month": %q, "month_used_bytes": 200000000, "last_run_bytes": 100000000}`,
		now.Format("2006-01-02"), now.Format("2006-01"))
	if err := os.WriteFile(filepath.Join(dir, "speedtest-budget-capped.json"), []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	a := testutil.StartAgent(t, agentConfig(dir, fmt.Sprintf(`
  - name: speed
    type: speedtest
    interval: 24h
    timeout: 30s
    targets: [{name: lan, host: %q}]
    speedtest: {duration: 2s, max_bytes: 50MB, packet_loss: false}
  - name: capped
    type: speedtest
    interval: 24h
    timeout: 30s
    targets: [{name: lan, host: %q}]
    speedtest: {duration: 1s, max_bytes: 50MB, budget: {daily: 200MB}}
api: {speedtest_min_interval: 1h}
`, server, server), false))
	c := client{t: t, base: a.URL}

	var rn runNowResponse
	if status, _ := c.do("POST", "/api/v1/probes/speed/runs", "", &rn); status != http.StatusAccepted || len(rn.Runs) != 1 {
		t.Fatalf("speed test run now: %d %+v", status, rn)
	}
	var e apiError
	if status, _ := c.do("POST", "/api/v1/probes/lan/runs", `{"target": "loopback"}`, &e); status != http.StatusConflict ||
		!strings.Contains(e.Error, "exclusive") {
		t.Errorf("ping run now during a speed test: %d %+v, want 409 exclusive", status, e)
	}
	// A second run now while the test runs joins it: no second test, no
	// rate-limit refusal.
	var joined runNowResponse
	if status, _ := c.do("POST", "/api/v1/probes/speed/runs", "", &joined); status != http.StatusAccepted ||
		len(joined.Runs) != 1 || joined.Runs[0].RunID != rn.Runs[0].RunID || !joined.Runs[0].Joined {
		t.Errorf("speed test run now during the speed test: %d %+v, want 202 joining %s", status, joined, rn.Runs[0].RunID)
	}
	if status, _ := c.do("POST", "/api/v1/probes/capped/runs", "", &e); status != http.StatusTooManyRequests ||
		!strings.Contains(e.Error, "budget") {
		t.Errorf("speed test over its budget: %d %+v, want 429 naming the budget", status, e)
	}

	var v struct {
		Status string `json:"status"`
		Result struct {
			Outcome string             `json:"outcome"`
			Type    string             `json:"probe_type"`
			Values  map[string]float64 `json:"values"`
		} `json:"result"`
	}
	if status, _ := c.do("GET", rn.Runs[0].URL+"?wait=40s", "", &v); status != 200 || v.Status != "finished" {
		t.Fatalf("speed test run: %d %+v", status, v)
	}
	status, hdr := c.do("POST", "/api/v1/probes/speed/runs", "", &e)
	if status != http.StatusTooManyRequests || !strings.Contains(e.Error, "speedtest_min_interval") || hdr.Get("Retry-After") == "" {
		t.Errorf("second speed test: %d %+v (Retry-After %q), want 429 rate limit", status, e, hdr.Get("Retry-After"))
	}
	if v.Result.Outcome != "success" || v.Result.Type != "speedtest" || v.Result.Values["download_bytes_per_second"] <= 0 ||
		v.Result.Values["upload_bytes_per_second"] <= 0 || v.Result.Values["latency_idle_seconds"] <= 0 {
		t.Errorf("speed test result: %+v", v.Result)
	}
	// The exclusive run is over: ping runs again. The scheduled ping that
	// waited for the speed test may be running right now (409), so poll
	// until run now is accepted.
	testutil.Eventually(t, 10*time.Second, func() error {
		var e apiError
		status, _ := c.do("POST", "/api/v1/probes/lan/runs", `{"target": "loopback"}`, &e)
		if status != http.StatusAccepted {
			return fmt.Errorf("ping run now after the speed test: %d %+v", status, e)
		}
		return nil
	})
}
