// Package scheduler runs jobs on fixed intervals, spread out in time, never
// overlapping a job with itself, and with an exclusive mode for jobs that
// must have the link to themselves (speed tests).
package scheduler

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
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
	Interval time.Duration
	// Exclusive jobs run alone: no other job starts while one runs, and it
	// waits for running jobs to finish before it starts.
	Exclusive bool
	// Run executes one run; it bounds itself (the probe's timeout).
	Run func(ctx context.Context)
	// Skipped is told how many scheduled slots passed without a run.
	Skipped func(ctx context.Context, reason string, n int)
}

// Scheduler runs jobs until its context ends.
type Scheduler struct {
	jobs []Job
	// gate admits shared jobs with weight 1 and exclusive ones with the
	// whole capacity; it is FIFO, so a waiting exclusive job is not starved.
	gate *semaphore.Weighted
}

const gateCapacity = math.MaxInt32

// New returns a scheduler for jobs.
func New(jobs []Job) *Scheduler {
	return &Scheduler{jobs: jobs, gate: semaphore.NewWeighted(gateCapacity)}
}

// Run runs every job until ctx is done, then waits for runs in flight (they
// see the cancelled context) and returns.
func (s *Scheduler) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, j := range s.jobs {
		wg.Go(func() { s.loop(ctx, j) })
	}
	wg.Wait()
}

// loop runs one job. Slots are Interval apart from a random first offset,
// so jobs started together spread over the interval:
//
//	start   offset     slot 1         slot 2         slot 3
//	  |------->|-----run-----|  |------run------|------|--run--|
//	           |<-- Interval -->|<-- Interval -->|
//
// A run that ends after later slots have passed makes those slots skipped
// (counted, never queued), and the next run starts at the next slot.
func (s *Scheduler) loop(ctx context.Context, j Job) {
	next := time.Now().Add(rand.N(j.Interval))
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		weight := int64(1)
		if j.Exclusive {
			weight = gateCapacity
		}
		if err := s.gate.Acquire(ctx, weight); err != nil {
			return
		}
		admitted := time.Now()
		j.Run(ctx)
		s.gate.Release(weight)
		if ctx.Err() != nil {
			return
		}

		// Slots that passed while waiting for the gate, then while running.
		waited := int(admitted.Sub(next) / j.Interval)
		ran := int(time.Since(next)/j.Interval) - waited
		if waited > 0 && j.Skipped != nil {
			j.Skipped(ctx, SkipExclusive, waited)
		}
		if ran > 0 && j.Skipped != nil {
			j.Skipped(ctx, SkipOverdue, ran)
		}
		next = next.Add(time.Duration(waited+ran+1) * j.Interval)
		timer.Reset(time.Until(next))
	}
}
