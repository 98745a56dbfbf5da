package api

import (
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/redact"
)

type probeJSON struct {
	Name            string       `json:"name"`
	Type            string       `json:"type"`
	IntervalSeconds float64      `json:"interval_seconds"`
	TimeoutSeconds  float64      `json:"timeout_seconds"`
	Targets         []targetJSON `json:"targets"`
	// View and Values come from the type (probe.Type): how the status page
	// shows it and what its values are, so the page names no type.
	View   string      `json:"view,omitempty"`
	Values []valueJSON `json:"values,omitempty"`
}

// valueJSON describes one of a type's values (probe.Value).
type valueJSON struct {
	Name  string `json:"name"`
	Unit  string `json:"unit"`
	Label string `json:"label"`
	Role  string `json:"role,omitempty"`
}

type targetJSON struct {
	Name   string            `json:"name"`
	Host   string            `json:"host"`
	Labels map[string]string `json:"labels,omitempty"`
	// Tier is the target's tier (config.Tiers), empty when none: the page
	// groups a probe's targets by it.
	Tier   string `json:"tier,omitempty"`
	Status string `json:"status"` // up, degraded, down or unknown (no run yet)
	// StatusReason says why a target is degraded or down ("loss 10% > 2%",
	// "no_reply"); empty when up.
	StatusReason string          `json:"status_reason"`
	Thresholds   *thresholdsJSON `json:"thresholds,omitempty"`
	Last         *resultJSON     `json:"last_result"`
	LastSuccess  *time.Time      `json:"last_success"`
	TraceURL     string          `json:"last_trace_url,omitempty"`
}

func (a *API) probeJSON(e *probeEntry) probeJSON {
	p := probeJSON{Name: e.cfg.Name, Type: e.cfg.Type, IntervalSeconds: e.cfg.Interval.Seconds(),
		TimeoutSeconds: e.cfg.Timeout.Seconds(), Targets: []targetJSON{}}
	if typ := a.opts.Types.Lookup(e.cfg.Type); typ != nil {
		p.View = typ.View
		for _, v := range typ.Values {
			p.Values = append(p.Values, valueJSON{Name: v.Name, Unit: v.Unit, Label: v.Label, Role: v.Role})
		}
	}
	typ := a.opts.Types.Lookup(e.cfg.Type)
	for _, t := range e.targets {
		tj := targetJSON{Name: t.Name, Host: redact.URLs(t.Host), Labels: t.Labels, Tier: t.Tier, Status: "unknown",
			Thresholds: newThresholdsJSON(t.Thresholds)}
		last, ls := a.opts.Feed.state(t.Key)
		if last != nil {
			l := *last
			l.Logs = nil
			tj.Last = &l
			tj.Status, tj.StatusReason = status(t, typ, &l)
			tj.TraceURL = a.traceLink(l.TraceID)
		}
		if !ls.IsZero() {
			tj.LastSuccess = &ls
		}
		p.Targets = append(p.Targets, tj)
	}
	return p
}

// status is a target's state after its last result: down (with the
// error type), degraded (with the thresholds it exceeded) or up.
func status(t *probe.Target, typ *probe.Type, last *resultJSON) (state, reason string) {
	if last.Outcome != probe.OutcomeSuccess {
		reason = last.Outcome
		if last.ErrorType != "" {
			reason = last.ErrorType
		}
		return "down", reason
	}
	if why := probe.Degraded(t.Thresholds, typ, last.Values); why != "" {
		return "degraded", why
	}
	return "up", ""
}

// thresholdsJSON is a target's thresholds in base units (seconds, a ratio);
// a threshold not set is absent.
type thresholdsJSON struct {
	Latency *float64 `json:"latency_seconds,omitempty"`
	Jitter  *float64 `json:"jitter_seconds,omitempty"`
	Loss    *float64 `json:"loss_ratio,omitempty"`
	// Download and Upload are expected rates (a plan), bytes per second.
	Download *float64 `json:"download_bytes_per_second,omitempty"`
	Upload   *float64 `json:"upload_bytes_per_second,omitempty"`
}

func newThresholdsJSON(th config.Thresholds) *thresholdsJSON {
	if th.IsZero() {
		return nil
	}
	var out thresholdsJSON
	if th.Latency > 0 {
		v := th.Latency.Seconds()
		out.Latency = &v
	}
	if th.Jitter > 0 {
		v := th.Jitter.Seconds()
		out.Jitter = &v
	}
	if th.Loss != nil {
		v := float64(*th.Loss)
		out.Loss = &v
	}
	if th.Download > 0 {
		v := float64(th.Download)
		out.Download = &v
	}
	if th.Upload > 0 {
		v := float64(th.Upload)
		out.Upload = &v
	}
	return &out
}

