package scheduler

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"time"
)

// workerIdle is how long a worker waits for another run before it ends.
// Long enough that, at a steady load, workers live through many GC cycles:
// a new one's stack grows at every level of its first run's depth.
const workerIdle = 10 * time.Second

// dispatch starts the runs of queued jobs as they come due, until ctx is
// done. It is the only goroutine that waits for time: it sleeps on one
// timer until the earliest queued run, or until wake says that a job was
// added or queued earlier than that. A due run goes to an idle worker, or
// to a new one when none is idle; the worker queues its job again when the
// run is over (a job is out of the queue while its run is in flight, as
// its loop was busy before). Workers, not a goroutine per run: a worker's
// stack has grown to a run's depth already, where a new goroutine's starts
// small and is copied at each level it grows through (a tenth of the
// agent's CPU at 1,000 runs/s).
func (s *Scheduler) dispatch(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.drawFirstSlots()
		s.mu.Lock()
		now := time.Now()
		for s.queue.Len() > 0 && !s.queue[0].next.After(now) {
			e := heap.Pop(&s.queue).(*entry)
			e.state = running
			select {
			case s.work <- e:
			default:
				s.workers.Go(func() { s.worker(ctx, e) })
			}
		}
		wait := time.Duration(-1)
		s.armed = time.Time{}
		if s.queue.Len() > 0 {
			s.armed = s.queue[0].next
			wait = s.armed.Sub(now)
		}
		s.mu.Unlock()
		// A timer stopped or reset since Go 1.23 delivers no stale tick.
		if wait >= 0 {
			timer.Reset(wait)
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.wake:
		}
	}
}

// worker runs e's run, then the runs the dispatcher hands it, until none
// came for workerIdle or ctx is done.
func (s *Scheduler) worker(ctx context.Context, e *entry) {
	var idle *time.Timer
	for {
		s.runDue(ctx, e)
		if idle == nil {
			idle = time.NewTimer(workerIdle)
			defer idle.Stop()
		} else {
			idle.Reset(workerIdle) // since Go 1.23, no stale tick survives a Reset
		}
		select {
		case e = <-s.work:
		case <-idle.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// drawFirstSlots queues the started jobs at their first slot: Job.First's,
// or a random offset within the interval. First is asked without s.mu
// held, as the job's own goroutine asked it before.
func (s *Scheduler) drawFirstSlots() {
	s.mu.Lock()
	fresh := s.pending
	s.pending = nil
	s.mu.Unlock()
	for _, e := range fresh {
		j := e.job
		slot := time.Now().Add(rand.N(j.Interval))
		if j.First != nil {
			slot = j.First(time.Now())
		}
		next := j.open(slot.Add(j.delay()))
		s.mu.Lock()
		if e.state == pending { // not removed meanwhile
			e.slot, e.next = slot, next
			e.state = queued
			heap.Push(&s.queue, e)
		}
		s.mu.Unlock()
	}
}

// requeue queues e, whose run is over, for its next run at next (slot is
// the slot it belongs to); with a zero next, or once e was removed or the
// scheduler stopped, e ends instead.
func (s *Scheduler) requeue(e *entry, slot, next time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if next.IsZero() || e.stop.Err() != nil {
		s.end(e)
		return
	}
	e.slot, e.next = slot, next
	e.state = queued
	heap.Push(&s.queue, e)
	if s.armed.IsZero() || next.Before(s.armed) {
		s.poke() // the dispatcher sleeps past e's run
	}
}

// poke wakes the dispatcher without waiting: one wake pending is enough.
func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// queue is a min-heap of queued entries by the time of their next run.
type queue []*entry

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, k int) bool { return q[i].next.Before(q[k].next) }
func (q queue) Swap(i, k int) {
	q[i], q[k] = q[k], q[i]
	q[i].index, q[k].index = i, k
}

func (q *queue) Push(x any) {
	e := x.(*entry)
	e.index = len(*q)
	*q = append(*q, e)
}

func (q *queue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	e.index = -1
	return e
}

// remove takes e, which is queued, out of the queue.
func (q *queue) remove(e *entry) { heap.Remove(q, e.index) }
