package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/scheduler"
)

// fakeScheduler stands in for scheduler.Scheduler at the API's seam: it
// answers RunNow with a configured error (busy, exclusive, stopped) or
// runs the job at once through the real harness (probe.Runner), which
// admits or refuses it, calls the request's Demand, and publishes the
// result to the feed as in the agent.
type fakeScheduler struct {
	runner  *probe.Runner
	prober  probe.Prober
	targets map[string]*probe.Target // by JobKey
	errs    map[string]error         // RunNow's answer for a target, by "probe/target"

	wg sync.WaitGroup
}

func (s *fakeScheduler) RunNow(ctx context.Context, key string) (<-chan struct{}, error) {
	t := s.targets[key]
	if t == nil {
		return nil, scheduler.ErrUnknownJob
	}
	if err := s.errs[t.Probe+"/"+t.Name]; err != nil {
		return nil, err
	}
	done := make(chan struct{})
	// As the scheduler does: the run outlives the request's admission.
	rctx := context.WithoutCancel(ctx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(done)
		s.runner.Run(rctx, s.prober, t, 5*time.Second)
	}()
	return done, nil
}

// gatedProber is a prober whose runs wait until the gate opens (or their
// context ends), so a test decides when a run in flight finishes.
type gatedProber struct {
	gate   chan struct{}
	once   sync.Once
	values probe.Values
	err    error
}

func newGatedProber() *gatedProber {
	return &gatedProber{gate: make(chan struct{}), values: probe.Values{"rtt_avg_seconds": 0.0042, "loss_ratio": 0}}
}

func (p *gatedProber) Probe(ctx context.Context, _ *probe.Target) (probe.Values, error) {
	select {
	case <-p.gate:
		return p.values, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// open lets every run, present and future, finish.
func (p *gatedProber) open() { p.once.Do(func() { close(p.gate) }) }

// refusingProber refuses every run as a speed test over its budget does.
type refusingProber struct{}

func (refusingProber) Probe(context.Context, *probe.Target) (probe.Values, error) {
	return nil, errors.New("refusingProber ran")
}

func (refusingProber) Admit(*probe.Target) (string, error) {
	return "budget", errors.New("the daily data budget (200 MB) is used up")
}

// apiTest is the fixture's API with a fake scheduler over the real
// harness; demandInterval is the on-demand rate limit of limited types.
type apiTest struct {
	*fixture
	t      *testing.T
	sched  *fakeScheduler
	prober *gatedProber
}

func newAPITest(t *testing.T, demandInterval time.Duration) *apiTest {
	t.Helper()
	sched := &fakeScheduler{targets: map[string]*probe.Target{}, errs: map[string]error{}}
	f := newFixture(t, sched)
	runner, err := probe.NewRunner(noop.NewMeterProvider(), sdktrace.NewTracerProvider(),
		slog.New(slog.NewTextHandler(io.Discard, nil)), demandInterval)
	if err != nil {
		t.Fatal(err)
	}
	runner.OnResult = f.feed.Publish
	f.api.SetLoopback(true) // run now without a token, from loopback
	sched.runner = runner
	for _, tg := range f.targets {
		sched.targets[JobKey(tg)] = tg
	}
	at := &apiTest{fixture: f, t: t, sched: sched, prober: newGatedProber()}
	sched.prober = at.prober
	t.Cleanup(func() {
		at.prober.open()
		sched.wg.Wait()
	})
	return at
}

// answer is one HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// decode unmarshals the answer's JSON body into v.
func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("status %d, cannot decode %s: %v", a.status, a.body, err)
	}
}

// errorText is the error of a JSON error answer, checking its shape.
func (a answer) errorText(t *testing.T) string {
	t.Helper()
	var e apiError
	a.decode(t, &e)
	if e.Status != a.status || e.Error == "" {
		t.Errorf("error answer %s does not carry its status %d and a message", a.body, a.status)
	}
	return e.Error
}

// request describes one request to the API.
type request struct {
	method, path, body string
	header             map[string]string
	host               string // default 127.0.0.1:9517
}

func serve(t *testing.T, h http.Handler, r request) answer {
	t.Helper()
	if r.method == "" {
		r.method = "GET"
	}
	host := r.host
	if host == "" {
		host = "127.0.0.1:9517"
	}
	req := httptest.NewRequest(r.method, "http://"+host+r.path, strings.NewReader(r.body))
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" && ct != "text/event-stream" {
		t.Errorf("%s %s: Content-Type %q", r.method, r.path, ct)
	}
	checkOpenAPI(t, req, rec.Code, rec.Header(), rec.Body.Bytes())
	return answer{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// get is a GET of path.
func (at *apiTest) get(path string) answer {
	at.t.Helper()
	return serve(at.t, at.api, request{path: path})
}

// post is a POST of body to path from the agent's own page (loopback).
func (at *apiTest) post(path, body string) answer {
	at.t.Helper()
	return serve(at.t, at.api, request{method: "POST", path: path, body: body})
}
