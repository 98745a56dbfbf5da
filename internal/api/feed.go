package api

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/probe"
)

// Feed is the API's live state, fed by every result (Runner.OnResult) and
// every on-demand start: the last result and last success of each target,
// runs in flight, the most recent results (with their log lines, before
// the store has them) and the subscribers of /api/v1/events. Nothing in it
// blocks the caller: a subscriber that does not keep up is disconnected
// (its browser reconnects and reloads).
type Feed struct {
	mu   sync.Mutex
	last map[uint64]*targetState
	// inflight are the runs in flight that someone follows: started on
	// demand, or looked up while running (lookup).
	inflight map[probe.RunID]*pending
	// running is each target's run in flight (by series), scheduled or on
	// demand: run now joins it instead of refusing. Only what a start
	// says, kept in place: a scheduled run's JSON and channel are made
	// when someone looks it up, not for every run (1,000 a second).
	running  map[uint64]startedRun
	recent   []resultJSON // ring of the last recentSize results
	next     int
	byID     map[string]int         // run id → index in recent
	subs     map[chan []byte]string // → the subscriber's client address
	byClient map[string]int         // open streams per client address
}

// targetState is a target's last result, kept in place: a result of its
// own on the heap was an allocation per run. state hands out copies.
type targetState struct {
	last        resultJSON
	hasLast     bool
	lastSuccess time.Time
}

// startedRun is what a run's start says, for lookup to answer from.
type startedRun struct {
	id       probe.RunID
	target   *probe.Target
	start    time.Time
	traceID  trace.TraceID
	onDemand bool
}

func newStartedRun(res probe.Result) startedRun {
	return startedRun{id: res.RunID, target: res.Target, start: res.Start, traceID: res.TraceID, onDemand: res.OnDemand}
}

// pending is a run in flight that someone follows.
type pending struct {
	started resultJSON
	done    chan struct{}
}

const (
	recentSize = 512
	// subBuffer is how many events a subscriber may lag behind.
	subBuffer = 256
	// maxSubscribers bounds open event streams.
	maxSubscribers = 100
	// maxPerClient bounds the streams of one client address, so that one
	// client cannot take them all (a browser has one or two).
	maxPerClient = 10
)

// NewFeed returns an empty feed.
func NewFeed() *Feed {
	return &Feed{last: map[uint64]*targetState{}, inflight: map[probe.RunID]*pending{}, running: map[uint64]startedRun{},
		byID: map[string]int{}, subs: map[chan []byte]string{}, byClient: map[string]int{}}
}

// seed sets a target's last result and last success, read from the store
// at start so the page shows them before the first run.
func (f *Feed) seed(series uint64, last resultJSON, lastSuccess time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last[series] = &targetState{last: last, hasLast: true, lastSuccess: lastSuccess}
}

// Started records an on-demand run that has started.
func (f *Feed) Started(res probe.Result) {
	rec := liveResult(res)
	rec.Outcome = ""
	f.mu.Lock()
	f.inflight[res.RunID] = &pending{started: rec, done: make(chan struct{})}
	f.running[res.RunID.Series] = newStartedRun(res)
	f.mu.Unlock()
	f.broadcast("started", startedEvent{RunID: rec.RunID, Probe: rec.Probe, Target: rec.Target,
		Start: rec.Start, TraceID: rec.TraceID})
}

// Running records a run that has started, scheduled or on demand
// (Runner.OnStart), without an event: run now joins it. An on-demand run
// is already known (Started).
func (f *Feed) Running(res probe.Result) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running[res.RunID.Series] = newStartedRun(res)
}

// runningOf returns the run of a target (its series) in flight, if any.
func (f *Feed) runningOf(series uint64) (id probe.RunID, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.running[series]
	return r.id, ok
}

// Progress passes what a run reports (Runner.OnProgress) to the event
// stream as a "progress" event: a speed test's phase and rate, live.
func (f *Feed) Progress(res probe.Result, p probe.Progress) {
	f.broadcast("progress", progressEvent{RunID: res.RunID.String(), Probe: res.Target.Probe, Target: res.Target.Name,
		Phase: p.Phase, Rate: p.Rate, Elapsed: p.Elapsed.Seconds()})
}

type progressEvent struct {
	RunID   string  `json:"run_id"`
	Probe   string  `json:"probe"`
	Target  string  `json:"target"`
	Phase   string  `json:"phase"`
	Rate    float64 `json:"bytes_per_second"`
	Elapsed float64 `json:"elapsed_seconds"`
}

