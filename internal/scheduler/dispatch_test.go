package scheduler

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// A job added while the dispatcher sleeps until a later run starts on its
// own schedule, and a queued job that is removed never runs again.
func TestDispatcherWakesForEarlierJobsAndForgetsRemovedOnes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		starts := map[string][]time.Duration{}
		begin := time.Now()
		record := func(key string) func(context.Context) {
			return func(context.Context) {
				mu.Lock()
				starts[key] = append(starts[key], time.Since(begin))
				mu.Unlock()
			}
		}
		hour := func(now time.Time) time.Time { return now.Add(time.Hour) }
		s := New([]Job{
			{Key: "late", Interval: 2 * time.Hour, First: hour, Run: record("late")},
			{Key: "removed", Interval: 2 * time.Hour, First: hour, Run: record("removed")},
		})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { s.Run(ctx); close(done) }()
		synctest.Wait() // the dispatcher sleeps until the hour

		at := func(d time.Duration) func(time.Time) time.Time {
			return func(now time.Time) time.Time { return now.Add(d) }
		}
		if err := s.Add(Job{Key: "early", Interval: time.Minute, First: at(10 * time.Second), Run: record("early")}); err != nil {
			t.Fatal(err)
		}
		idle := s.Remove("removed")
		synctest.Wait()
		select {
		case <-idle:
		default:
			t.Fatal("removing a queued job did not report it idle at once")
		}
		time.Sleep(90 * time.Minute)
		cancel()
		<-done

		mu.Lock()
		defer mu.Unlock()
		if got := starts["early"]; len(got) != 90 || got[0] != 10*time.Second {
			t.Errorf("the job added later ran %d times, first at %v; want 90 runs from 10s", len(got), got[:min(1, len(got))])
		}
		if got := starts["late"]; len(got) != 1 || got[0] != time.Hour {
			t.Errorf("the late job ran at %v, want once at 1h", got)
		}
		if got := starts["removed"]; len(got) != 0 {
			t.Errorf("the removed job ran at %v", got)
		}
	})
}

// Jobs waiting for their next run hold no goroutine each: a few idle
// workers wait for all of them.
func TestWaitingJobsHoldNoGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var jobs []Job
		for range 200 {
			jobs = append(jobs, Job{Interval: time.Minute, Run: func(context.Context) {}})
		}
		base := runtime.NumGoroutine()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { New(jobs).Run(ctx); close(done) }()
		time.Sleep(90 * time.Second) // every job has run at least once
		synctest.Wait()
		if n := runtime.NumGoroutine() - base; n > 1+maxIdleWorkers {
			t.Errorf("%d goroutines for 200 waiting jobs, want Run's and at most %d idle workers", n, maxIdleWorkers)
		}
		cancel()
		<-done
	})
}

// Runs in flight hold their workers: however many are slow at once, every
// job's run starts on its slot, one interval after the previous.
func TestSlowRunsDelayNoOtherJob(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		starts := map[int][]time.Duration{}
		begin := time.Now()
		var jobs []Job
		for i := range 50 {
			jobs = append(jobs, Job{Interval: 10 * time.Second, Run: func(context.Context) {
				mu.Lock()
				starts[i] = append(starts[i], time.Since(begin))
				mu.Unlock()
				time.Sleep(time.Duration(i%10) * time.Second) // up to 9 s of 10
			}})
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { New(jobs).Run(ctx); close(done) }()
		time.Sleep(95 * time.Second)
		cancel()
		<-done

		mu.Lock()
		defer mu.Unlock()
		for i, st := range starts {
			if len(st) < 9 {
				t.Errorf("job %d ran %d times in 95 s at a 10 s interval", i, len(st))
			}
			for k := 1; k < len(st); k++ {
				if d := st[k] - st[k-1]; d != 10*time.Second {
					t.Errorf("job %d: run %d started %s after the previous one, want 10s", i, k, d)
				}
			}
		}
	})
}

// A coalescing job's runs start on the dispatcher's Tick: never before
// their slot, at most one Tick after it, together with the others whose
// slots fall within that Tick. Other jobs' runs start on their slot, even
// when a coalescing run queued before them waits for its Tick.
func TestCoalescingRunsStartOnTheTickAfterTheirSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		starts := map[string]time.Duration{}
		origin := time.Now().Truncate(time.Hour).Add(time.Hour) // on every Tick's grid
		type slot struct {
			at       time.Duration
			coalesce bool
		}
		slots := map[string]slot{
			"on the tick":      {0, true},
			"just after it":    {time.Millisecond, true},
			"late in it":       {Tick - time.Microsecond, true},
			"on the next one":  {Tick, true},
			"after that":       {Tick + time.Nanosecond, true},
			"not coalescing":   {2 * time.Millisecond, false},
			"plain, later too": {Tick + 3*time.Millisecond, false},
		}
		var jobs []Job
		for key, sl := range slots {
			jobs = append(jobs, Job{Key: key, Interval: time.Hour, Coalesce: sl.coalesce,
				First: func(time.Time) time.Time { return origin.Add(sl.at) },
				Run: func(context.Context) {
					mu.Lock()
					starts[key] = time.Since(origin)
					mu.Unlock()
				}})
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { New(jobs).Run(ctx); close(done) }()
		time.Sleep(time.Until(origin.Add(time.Minute)))
		cancel()
		<-done

		mu.Lock()
		defer mu.Unlock()
		want := map[string]time.Duration{"on the tick": 0, "just after it": Tick, "late in it": Tick,
			"on the next one": Tick, "after that": 2 * Tick, "not coalescing": 2 * time.Millisecond,
			"plain, later too": Tick + 3*time.Millisecond}
		for key, at := range want {
			if got, ran := starts[key]; !ran || got != at {
				t.Errorf("slot %v (%s): started at %v (ran: %v), want %v", slots[key].at, key, got, ran, at)
			}
		}
	})
}

// A coalesced start keeps the monotonic clock reading of the time it is
// computed from, so that a step of the wall clock does not move it.
func TestTickAfterKeepsTheMonotonicClock(t *testing.T) {
	now := time.Now()
	start := TickAfter(now, Tick)
	if !strings.Contains(start.String(), "m=") {
		t.Errorf("TickAfter(%v) = %v: no monotonic reading", now, start)
	}
	if d := start.Sub(now); d < 0 || d >= Tick {
		t.Errorf("TickAfter is %v after its time, want [0, %v)", d, Tick)
	}
	if wall := start.Round(0); !wall.Truncate(Tick).Equal(wall) {
		t.Errorf("TickAfter(%v) = %v, not on a multiple of %v", now, wall, Tick)
	}
}
