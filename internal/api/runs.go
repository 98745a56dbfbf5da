package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/netpulse/netpulse/internal/history"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/scheduler"
)

// runJSON is a run as run now and the debug view return it.
type runJSON struct {
	RunID    string    `json:"run_id"`
	Probe    string    `json:"probe"`
	Target   string    `json:"target"`
	Status   string    `json:"status"` // running or finished
	Start    time.Time `json:"start"`
	TraceID  string    `json:"trace_id,omitempty"`
	TraceURL string    `json:"trace_url,omitempty"`
	URL      string    `json:"url"`
	// Joined says run now found this run in flight and joined it rather
	// than start another.
	Joined bool        `json:"joined,omitempty"`
	Result *resultJSON `json:"result,omitempty"`
	// Config is what the run ran with (debug view only).
	Config any `json:"config,omitempty"`
	// PathSnapshot is the path as it was when this (ping) run saw trouble
	// (path_on_trouble), once taken (debug view only).
	PathSnapshot json.RawMessage `json:"path_snapshot,omitempty"`
}

type refusal struct {
	Target string `json:"target"`
	Status int    `json:"status"`
	Error  string `json:"error"`
}

type runNowRequest struct {
	// Target limits the run to one target; empty: every target of the probe.
	Target string `json:"target"`
}

// decodeRunNow reads a run-now body: exactly one JSON object. A null
// (which would decode to "every target"), another JSON value, or data
// after the object is refused: a client that sent them meant something
// else than what would run.
func decodeRunNow(body []byte, req *runNowRequest) error {
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) > 0 && t[0] != '{' {
		return fmt.Errorf("got %.20q", t)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("data after the object at byte %d", dec.InputOffset())
	}
	return nil
}

func (a *API) runNow(w http.ResponseWriter, r *http.Request) {
	if !a.authorize(w, r) {
		return
	}
	e, _, ok := a.lookup(w, r, false)
	if !ok {
		return
	}
	var req runNowRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		writeError(w, http.StatusRequestEntityTooLarge, "request body larger than %d bytes", mbe.Limit)
		return
	} else if err != nil {
		writeError(w, http.StatusBadRequest, "cannot read request body: %v", err)
		return
	}
	if len(body) > 0 {
		if err := decodeRunNow(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, "request body: must be a JSON object such as {\"target\": \"name\"} "+
				"and nothing else (no body: every target): %v", err)
			return
		}
	}
	wait, err := parseWait(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	targets := e.targets
	if req.Target != "" {
		t := e.byName[req.Target]
		if t == nil {
			writeError(w, http.StatusNotFound, "probe %q has no target %q", e.cfg.Name, req.Target)
			return
		}
		targets = []*probe.Target{t}
	}

	started, refused := []runJSON{}, []refusal{}
	var done []<-chan struct{}
	for _, t := range targets {
		run, ch, status, err := a.start(r.Context(), w, t)
		if err != nil {
			refused = append(refused, refusal{Target: t.Name, Status: status, Error: err.Error()})
			continue
		}
		started = append(started, run)
		done = append(done, ch)
	}
	if len(started) == 0 {
		writeError(w, refused[0].Status, "%s", refused[0].Error)
		return
	}
	a.opts.Logger.InfoContext(r.Context(), "run now", "probe", e.cfg.Name, "started", len(started), "refused", len(refused))

	status := http.StatusAccepted
	if wait > 0 {
		status = http.StatusOK
		timer := time.NewTimer(wait)
		defer timer.Stop()
	waiting:
		for i := range started {
			select {
			case <-done[i]:
			case <-timer.C:
				break waiting
			case <-r.Context().Done():
				return
			}
		}
		for i := range started {
			if res, running, _, ok := a.opts.Feed.lookup(mustParse(started[i].RunID)); ok && !running {
				started[i].Status, started[i].Result = "finished", &res
			} else {
				status = http.StatusAccepted
			}
		}
	}
	if len(started) == 1 {
		w.Header().Set("Location", started[0].URL)
	}
	writeJSON(w, status, map[string]any{"runs": started, "refused": refused})
}

func mustParse(id string) probe.RunID {
	rid, _ := probe.ParseRunID(id)
	return rid
}

