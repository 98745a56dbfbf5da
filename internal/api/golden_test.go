package api

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/probe"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/answers.golden from the current API")

// TestAnswersGolden pins the bytes the API answers over fixed data: field
// names, omitted fields, number and time formatting, NaN and infinities as
// null, string escapes, the order of keys. A change to the wire types or
// their encoders shows here as a diff, and so does a probe type's new
// value or setting (/probes lists a type's values, the debug view a run's
// configuration); an intended one is accepted with
// go test ./internal/api -run TestAnswersGolden -update.
func TestAnswersGolden(t *testing.T) {
	f := newFixture(t, nil)
	putEchoes(t, f)
	window := "since=" + fixtureDay.Add(-8*24*time.Hour).Format(time.RFC3339) + "&until=" +
		fixtureDay.Add(3*time.Hour).Format(time.RFC3339)
	hour := "since=2026-11-01T10:30:00Z&until=2026-11-01T11:30:00.5Z"
	gw := "/api/v1/probes/lan/targets/gw"
	paths := []string{
		"/api/v1/probes",
		"/api/v1/probes/speed",
		gw + "/results?" + hour,
		gw + "/results?" + window + "&order=desc&limit=7",
		gw + "/results?" + window + "&limit=3",
		"/api/v1/probes/lan/targets/v6/results?" + window,
		"/api/v1/probes/speed/targets/isp/results?" + window,
		gw + "/aggregate?" + hour + "&step=5m",
		gw + "/aggregate?" + hour + "&step=10m&values=rtt_avg_seconds,loss_ratio,nothing",
		gw + "/aggregate?since=2026-11-01T10:00:00Z&until=2026-11-01T10:10:00Z&step=7s",
		"/api/v1/probes/speed/targets/isp/aggregate?" + window + "&step=24h",
		"/api/v1/probes/lan/targets/v6/aggregate?" + window + "&step=1h",
		"/api/v1/runs/" + f.ids["failed"],
		"/api/v1/runs/" + f.ids["on-demand"],
		"/api/v1/runs/" + f.ids["live"],
		"/api/v1/runs/" + f.ids["live-long-error"],
		"/api/v1/runs/" + f.ids["running"],
		"/api/v1/runs/" + probe.NewRunID(f.targets["speed/isp"], fixtureDay.Add(-7*24*time.Hour)).String(),
		"/api/v1/runs/" + strings.Repeat("0", 32),
		gw + "/results?since=yesterday",
		"/api/v1/nothing",
	}
	var out bytes.Buffer
	for _, p := range paths {
		rec := httptest.NewRecorder()
		f.api.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		fmt.Fprintf(&out, "### GET %s\n%d %s\n%s\n", p, rec.Code, rec.Header().Get("Content-Type"), rec.Body.Bytes())
	}
	out.WriteString("### GET /api/v1/events\n")
	out.Write(firstEvents(t, f))
	compareGolden(t, filepath.Join("testdata", "answers.golden"), out.Bytes())
}

// firstEvents opens the event stream, starts and finishes a run through
// the feed, and returns what the stream sent up to the result event.
func firstEvents(t *testing.T, f *fixture) []byte {
	t.Helper()
	srv := httptest.NewServer(f.api)
	defer srv.Close()
	defer f.api.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/events", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	var got bytes.Buffer
	// The stream is subscribed once its greeting arrives.
	for !strings.HasSuffix(got.String(), "\n\n") {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream: %v after %q", err, got.String())
		}
		got.WriteString(line)
	}
	gw := f.targets["lan/gw"]
	start := fixtureDay.Add(2*time.Hour + 10*time.Second)
	f.feed.Started(probe.Result{Target: gw, Start: start, RunID: probe.NewRunID(gw, start), TraceID: traceID(7000), OnDemand: true})
	f.feed.Publish(probe.Result{Target: gw, Start: start, Duration: 99 * time.Millisecond, Outcome: probe.OutcomeSuccess,
		RunID: probe.NewRunID(gw, start), TraceID: traceID(7000), OnDemand: true, Values: pingValues(0.0123, 0)})
	for !strings.Contains(got.String(), "event: result\n") || !strings.HasSuffix(got.String(), "\n\n") {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream: %v after %q", err, got.String())
		}
		got.WriteString(line)
	}
	return got.Bytes()
}

// compareGolden compares got with the file, or rewrites it with -update.
func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it with -update)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(gl), len(wl)) {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Fatalf("%s differs at line %d:\n got %.600s\nwant %.600s\n(an intended change: -update)", path, i+1, g, w)
		}
	}
}
