package scheduler

import (
	"context"
	"runtime"
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

// Jobs waiting for their next run hold no goroutine each: one dispatcher
// waits for all of them.
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
		if n := runtime.NumGoroutine() - base; n > 2 {
			t.Errorf("%d goroutines for 200 waiting jobs, want the scheduler's own (at most 2)", n)
		}
		cancel()
		<-done
	})
}
