package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/probe"
)

// sseEvent is one server-sent event.
type sseEvent struct {
	name string
	data map[string]any
}

// eventStream is an open /api/v1/events.
type eventStream struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
}

// openEvents opens the event stream and reads its greeting (once it has
// arrived, the stream is subscribed).
func openEvents(t *testing.T, srv *httptest.Server) *eventStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/events", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("events: %d %v", resp.StatusCode, resp.Header)
	}
	s := &eventStream{t: t, resp: resp, r: bufio.NewReader(resp.Body)}
	var greeting []string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("greeting: %v after %q", err, greeting)
		}
		if line == "\n" {
			break
		}
		greeting = append(greeting, line)
	}
	if strings.Join(greeting, "") != "retry: 2000\n: connected\n" {
		t.Errorf("greeting %q", greeting)
	}
	return s
}

// next reads the next event (io.EOF when the stream ends).
func (s *eventStream) next() (sseEvent, error) {
	var ev sseEvent
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		switch {
		case line == "\n" && ev.name != "":
			return ev, nil
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimSpace(strings.TrimPrefix(line, "event: "))
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.data); err != nil {
				s.t.Fatalf("event data %q: %v", line, err)
			}
		}
	}
}

func TestEvents(t *testing.T) {
	at := newAPITest(t, 0)
	srv := httptest.NewServer(at.api)
	defer srv.Close()
	s := openEvents(t, srv)

	var rn runNowAnswer
	a := at.post("/api/v1/probes/lan/runs", `{"target": "gw"}`)
	a.decode(t, &rn)
	id := rn.Runs[0].RunID
	at.prober.open()
	started, err := s.next()
	if err != nil || started.name != "started" || started.data["run_id"] != id || started.data["trace_id"] != rn.Runs[0].TraceID ||
		started.data["target"] != "gw" {
		t.Fatalf("first event: %+v %v", started, err)
	}
	result, err := s.next()
	if err != nil || result.name != "result" || result.data["run_id"] != id || result.data["outcome"] != "success" ||
		result.data["on_demand"] != true || result.data["logs"] != nil {
		t.Fatalf("second event: %+v %v", result, err)
	}

	// A scheduled run's result is an event too, without a started one.
	gw := at.targets["lan/gw"]
	st := fixtureDay.Add(4 * time.Hour)
	at.feed.Publish(probe.Result{Target: gw, Start: st, Outcome: probe.OutcomeFailure, ErrorType: probe.ErrNoReply,
		RunID: probe.NewRunID(gw, st)})
	if ev, err := s.next(); err != nil || ev.name != "result" || ev.data["error_type"] != "no_reply" {
		t.Errorf("scheduled result event: %+v %v", ev, err)
	}

	// What a long run reports (probe.ReportProgress, through the runner)
	// is a progress event: a speed test's phase and rate, live.
	at.feed.Progress(probe.Result{Target: gw, RunID: probe.NewRunID(gw, st)},
		probe.Progress{Phase: "download", Rate: 12.5e6, Elapsed: 1500 * time.Millisecond})
	if ev, err := s.next(); err != nil || ev.name != "progress" || ev.data["phase"] != "download" ||
		ev.data["bytes_per_second"] != 12.5e6 || ev.data["elapsed_seconds"] != 1.5 || ev.data["target"] != "gw" {
		t.Errorf("progress event: %+v %v", ev, err)
	}

	// Shutdown ends the stream so that the server can drain.
	at.api.Shutdown()
	if ev, err := s.next(); err != io.EOF {
		t.Errorf("after Shutdown: %+v %v, want the end of the stream", ev, err)
	}
}

func TestEventsLimits(t *testing.T) {
	at := newAPITest(t, 0)
	// Streams are bounded in all.
	var cancels []func()
	for i := range maxSubscribers {
		_, cancel, err := at.feed.subscribe(fmt.Sprintf("198.51.100.%d", i))
		if err != nil {
			t.Fatalf("subscribe refused below the limit: %v", err)
		}
		cancels = append(cancels, cancel)
	}
	a := serve(t, at.api, request{path: "/api/v1/events"})
	if msg := a.errorText(t); a.status != 503 || msg != "too many event streams open (100)" {
		t.Errorf("stream %d: %d %q", maxSubscribers+1, a.status, msg)
	}
	for _, c := range cancels {
		c()
	}

	// And per client address: one client cannot take them all. (The
	// requests serve makes come from 192.0.2.1, httptest's address.)
	cancels = cancels[:0]
	for range maxPerClient {
		_, cancel, err := at.feed.subscribe("192.0.2.1")
		if err != nil {
			t.Fatalf("subscribe refused below the per-client limit: %v", err)
		}
		cancels = append(cancels, cancel)
	}
	a = serve(t, at.api, request{path: "/api/v1/events"})
	if msg := a.errorText(t); a.status != 429 || a.header.Get("Retry-After") == "" ||
		!strings.Contains(msg, "too many event streams open from this address (10)") {
		t.Errorf("stream %d of one client: %d %q (Retry-After %q), want 429", maxPerClient+1, a.status, msg,
			a.header.Get("Retry-After"))
	}
	_, other, err := at.feed.subscribe("198.51.100.1")
	if err != nil {
		t.Errorf("another client refused while one is at its limit: %v", err)
	} else {
		other()
	}
	cancels[0]()
	if _, cancel, err := at.feed.subscribe("192.0.2.1"); err != nil {
		t.Errorf("a closed stream's place not given back to its client: %v", err)
	} else {
		cancels[0] = cancel
	}
	for _, c := range cancels {
		c()
	}

	// A subscriber that does not keep up is dropped, not waited for.
	ch, cancel, _ := at.feed.subscribe("192.0.2.1")
	defer cancel()
	gw := at.targets["lan/gw"]
	for i := range subBuffer + 1 {
		st := fixtureDay.Add(5*time.Hour + time.Duration(i)*time.Second)
		at.feed.Publish(probe.Result{Target: gw, Start: st, Outcome: probe.OutcomeSuccess, RunID: probe.NewRunID(gw, st)})
	}
	n := 0
	for range ch {
		n++
	}
	if n != subBuffer {
		t.Errorf("a stalled subscriber got %d events before being dropped, want %d", n, subBuffer)
	}
	at.feed.mu.Lock()
	defer at.feed.mu.Unlock()
	if len(at.feed.byClient) != 0 {
		t.Errorf("streams still counted per client after every stream ended: %v", at.feed.byClient)
	}
}
