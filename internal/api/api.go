// Package api is the agent's JSON API under /api/v1 (described by the
// OpenAPI document it serves at /api/v1/openapi.json): probes and targets
// with their last results, result history, run now, a debug view of one run
// and a stream of events (SSE) that the status page follows.
//
// Reading is open, unless api.token_protects_reads asks for the bearer token
// there too; an agent that listens on loopback only answers only requests
// addressed to loopback (DNS rebinding). Mutating (run now) needs the
// configured bearer token, or, without one, an agent that listens on
// loopback only. History answers are streamed a page at a time, and heavy
// ones are few at once (stream.go). Errors are JSON:
// {"error": "...", "status": 400}.
package api

import (
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/history"
	"github.com/netpulse/netpulse/internal/probe"
)

//go:embed openapi.json
var openAPI []byte

// Scheduler starts on-demand runs (scheduler.Scheduler.RunNow).
type Scheduler interface {
	RunNow(ctx context.Context, key string) (<-chan struct{}, error)
}

// JobKey is the scheduler key of a target's job.
func JobKey(t *probe.Target) string { return fmt.Sprintf("%016x", t.Key) }

// Options configures the API.
type Options struct {
	Probes    []config.Probe
	Targets   []*probe.Target
	Scheduler Scheduler
	Store     *history.Store
	Feed      *Feed
	// Token is the bearer token of mutating endpoints; empty: none.
	Token string
	// ProtectReads requires Token on reads too (api.token_protects_reads),
	// except for the index and the OpenAPI document.
	ProtectReads bool
	// Loopback says the agent listens on loopback only: without a token,
	// run now is allowed only then.
	Loopback bool
	// TraceURL links runs to a trace UI ({trace_id} is replaced).
	TraceURL string
	// Types describe the probe types (values, view) for the status page.
	Types *probe.Registry
	// Admit, when set, tells whether the harness would admit an on-demand
	// run of t now (probe.Runner.Admit).
	Admit func(t *probe.Target) *probe.Refusal
	// SpeedtestMinInterval is the least time between two on-demand runs
	// of rate-limited types (shown by info; the harness enforces it).
	SpeedtestMinInterval time.Duration
	// Verdict, when set, returns the fault-domain verdict (info's verdict).
	Verdict func() any
	Version string
	Logger  *slog.Logger
}

// API serves /api/v1.
type API struct {
	opts    Options
	mux     *http.ServeMux
	probes  map[string]*probeEntry
	order   []string
	closing chan struct{}
	once    sync.Once
	// heavy holds a token per heavy history query running (acquireHeavy).
	heavy chan struct{}
}

type probeEntry struct {
	cfg     config.Probe
	targets []*probe.Target
	byName  map[string]*probe.Target
}

// Limits of requests.
const (
	maxBody        = 4 << 10
	maxLimit       = 100000
	defaultLimit   = 1000
	maxWait        = 5 * time.Minute
	admitTimeout   = 30 * time.Second
	maxBuckets     = 10000
	defaultWindow  = time.Hour
	lastSuccessRun = 100000 // rows scanned back for a target's last success at start
)

// New builds the API and seeds the feed from the store.
func New(opts Options) *API {
	a := &API{opts: opts, mux: http.NewServeMux(), probes: map[string]*probeEntry{}, closing: make(chan struct{}),
		heavy: make(chan struct{}, heavySlots)}
	for _, p := range opts.Probes {
		a.probes[p.Name] = &probeEntry{cfg: p, byName: map[string]*probe.Target{}}
		a.order = append(a.order, p.Name)
	}
	for _, t := range opts.Targets {
		if e := a.probes[t.Probe]; e != nil {
			e.targets = append(e.targets, t)
			e.byName[t.Name] = t
			if opts.Store != nil {
				a.seed(t)
			}
		}
	}
	a.routes()
	return a
}

// seed gives the feed t's last result and last success from the store,
// unless the feed has them already (an API rebuilt by a reload: the feed
// is the agent's and knows more recent results than the store's writer).
func (a *API) seed(t *probe.Target) {
	if last, _ := a.opts.Feed.state(t.Key); last != nil {
		return
	}
	last, ok, err := a.opts.Store.Last(t.Key)
	if err != nil || !ok {
		return
	}
	ls, _ := a.opts.Store.LastSuccess(t.Key, lastSuccessRun)
	a.opts.Feed.seed(t.Key, fromRecord(&last), ls)
}

