package scheduler

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"time"
)

// maxIdleWorkers is how many workers may wait for due runs at once; one
// more that finishes a run ends. A few, so that the pool follows the runs
// in flight (a burst of slow runs leaves no crowd of idle goroutines for
// every GC to scan) without ending and starting workers at every change.
const maxIdleWorkers = 4

// dispatch runs the scheduled runs until ctx is done, on a pool of
// workers as large as the runs in flight plus the idle ones (at least
// one). Idle workers all wait on one timer, set to the earliest queued
// run: the timer wakes one of them, which takes the run and runs it
// itself, without a thousand parked goroutines, timers and stacks (every
// GC scanned and shrank them all, and each run after a GC grew its stack
// again: a fifth of the agent's CPU at 1,000 runs/s). A dispatcher handing
// runs to workers cost a second wake per run. One cost remains: the timer,
// re-armed after it fired, is its P's earliest, and Reset wakes the
// network poller for it (runtime wakeNetPoller), where a job's own timer,
// reset an interval ahead, never was: about 3.7 thread context switches
// per run instead of 3.3 at 1,000 runs/s, for less CPU overall. A job is
// out of the queue while its run is in flight, as its loop was busy before.
func (s *Scheduler) dispatch(ctx context.Context) {
	s.mu.Lock()
	s.timer = time.NewTimer(time.Hour)
	s.timer.Stop()
	s.arm(time.Now())
	s.idle = 1
	s.mu.Unlock()
	s.workers.Go(func() { s.worker(ctx) })
	<-ctx.Done()
	s.mu.Lock()
	s.timer.Stop()
	s.mu.Unlock()
}

// worker waits for due runs and runs them until ctx is done, or until it
// finds maxIdleWorkers others idle when its run is over.
func (s *Scheduler) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.timer.C:
		case <-s.wake:
		}
		s.mu.Lock()
		if len(s.pending) > 0 {
			s.mu.Unlock()
			s.drawFirstSlots()
			s.mu.Lock()
		}
		now := time.Now()
		if s.queue.Len() == 0 || s.queue[0].start.After(now) {
			s.arm(now) // woken for a job added, or early
			s.mu.Unlock()
			continue
		}
		e := heap.Pop(&s.queue).(*entry)
		e.state = running
		s.idle--
		if s.idle == 0 { // someone must wait for the next run
			s.idle++
			s.workers.Go(func() { s.worker(ctx) })
		}
		if s.queue.Len() > 0 && !s.queue[0].start.After(now) {
			s.poke() // due as well: for another idle worker
		} else {
			s.arm(now)
		}
		s.mu.Unlock()

		s.runDue(ctx, e)

		s.mu.Lock()
		if s.idle >= maxIdleWorkers {
			s.mu.Unlock()
			return
		}
		s.idle++
		s.mu.Unlock()
	}
}

// arm sets the timer to the earliest queued start; s.mu is held. A timer
// stopped or reset delivers no stale tick since Go 1.23.
func (s *Scheduler) arm(now time.Time) {
	if s.timer == nil {
		return // not running
	}
	if s.queue.Len() == 0 {
		s.timer.Stop()
		s.armed = time.Time{}
		return
	}
	if start := s.queue[0].start; !start.Equal(s.armed) {
		s.armed = start
		s.timer.Reset(start.Sub(now))
	}
}

// Tick is the grain on which coalescing jobs' runs start (Job.Coalesce):
// the dispatcher's timer fires on a multiple of Tick for every such run
// due by then, so the runs of a large ping fleet start in small groups
// instead of one by one. Each start and each reply made a goroutine
// runnable on its own, and with an idle processor Go's runtime woke a
// thread for each (a futex wake and a spin, dearer in a VM than the run
// itself); runs started together, and replies that come back together,
// share those wakes. At 1,000 ping runs a second on a 2-vCPU VM the agent
// took 15.4–16.0 % of a core one by one, 9.7–10.4 % in 10 ms groups (a
// 100 ms grain saved little more: 8.4 %). Such a run starts at most one
// Tick after its slot (and so up to a Tick after its window closed); it
// still measures from its own first packet, and 10 ms groups of a
// thousand targets a second are 10 echoes, not a burst.
const Tick = 10 * time.Millisecond

// TickAfter is the first multiple of tick at or after t (t itself for a
// tick of 0). It keeps t's monotonic clock reading, which Truncate drops:
// a start read from the wall clock alone would wait out a clock step (a
// board without a battery-backed clock setting its time from NTP after
// boot, years ahead).
func TickAfter(t time.Time, tick time.Duration) time.Time {
	if tick <= 0 {
		return t
	}
	r := t.Truncate(tick)
	if r.Before(t) {
		r = r.Add(tick)
	}
	return t.Add(r.Sub(t))
}

// schedule sets e's slot and next run, and when that run starts.
func (e *entry) schedule(slot, next time.Time) {
	e.slot, e.next, e.start = slot, next, next
	if e.job.Coalesce {
		e.start = TickAfter(next, Tick)
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
			e.schedule(slot, next)
			e.state = queued
			heap.Push(&s.queue, e)
			s.arm(time.Now())
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
	e.schedule(slot, next)
	e.state = queued
	heap.Push(&s.queue, e)
	if s.armed.IsZero() || e.start.Before(s.armed) {
		s.arm(time.Now()) // the timer was set past e's run
	}
}

// poke wakes an idle worker without waiting (one wake pending is
// enough): a job was added, or more than one run is due.
func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// queue is a min-heap of queued entries by the start of their next run.
type queue []*entry

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, k int) bool { return q[i].start.Before(q[k].start) }
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
