// Package scheduler runs jobs on fixed intervals, spread out in time, never
// overlapping a job with itself, and with an exclusive mode for jobs that
// must have the link to themselves (speed tests).
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// Skip reasons passed to Job.Skipped.
const (
	// SkipOverdue: the previous run of the same job overran the slot.
	SkipOverdue = "overdue"
	// SkipExclusive: the job waited for an exclusive job past its slot.
	SkipExclusive = "exclusive"
)

// Job is one (probe, target) pair to run every Interval.
type Job struct {
	// Key names the job for RunNow; optional, unique when set.
	Key      string
	Interval time.Duration
	// Jitter delays each run by a random amount in [0, Jitter) after its
	// slot (at most Interval/2; slots stay on their grid), so that a
	// long-interval job does not always sample the same time of day.
	Jitter time.Duration
	// Exclusive jobs run alone: no other job starts while one runs, and it
	// waits for running jobs to finish before it starts.
	Exclusive bool
	// Run executes one run; it bounds itself (the probe's timeout).
	Run func(ctx context.Context)
	// Skipped is told how many scheduled slots passed without a run.
	Skipped func(ctx context.Context, reason string, n int)
	// First, when set, returns the first slot, asked when the scheduler
	// starts (now is that moment); nil: a random offset within Interval.
	First func(now time.Time) time.Time
	// Open, when set, returns the earliest time at or after t at which a
	// run may start (time windows). A slot outside the windows waits for
	// the next opening; slots that fall while closed are not runs missed
	// (not counted as skipped). nil: any time.
	Open func(t time.Time) time.Time
	// Coalesce lets the job's runs start on the dispatcher's Tick, up to a
	// Tick after their slot and together with other coalescing runs due by
	// then: for runs timed by the kernel (ping), which lose nothing by it.
	// Runs timed in user space (DNS, HTTP, TCP) start on their slot, alone,
	// rather than contend for the CPU with others started with them.
	Coalesce bool
}

// soonWindow is how soon a job whose First says "soon" runs: a random
// offset within it.
const soonWindow = time.Minute

// Soon returns a First function for a job that should run within a
// minute (a random offset within min(Interval, a minute)), unless last
// (the start of the job's latest run, from history; zero: none) lies
// within the last interval: then the first slot is an interval after
// last, so a restart neither delays nor repeats a long-interval run.
func Soon(interval time.Duration, last time.Time) func(now time.Time) time.Time {
	return func(now time.Time) time.Time {
		if !last.IsZero() && now.Sub(last) < interval && !last.After(now) {
			return last.Add(interval)
		}
		return now.Add(rand.N(min(interval, soonWindow)))
	}
}

// Scheduler runs jobs until its context ends. Jobs can be added and
// removed while it runs (a configuration reload): the others keep their
// schedule.
//
// The jobs wait in a heap by the time of their next run, for one timer
// that wakes one of a pool of workers as large as the runs in flight
// (dispatch.go). A goroutine per job parked between its runs cost, at
// 1,000 jobs, a thousand timers, a thousand stacks for every GC to scan
// and shrink, and a stack grown again on every run after a GC.
type Scheduler struct {
	// gate admits shared jobs with weight 1 and exclusive ones with the
	// whole capacity; it is FIFO, so a waiting exclusive job is not starved.
	gate *semaphore.Weighted
	// exclusive counts exclusive runs holding or waiting for the gate.
	exclusive atomic.Int32
	// wake wakes an idle worker: a job was added, or more than one run
	// is due (dispatch.go).
	wake chan struct{}

	mu      sync.Mutex
	entries []*entry          // in the order added: started by Run
	keys    map[string]*entry // the entries with a key
	ctx     context.Context   // set while Run runs
	stopped bool
	queue   queue    // started entries waiting for their next run, by time
	pending []*entry // started entries whose first slot is still to draw
	// timer wakes an idle worker at armed, the earliest queued run (zero:
	// none); set while Run runs (dispatch.go).
	timer *time.Timer
	armed time.Time
	// idle counts the workers waiting for a due run.
	idle    int
	workers sync.WaitGroup // the workers of scheduled runs (dispatch.go)
	demand  sync.WaitGroup // on-demand runs in flight
}

// entry is one job and its schedule.
type entry struct {
	job Job
	// busy holds one token while a run of the job is in flight or waiting
	// for the gate, scheduled or on demand: runs of a job never overlap. A
	// channel, not a mutex, so tests in a synctest bubble see a waiting
	// run as durably blocked.
	busy chan struct{}
	// stop is done when the job is removed or the scheduler stops: it ends
	// the job's waits, not a run in flight; cancel releases it.
	stop   context.Context
	cancel context.CancelFunc
	// done is closed when the job is no longer scheduled and no scheduled
	// run of it is in flight.
	done chan struct{}

	// Guarded by Scheduler.mu.
	state entryState
	// slot is the job's current slot; next is when its run is due (the
	// slot plus its delay, moved to a window's opening); start is when it
	// starts: next, or the Tick after it for a coalescing job.
	slot, next, start time.Time
	index             int // in the queue while queued
}