func (a *API) listProbes(w http.ResponseWriter, _ *http.Request) {
	out := struct {
		Probes []probeJSON `json:"probes"`
	}{Probes: []probeJSON{}}
	for _, name := range a.order {
		out.Probes = append(out.Probes, a.probeJSON(a.probes[name]))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) getProbe(w http.ResponseWriter, r *http.Request) {
	e, _, ok := a.lookup(w, r, false)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, a.probeJSON(e))
}

// parseTime reads a time parameter: RFC 3339, or a duration meaning that
// long before now (since=24h).
func parseTime(name, s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%s: must be an RFC 3339 time (2026-01-02T15:04:05Z) or a duration before now (1h), not %q", name, s)
}

// earliest and latest bound the times the history holds: a result's key
// is its start in nanoseconds since 1970 (int64), which cannot name a time
// outside them (UnixNano overflows, and a query would quietly find
// nothing).
var (
	earliest = time.Unix(0, math.MinInt64).UTC().Truncate(time.Second).Add(time.Second)
	latest   = time.Unix(0, math.MaxInt64).UTC().Truncate(time.Second)
)

// window reads since and until (default: the last hour) and checks them.
func window(r *http.Request) (since, until time.Time, err error) {
	now := time.Now()
	q := r.URL.Query()
	until = now
	if s := q.Get("until"); s != "" {
		if until, err = parseTime("until", s, now); err != nil {
			return
		}
	}
	since = until.Add(-defaultWindow)
	if s := q.Get("since"); s != "" {
		if since, err = parseTime("since", s, now); err != nil {
			return
		}
	}
	for _, b := range []struct {
		name string
		t    time.Time
	}{{"until", until}, {"since", since}} { // until first: since may be its default
		if b.t.Before(earliest) || b.t.After(latest) {
			err = fmt.Errorf("%s: %s is outside the times the history can hold (%s to %s)", b.name,
				b.t.UTC().Format(time.RFC3339), earliest.Format(time.RFC3339), latest.Format(time.RFC3339))
			return
		}
	}
	if !since.Before(until) {
		err = fmt.Errorf("since (%s) must be before until (%s)", since.Format(time.RFC3339), until.Format(time.RFC3339))
	}
	return
}

// targetWindow resolves the target and the time window of a history
// request, answering 404 or 400 itself when either is wrong.
func (a *API) targetWindow(w http.ResponseWriter, r *http.Request) (t *probe.Target, since, until time.Time, ok bool) {
	if _, t, ok = a.lookup(w, r, true); !ok {
		return
	}
	since, until, err := window(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return nil, since, until, false
	}
	return t, since, until, true
}

func (a *API) results(w http.ResponseWriter, r *http.Request) {
	t, since, until, ok := a.targetWindow(w, r)
	if !ok {
		return
	}
	limit, err := parseLimit(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	desc := false
	switch o := r.URL.Query().Get("order"); o {
	case "", "asc":
	case "desc":
		desc = true
	default:
		writeError(w, http.StatusBadRequest, "order: must be asc or desc, not %q", o)
		return
	}
	if a.opts.Store == nil {
		writeError(w, http.StatusServiceUnavailable, "history is not available")
		return
	}
	if limit > heavyLimit {
		release, ok := a.acquireHeavy(w, "results")
		if !ok {
			return
		}
		defer release()
	}
	a.streamResults(w, t, since, until, limit, desc)
}

func (a *API) aggregate(w http.ResponseWriter, r *http.Request) {
	t, since, until, ok := a.targetWindow(w, r)
	if !ok {
		return
	}
	var err error
	step := time.Minute
	if s := r.URL.Query().Get("step"); s != "" {
		if step, err = time.ParseDuration(s); err != nil || step < time.Second {
			writeError(w, http.StatusBadRequest, "step: must be a duration of at least 1s, not %q", s)
			return
		}
	}
	if n := until.Sub(since) / step; n > maxBuckets {
		writeError(w, http.StatusBadRequest, "step: %s over %s makes %d buckets, more than %d; use a larger step",
			step, until.Sub(since), n, maxBuckets)
		return
	}
	if a.opts.Store == nil {
		writeError(w, http.StatusServiceUnavailable, "history is not available")
		return
	}
	if until.Sub(since) > heavyWindow {
		release, ok := a.acquireHeavy(w, "aggregate")
		if !ok {
			return
		}
		defer release()
	}
	buckets, err := a.opts.Store.Aggregate(t.Key, since, until, step)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "history query failed: %v", err)
		return
	}
	var keep []string
	if v := r.URL.Query().Get("values"); v != "" {
		// Only the named values: a chart needs two of a probe's ten.
		keep = strings.Split(v, ",")
	}
	buf := appendAggregate(nil, fromBuckets(buckets, keep), since, until, step)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(buf)
}