// Last is a target's last result's outcome and its last success as the
// API knows them (seeded from the store at start), and whether it has any.
func (a *API) Last(t *probe.Target) (outcome string, lastSuccess time.Time, ok bool) {
	last, ls := a.opts.Feed.state(t.Key)
	if last == nil {
		return "", ls, false
	}
	return last.Outcome, ls, true
}

func (a *API) routes() {
	a.handle("/api/v1/{$}", map[string]http.HandlerFunc{"GET": a.index})
	a.handle("/api/v1/openapi.json", map[string]http.HandlerFunc{"GET": func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPI)
	}})
	a.handle("/api/v1/info", map[string]http.HandlerFunc{"GET": a.info})
	a.handle("/api/v1/probes", map[string]http.HandlerFunc{"GET": a.listProbes})
	a.handle("/api/v1/probes/{probe}", map[string]http.HandlerFunc{"GET": a.getProbe})
	a.handle("/api/v1/probes/{probe}/runs", map[string]http.HandlerFunc{"POST": a.runNow})
	a.handle("/api/v1/probes/{probe}/targets/{target}/results", map[string]http.HandlerFunc{"GET": a.results})
	a.handle("/api/v1/probes/{probe}/targets/{target}/aggregate", map[string]http.HandlerFunc{"GET": a.aggregate})
	a.handle("/api/v1/runs/{id}", map[string]http.HandlerFunc{"GET": a.getRun})
	a.handle("/api/v1/events", map[string]http.HandlerFunc{"GET": a.events})
	a.handle("/api/v1/outages", map[string]http.HandlerFunc{"GET": a.outages})
	a.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: %s (see /api/v1/openapi.json)", r.URL.Path)
	})
}

// handle registers a path with a handler per method, answering other
// methods with a JSON 405 (the mux's own is plain text).
func (a *API) handle(pattern string, byMethod map[string]http.HandlerFunc) {
	var allowed []string
	for m := range byMethod {
		allowed = append(allowed, m)
	}
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		h, ok := byMethod[r.Method]
		if !ok && r.Method == http.MethodHead {
			h, ok = byMethod[http.MethodGet]
		}
		if !ok {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeError(w, http.StatusMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path)
			return
		}
		h(w, r)
	})
}

// ServeHTTP serves /api/.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if read := r.Method == http.MethodGet || r.Method == http.MethodHead; read {
		protected := a.opts.ProtectReads && a.opts.Token != ""
		if protected && r.URL.Path != "/api/v1/" && r.URL.Path != "/api/v1/openapi.json" && !a.checkBearer(w, r) {
			return
		}
		// DNS rebinding: a page on attacker.example, its name now resolving
		// to 127.0.0.1, could read an agent that listens on loopback (the
		// browser deems it same-origin); its Host header gives it away.
		if a.opts.Loopback && !protected && !loopbackHost(r.Host) {
			writeError(w, http.StatusForbidden, "request for host %q refused: the agent listens on loopback and answers "+
				"only requests addressed to localhost or a loopback address", r.Host)
			return
		}
	}
	a.mux.ServeHTTP(w, r)
}

// SetLoopback records whether the agent listens on loopback only; call it
// before serving.
func (a *API) SetLoopback(loopback bool) { a.opts.Loopback = loopback }

// IsLoopback reports whether addr is a loopback address (127.0.0.0/8, ::1);
// an unspecified one (":9517", all interfaces) is not.
func IsLoopback(addr net.Addr) bool {
	if ta, ok := addr.(*net.TCPAddr); ok {
		return ta.IP.IsLoopback()
	}
	host, _, err := net.SplitHostPort(addr.String())
	ip := net.ParseIP(host)
	return err == nil && ip != nil && ip.IsLoopback()
}

// Shutdown ends the event streams so the HTTP server can drain.
func (a *API) Shutdown() {
	a.once.Do(func() {
		close(a.closing)
		a.opts.Feed.closeAll()
	})
}

type apiError struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, apiError{Error: fmt.Sprintf(format, args...), Status: status})
}

// writeJSON encodes v before writing the status, so that a value
// encoding/json refuses (an infinite number in a configuration) is a 500
// that says so rather than a 200 with an empty body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	js, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		js, _ = json.Marshal(apiError{Error: "cannot encode the answer: " + err.Error(), Status: status})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(js, '\n'))
}

