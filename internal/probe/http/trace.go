package http

import (
	"crypto/tls"
	"net/http/httptrace"
	"sync"
	"time"
)

// Phases of a request (the phase label of netpulse.http.duration and
// blackbox_exporter's probe_http_duration_seconds).
const (
	PhaseResolve    = "resolve"    // DNS lookup of the host
	PhaseConnect    = "connect"    // TCP connection
	PhaseTLS        = "tls"        // TLS handshake
	PhaseProcessing = "processing" // request written → first response byte
	PhaseTransfer   = "transfer"   // first response byte → body read
)

var phases = []string{PhaseResolve, PhaseConnect, PhaseTLS, PhaseProcessing, PhaseTransfer}

// hop is one request of a run (the first, then one per redirect) with the
// times the dialer and net/http/httptrace reported. A zero time: it did not happen
// (a reused connection has no connect or TLS).
type hop struct {
	start                      time.Time // GetConn: the request asks for a connection
	dnsStart, dnsDone          time.Time
	connectStart, connectDone  time.Time
	tlsStart, tlsDone          time.Time
	wrote, firstByte, end      time.Time
	dnsErr, connectErr, tlsErr error
	reused                     bool
	tlsState                   *tls.ConnectionState
}

// recorder collects a run's hops from the dialer and httptrace callbacks,
// which net/http calls from its own goroutines.
type recorder struct {
	mu   sync.Mutex
	hops []*hop
}

func (r *recorder) cur() *hop {
	if len(r.hops) == 0 {
		r.hops = append(r.hops, &hop{start: time.Now()})
	}
	return r.hops[len(r.hops)-1]
}

func (r *recorder) at(f func(h *hop, now time.Time)) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r.cur(), now)
}

// trace returns the hooks. A redirect's request starts with GetConn: that
// ends the previous hop (its body was read and closed by the client).
func (r *recorder) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GetConn: func(string) {
			now := time.Now()
			r.mu.Lock()
			defer r.mu.Unlock()
			if n := len(r.hops); n > 0 && r.hops[n-1].end.IsZero() {
				r.hops[n-1].end = now
			}
			r.hops = append(r.hops, &hop{start: now})
		},
		GotConn:           func(info httptrace.GotConnInfo) { r.at(func(h *hop, _ time.Time) { h.reused = info.Reused }) },
		TLSHandshakeStart: func() { r.at(func(h *hop, t time.Time) { h.tlsStart = t }) },
		TLSHandshakeDone: func(st tls.ConnectionState, err error) {
			r.at(func(h *hop, t time.Time) {
				h.tlsDone, h.tlsErr = t, err
				if err == nil {
					h.tlsState = &st
				}
			})
		},
		WroteRequest:         func(httptrace.WroteRequestInfo) { r.at(func(h *hop, t time.Time) { h.wrote = t }) },
		GotFirstResponseByte: func() { r.at(func(h *hop, t time.Time) { h.firstByte = t }) },
	}
}

// finish ends the last hop (its body was read, or the run failed) and
// returns the hops.
func (r *recorder) finish() []*hop {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.hops); n > 0 && r.hops[n-1].end.IsZero() {
		r.hops[n-1].end = now
	}
	return r.hops
}

// span is one phase of a hop: its start and end (end zero: it did not
// finish, the run failed there).
type span struct {
	phase      string
	start, end time.Time
	err        error
}

// phaseSpans are the hop's phases that started, in order.
func (h *hop) phaseSpans() []span {
	var out []span
	add := func(phase string, s, e time.Time, err error) {
		if !s.IsZero() {
			out = append(out, span{phase, s, e, err})
		}
	}
	add(PhaseResolve, h.dnsStart, h.dnsDone, h.dnsErr)
	add(PhaseConnect, h.connectStart, h.connectDone, h.connectErr)
	add(PhaseTLS, h.tlsStart, h.tlsDone, h.tlsErr)
	add(PhaseProcessing, h.wrote, h.firstByte, nil)
	if !h.firstByte.IsZero() {
		add(PhaseTransfer, h.firstByte, h.end, nil)
	}
	return out
}

// durations sums each phase over the hops, as blackbox_exporter does.
func durations(hops []*hop) map[string]time.Duration {
	d := map[string]time.Duration{}
	for _, h := range hops {
		for _, s := range h.phaseSpans() {
			if !s.end.IsZero() && s.err == nil {
				d[s.phase] += s.end.Sub(s.start)
			}
		}
	}
	return d
}