// entryState is where an entry is in its life.
type entryState uint8

const (
	added   entryState = iota // not started (the scheduler is not running)
	pending                   // started, first slot to draw (Scheduler.pending)
	queued                    // waiting for its next run (Scheduler.queue)
	running                   // a scheduled run is due, in flight or waiting
	ended                     // removed or stopped; done is closed
)

const gateCapacity = math.MaxInt32

// New returns a scheduler for jobs; their keys, when set, must be unique.
func New(jobs []Job) *Scheduler {
	s := &Scheduler{gate: semaphore.NewWeighted(gateCapacity), keys: map[string]*entry{}, wake: make(chan struct{}, 1)}
	_ = s.Add(jobs...) // a duplicate key is dropped, as Add says
	return s
}

// Add adds jobs; while Run runs they start at once, each at a random
// offset in its interval as at start. A job whose key is taken is not
// added (an error says which); the others are.
func (s *Scheduler) Add(jobs ...Job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, j := range jobs {
		if j.Key != "" {
			if _, dup := s.keys[j.Key]; dup {
				errs = append(errs, fmt.Errorf("job %q: %w", j.Key, ErrDuplicateJob))
				continue
			}
		}
		e := &entry{job: j, busy: make(chan struct{}, 1), done: make(chan struct{}), index: -1}
		s.entries = append(s.entries, e)
		if j.Key != "" {
			s.keys[j.Key] = e
		}
		if s.ctx != nil && !s.stopped {
			s.start(e)
		}
	}
	return errors.Join(errs...)
}

// ErrDuplicateJob: Add was given a key the scheduler has already.
var ErrDuplicateJob = errors.New("a job with this key exists already")

// Remove stops scheduling the jobs named keys (unknown keys are ignored). A
// run of theirs in flight, scheduled or on demand, is not cancelled: it
// finishes within its own timeout. The returned channel is closed once
// none of them runs any more, so what their runs use can be released.
func (s *Scheduler) Remove(keys ...string) <-chan struct{} {
	s.mu.Lock()
	var gone []*entry
	for _, k := range keys {
		e, ok := s.keys[k]
		if !ok {
			continue
		}
		delete(s.keys, k)
		s.entries = slices.DeleteFunc(s.entries, func(x *entry) bool { return x == e })
		if e.cancel != nil {
			e.cancel()
		}
		if e.state != running { // a run in flight ends the entry itself
			s.end(e)
		}
		gone = append(gone, e)
	}
	s.mu.Unlock()
	idle := make(chan struct{})
	go func() {
		defer close(idle)
		for _, e := range gone {
			<-e.done
			// An on-demand run may still be in flight: wait for it, and keep
			// the token so that none starts any more.
			e.busy <- struct{}{}
		}
	}()
	return idle
}

// start hands e to the dispatcher, which draws its first slot; s.mu is
// held and s.ctx set.
func (s *Scheduler) start(e *entry) {
	e.stop, e.cancel = context.WithCancel(s.ctx)
	e.state = pending
	s.pending = append(s.pending, e)
	s.poke()
}

// end takes e out of the schedule for good; s.mu is held.
func (s *Scheduler) end(e *entry) {
	switch e.state {
	case ended:
		return
	case queued:
		s.queue.remove(e)
	case pending:
		s.pending = slices.DeleteFunc(s.pending, func(x *entry) bool { return x == e })
	}
	e.state = ended
	if e.cancel != nil {
		e.cancel()
	}
	close(e.done)
}

// Run runs every job until ctx is done, then waits for runs in flight (they
// see the cancelled context), scheduled and on demand, and returns.
func (s *Scheduler) Run(ctx context.Context) {
	s.mu.Lock()
	s.ctx = ctx
	for _, e := range s.entries {
		s.start(e)
	}
	s.mu.Unlock()
	s.dispatch(ctx)
	s.mu.Lock()
	s.stopped = true
	for _, e := range s.entries {
		if e.state != running {
			s.end(e)
		}
	}
	s.mu.Unlock()
	s.workers.Wait()
	s.demand.Wait()
}

// Errors of RunNow: why a run was refused.
var (
	ErrUnknownJob = errors.New("no such job")
	ErrNotRunning = errors.New("the scheduler is not running")
	// ErrBusy: a run of the same job is in flight (runs never overlap).
	ErrBusy = errors.New("a run of this job is already in progress")
	// ErrExclusive: an exclusive run holds the link or waits for it.
	ErrExclusive = errors.New("an exclusive run (speed test) holds the link")
)