// start starts one on-demand run and waits until it has started (its run
// id and trace id exist), returning the HTTP status of a refusal.
func (a *API) start(ctx context.Context, w http.ResponseWriter, t *probe.Target) (runJSON, <-chan struct{}, int, error) {
	if a.opts.Admit != nil {
		if ref := a.opts.Admit(t); ref != nil {
			// A speed test in flight is joined, though another would be
			// refused (the on-demand rate limit, a budget).
			if run, done, ok := a.join(t); ok {
				return run, done, 0, nil
			}
			return a.refused(w, t, ref)
		}
	}
	startedCh := make(chan probe.Result, 1)
	refusedCh := make(chan *probe.Refusal, 1)
	demand := &probe.Demand{Started: func(res probe.Result) {
		a.opts.Feed.Started(res)
		startedCh <- res
	}, Refused: func(ref *probe.Refusal) { refusedCh <- ref }}
	admitCtx, cancel := context.WithTimeout(probe.WithDemand(ctx, demand), admitTimeout)
	defer cancel()
	done, err := a.opts.Scheduler.RunNow(admitCtx, JobKey(t))
	switch {
	case errors.Is(err, scheduler.ErrBusy):
		if run, done, ok := a.join(t); ok {
			return run, done, 0, nil
		}
		return runJSON{}, nil, http.StatusConflict, fmt.Errorf("%s/%s: %w", t.Probe, t.Name, err)
	case errors.Is(err, scheduler.ErrExclusive):
		return runJSON{}, nil, http.StatusConflict, fmt.Errorf("%s/%s: %w", t.Probe, t.Name, err)
	case errors.Is(err, scheduler.ErrNotRunning):
		return runJSON{}, nil, http.StatusServiceUnavailable, errClosing
	case err != nil:
		return runJSON{}, nil, http.StatusServiceUnavailable, fmt.Errorf("%s/%s: %w", t.Probe, t.Name, err)
	}
	// The harness admits the run (a data budget, the on-demand rate limit)
	// or refuses it, before the job ends.
	var res probe.Result
	select {
	case res = <-startedCh:
	case ref := <-refusedCh:
		return a.refused(w, t, ref)
	case <-done:
		select {
		case res = <-startedCh:
		case ref := <-refusedCh:
			return a.refused(w, t, ref)
		default:
			return runJSON{}, nil, http.StatusServiceUnavailable, fmt.Errorf("%s/%s: the run ended without starting", t.Probe, t.Name)
		}
	}
	id := res.RunID.String()
	tid := ""
	if res.TraceID.IsValid() {
		tid = res.TraceID.String()
	}
	return runJSON{RunID: id, Probe: t.Probe, Target: t.Name, Status: "running", Start: res.Start.UTC(),
		TraceID: tid, TraceURL: a.traceLink(tid), URL: "/api/v1/runs/" + id}, done, 0, nil
}

// join finds t's run in flight (scheduled, or asked for by another
// client) for run now to answer with, as if it had started it: one run
// measures what two would, and the second would have waited anyway.
func (a *API) join(t *probe.Target) (runJSON, <-chan struct{}, bool) {
	id, ok := a.opts.Feed.runningOf(t.Key)
	if !ok {
		return runJSON{}, nil, false
	}
	rec, running, done, ok := a.opts.Feed.lookup(id)
	if !ok || !running {
		return runJSON{}, nil, false
	}
	return runJSON{RunID: rec.RunID, Probe: t.Probe, Target: t.Name, Status: "running", Start: rec.Start,
		TraceID: rec.TraceID, TraceURL: a.traceLink(rec.TraceID), URL: "/api/v1/runs/" + rec.RunID, Joined: true}, done, true
}

// refused answers a run the harness refused: 429, with Retry-After when
// the refusal says when to ask again.
func (a *API) refused(w http.ResponseWriter, t *probe.Target, ref *probe.Refusal) (runJSON, <-chan struct{}, int, error) {
	if ref.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ref.RetryAfterSeconds()))
	}
	return runJSON{}, nil, http.StatusTooManyRequests, fmt.Errorf("%s/%s: %w", t.Probe, t.Name, ref)
}

func (a *API) getRun(w http.ResponseWriter, r *http.Request) {
	id, err := probe.ParseRunID(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	wait, err := parseWait(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	res, running, done, ok := a.opts.Feed.lookup(id)
	if running && wait > 0 {
		select {
		case <-done:
			res, running, _, ok = a.opts.Feed.lookup(id)
		case <-time.After(wait):
		case <-r.Context().Done():
			return
		}
	}
	var configKey uint64 // of a stored run: the configuration it ran with
	if !ok && a.opts.Store != nil {
		rec, found, err := a.opts.Store.Get(id)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "history lookup failed: %v", err)
			return
		}
		res, configKey, ok = fromRecord(&rec), rec.ConfigKey, found
	}
	if !ok {
		writeError(w, http.StatusNotFound, "run %s not found (unknown, or past the history's retention)", id)
		return
	}
	out := runJSON{RunID: res.RunID, Probe: res.Probe, Target: res.Target, Status: "finished", Start: res.Start,
		TraceID: res.TraceID, TraceURL: a.traceLink(res.TraceID), URL: "/api/v1/runs/" + res.RunID}
	if running {
		out.Status = "running"
	} else {
		out.Result = &res
	}
	if a.opts.Store != nil {
		if ev, err := a.opts.Store.Evidence(id); err == nil {
			out.PathSnapshot = ev["path_snapshot"]
		}
	}
	if configKey != 0 {
		out.Config, _ = a.opts.Store.Config(configKey)
	} else if t := a.target(res.Probe, res.Target); t != nil {
		out.Config = history.RenderConfig(t.Config)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) target(probeName, name string) *probe.Target {
	if e := a.probes[probeName]; e != nil {
		return e.byName[name]
	}
	return nil
}

// events streams server-sent events: "started" when an on-demand run
// starts, "result" when any run finishes (the result without its logs).
// clientAddress is the request's client IP address (without the port,
// which differs per connection).
func clientAddress(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

func (a *API) events(w http.ResponseWriter, r *http.Request) {
	ch, cancel, err := a.opts.Feed.subscribe(clientAddress(r))
	if errors.Is(err, errClientStreams) {
		w.Header().Set("Retry-After", "15")
		writeError(w, http.StatusTooManyRequests, "%v: close one first", err)
		return
	} else if err != nil {
		writeError(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	defer cancel()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, "retry: 2000\n: connected\n\n"); err != nil {
		return
	}
	_ = rc.Flush()
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for {
		select {
		case msg, open := <-ch:
			if !open {
				return
			}
			if _, err := w.Write(msg); err != nil {
				return
			}
		case <-heartbeat.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case <-a.closing:
			return
		case <-r.Context().Done():
			return
		}
		_ = rc.Flush()
	}
}