// index is open even when reads are protected: reads_need_token tells a
// status page to ask for the token (and send it as a bearer token with
// every request) before it reads anything.
func (a *API) index(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"openapi": "/api/v1/openapi.json", "info": "/api/v1/info", "probes": "/api/v1/probes",
		"events": "/api/v1/events", "outages": "/api/v1/outages", "reads_need_token": a.opts.ProtectReads && a.opts.Token != "",
	})
}

type runNowInfo struct {
	Enabled       bool   `json:"enabled"`
	TokenRequired bool   `json:"token_required"`
	Reason        string `json:"reason,omitempty"`
}

func (a *API) info(w http.ResponseWriter, _ *http.Request) {
	rn := runNowInfo{Enabled: a.opts.Token != "" || a.opts.Loopback, TokenRequired: a.opts.Token != ""}
	if !rn.Enabled {
		rn.Reason = errNoToken
	}
	out := map[string]any{"version": a.opts.Version, "trace_url": a.opts.TraceURL, "run_now": rn,
		"speedtest_min_interval_seconds": a.opts.SpeedtestMinInterval.Seconds()}
	if a.opts.Verdict != nil {
		out["verdict"] = a.opts.Verdict()
	}
	if s := a.opts.Store; s != nil {
		out["storage"] = map[string]any{"path": s.Path(), "file_bytes": s.FileBytes()}
	}
	writeJSON(w, http.StatusOK, out)
}

const errNoToken = "run now is disabled: the agent listens beyond loopback and api.token is not set"

// authorize checks a mutating request: the bearer token when one is set;
// without one, only an agent listening on loopback accepts it, and only
// from its own origin (a web page elsewhere cannot make the browser post).
func (a *API) authorize(w http.ResponseWriter, r *http.Request) bool {
	if a.opts.Token == "" {
		if !a.opts.Loopback {
			writeError(w, http.StatusForbidden, errNoToken)
			return false
		}
		// DNS rebinding: a page on attacker.example whose name now resolves
		// to 127.0.0.1 is same-origin with itself, so the Host must name
		// loopback too.
		if !loopbackHost(r.Host) {
			writeError(w, http.StatusForbidden, "request for host %q refused: without api.token, run now answers only "+
				"requests addressed to localhost or a loopback address", r.Host)
			return false
		}
		if o := r.Header.Get("Origin"); o != "" {
			if u, err := url.Parse(o); err != nil || u.Host != r.Host {
				writeError(w, http.StatusForbidden, "cross-origin request refused (Origin %q, Host %q)", o, r.Host)
				return false
			}
		}
		return true
	}
	return a.checkBearer(w, r)
}

// checkBearer checks the request's bearer token against Token, answering
// 401 itself when it is missing or wrong.
func (a *API) checkBearer(w http.ResponseWriter, r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, found := strings.CutPrefix(h, "Bearer ")
	if !found || tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="netpulse"`)
		writeError(w, http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer <api.token>")
		return false
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(a.opts.Token)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="netpulse", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "invalid bearer token")
		return false
	}
	return true
}

// loopbackHost reports whether a Host header names this machine's loopback:
// localhost or a loopback address, with or without a port.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// lookup resolves the {probe} and {target} path values, writing a 404.
func (a *API) lookup(w http.ResponseWriter, r *http.Request, withTarget bool) (*probeEntry, *probe.Target, bool) {
	name := r.PathValue("probe")
	e := a.probes[name]
	if e == nil {
		writeError(w, http.StatusNotFound, "probe %q is not configured", name)
		return nil, nil, false
	}
	if !withTarget {
		return e, nil, true
	}
	tn := r.PathValue("target")
	t := e.byName[tn]
	if t == nil {
		writeError(w, http.StatusNotFound, "probe %q has no target %q", name, tn)
		return nil, nil, false
	}
	return e, t, true
}

// traceLink returns the trace UI URL of a trace id, or "".
func (a *API) traceLink(traceID string) string {
	if a.opts.TraceURL == "" || traceID == "" {
		return ""
	}
	return strings.ReplaceAll(a.opts.TraceURL, config.TraceIDPlaceholder, traceID)
}

// parseWait reads the wait query parameter (a duration up to maxWait).
func parseWait(r *http.Request) (time.Duration, error) {
	s := r.URL.Query().Get("wait")
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > maxWait {
		return 0, fmt.Errorf("wait: must be a duration between 0s and %s, such as 10s, not %q", maxWait, s)
	}
	return d, nil
}

var errClosing = errors.New("the agent is shutting down")