// RunNow starts a run of the job named key at once, outside its schedule,
// under the same rules as scheduled runs: it is refused with ErrBusy while
// a run of the same job is in flight, and with ErrExclusive while an
// exclusive run holds or awaits the link. An exclusive job's run waits for
// shared runs in flight to finish, for as long as ctx allows.
//
// ctx bounds only that wait and lends its values to the run (the run's
// hooks, such as probe.WithDemand); the run itself ends with the
// scheduler. The returned channel is closed when the run has finished.
func (s *Scheduler) RunNow(ctx context.Context, key string) (<-chan struct{}, error) {
	s.mu.Lock()
	e, ok := s.keys[key]
	if !ok {
		s.mu.Unlock()
		return nil, ErrUnknownJob
	}
	j, busy := e.job, e.busy
	if s.ctx == nil || s.stopped || s.ctx.Err() != nil {
		s.mu.Unlock()
		return nil, ErrNotRunning
	}
	runCtx := s.ctx
	s.demand.Add(1)
	s.mu.Unlock()

	admitted := false
	defer func() {
		if !admitted {
			s.demand.Done()
		}
	}()
	select {
	case busy <- struct{}{}:
	default:
		return nil, ErrBusy
	}
	weight := int64(1)
	if j.Exclusive {
		weight = gateCapacity
		if s.exclusive.Add(1) > 1 {
			s.exclusive.Add(-1)
			<-busy
			return nil, ErrExclusive
		}
		if err := s.gate.Acquire(ctx, weight); err != nil {
			s.exclusive.Add(-1)
			<-busy
			return nil, fmt.Errorf("waiting for shared runs to finish: %w", err)
		}
	} else if s.exclusive.Load() > 0 || !s.gate.TryAcquire(weight) {
		<-busy
		return nil, ErrExclusive
	}

	admitted = true
	done := make(chan struct{})
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(runCtx, cancel)
	go func() {
		defer s.demand.Done()
		defer close(done)
		defer cancel()
		defer stop()
		j.Run(rctx)
		s.gate.Release(weight)
		if j.Exclusive {
			s.exclusive.Add(-1)
		}
		<-busy
	}()
	return done, nil
}

// runDue runs e's scheduled run, due now, on a worker, then queues e for
// its next slot. Slots are Interval apart from a random first
// offset, so jobs started together spread over the interval:
//
//	start   offset     slot 1         slot 2         slot 3
//	  |------->|-----run-----|  |------run------|------|--run--|
//	           |<-- Interval -->|<-- Interval -->|
//
// A run that ends after later slots have passed makes those slots skipped
// (counted, never queued), and the next run starts at the next slot. With
// Jitter, each run starts a random delay after its slot, and slots are
// counted from that start.
//
// Runs get ctx; e.stop (a child of ctx) ends the job when it is removed,
// without cancelling a run in flight.
func (s *Scheduler) runDue(ctx context.Context, e *entry) {
	j, stop, slot, next := e.job, e.stop, e.slot, e.next // e's schedule is the caller's until queued again
	// An on-demand run of this job may be in flight: wait for it.
	select {
	case e.busy <- struct{}{}:
	case <-stop.Done():
		s.requeue(e, time.Time{}, time.Time{})
		return
	}
	free := time.Now()
	weight := int64(1)
	if j.Exclusive {
		weight = gateCapacity
		s.exclusive.Add(1)
	}
	err := s.gate.Acquire(stop, weight)
	admitted := time.Now()
	if err == nil {
		j.Run(ctx)
		s.gate.Release(weight)
	}
	if j.Exclusive {
		s.exclusive.Add(-1)
	}
	<-e.busy
	if stop.Err() != nil {
		s.requeue(e, time.Time{}, time.Time{})
		return
	}

	// Slots that passed while an on-demand run of the job ran (overdue,
	// as if it had been this job's own run), while waiting for the gate
	// (exclusive), then while running (overdue).
	own := int(free.Sub(next) / j.Interval)
	waited := int(admitted.Sub(next)/j.Interval) - own
	ran := int(time.Since(next)/j.Interval) - own - waited
	if waited > 0 && j.Skipped != nil {
		j.Skipped(ctx, SkipExclusive, waited)
	}
	if own+ran > 0 && j.Skipped != nil {
		j.Skipped(ctx, SkipOverdue, own+ran)
	}
	slot = slot.Add(time.Duration(own+waited+ran+1) * j.Interval)
	// A run deferred to a window's opening: the slots of the wait were
	// never due, and the next one comes after this run's start.
	for !slot.After(next) {
		slot = slot.Add(j.Interval)
	}
	s.requeue(e, slot, j.open(slot.Add(j.delay())))
}

// open applies the job's windows to t.
func (j Job) open(t time.Time) time.Time {
	if j.Open == nil {
		return t
	}
	if o := j.Open(t); !o.IsZero() {
		return o
	}
	return t // no opening found (not a valid schedule): do not stall the job
}

// delay draws a run's random delay after its slot.
func (j Job) delay() time.Duration {
	if jit := min(j.Jitter, j.Interval/2); jit > 0 {
		return rand.N(jit)
	}
	return 0
}