type startedEvent struct {
	RunID   string    `json:"run_id"`
	Probe   string    `json:"probe"`
	Target  string    `json:"target"`
	Start   time.Time `json:"start"`
	TraceID string    `json:"trace_id,omitempty"`
}

// Publish takes a finished run's result; it is a Runner.OnResult consumer.
func (f *Feed) Publish(res probe.Result) {
	rec := liveResult(res)
	f.mu.Lock()
	st := f.last[res.RunID.Series]
	if st == nil {
		st = &targetState{}
		f.last[res.RunID.Series] = st
	}
	st.last, st.hasLast = rec, true
	if rec.Outcome == probe.OutcomeSuccess {
		st.lastSuccess = res.Start.Add(res.Duration).UTC()
	}
	if len(f.recent) < recentSize {
		f.recent = append(f.recent, rec)
		f.byID[rec.RunID] = len(f.recent) - 1
	} else {
		delete(f.byID, f.recent[f.next].RunID)
		f.recent[f.next] = rec
		f.byID[rec.RunID] = f.next
		f.next = (f.next + 1) % recentSize
	}
	if p, ok := f.inflight[res.RunID]; ok {
		delete(f.inflight, res.RunID)
		close(p.done)
	}
	if r, ok := f.running[res.RunID.Series]; ok && r.id == res.RunID {
		delete(f.running, res.RunID.Series)
	}
	f.mu.Unlock()
	ev := rec
	ev.Logs = nil // events stay small; the run's debug view has the logs
	f.broadcast("result", ev)
}

// state returns a target's last result and last success.
func (f *Feed) state(series uint64) (*resultJSON, time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st := f.last[series]; st != nil {
		var last *resultJSON
		if st.hasLast {
			rec := st.last
			last = &rec
		}
		return last, st.lastSuccess
	}
	return nil, time.Time{}
}

// lookup finds a run in flight (with a channel closed when it ends) or a
// recent result.
func (f *Feed) lookup(id probe.RunID) (rec resultJSON, running bool, done <-chan struct{}, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, found := f.inflight[id]; found {
		return p.started, true, p.done, true
	}
	if r, found := f.running[id.Series]; found && r.id == id { // followed from now on
		rec := liveResult(probe.Result{Target: r.target, Start: r.start, RunID: r.id, TraceID: r.traceID, OnDemand: r.onDemand})
		rec.Outcome = ""
		p := &pending{started: rec, done: make(chan struct{})}
		f.inflight[id] = p
		return p.started, true, p.done, true
	}
	if i, found := f.byID[id.String()]; found {
		return f.recent[i], false, nil, true
	}
	return resultJSON{}, false, nil, false
}

// errTooManyStreams and errClientStreams say why subscribe refused.
var (
	errTooManyStreams = fmt.Errorf("too many event streams open (%d)", maxSubscribers)
	errClientStreams  = fmt.Errorf("too many event streams open from this address (%d)", maxPerClient)
)

// subscribe registers an event stream of a client (its address): refused
// past maxSubscribers in all, or maxPerClient from that client.
func (f *Feed) subscribe(client string) (ch chan []byte, cancel func(), err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.subs) >= maxSubscribers {
		return nil, nil, errTooManyStreams
	}
	if f.byClient[client] >= maxPerClient {
		return nil, nil, errClientStreams
	}
	ch = make(chan []byte, subBuffer)
	f.subs[ch] = client
	f.byClient[client]++
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.drop(ch)
	}, nil
}

// drop ends a subscription (if it is still open); f.mu is held.
func (f *Feed) drop(ch chan []byte) {
	client, ok := f.subs[ch]
	if !ok {
		return
	}
	delete(f.subs, ch)
	close(ch)
	if f.byClient[client]--; f.byClient[client] <= 0 {
		delete(f.byClient, client)
	}
}

// broadcast sends an SSE event to every subscriber without waiting: one
// whose buffer is full is dropped (its channel closed). Without
// subscribers (no status page open) nothing is encoded: at 1,000 runs/s
// the encoding alone was 6 % of the agent's CPU.
func (f *Feed) broadcast(event string, data any) {
	f.mu.Lock()
	none := len(f.subs) == 0
	f.mu.Unlock()
	if none {
		return
	}
	js, err := json.Marshal(data)
	if err != nil {
		return
	}
	msg := []byte("event: " + event + "\ndata: " + string(js) + "\n\n")
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- msg:
		default:
			f.drop(ch)
		}
	}
}

// closeAll ends every event stream (the agent is shutting down).
func (f *Feed) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		f.drop(ch)
	}
}
