package scheduler

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// Jobs added and removed while the scheduler runs (a reload by
// difference): the jobs that stay keep their slots exactly, a removed
// job's run in flight finishes uncancelled before Remove reports it idle,
// and an added job starts within its interval.
func TestAddAndRemoveWhileRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		starts := map[string][]time.Duration{}
		begin := time.Now()
		record := func(key string) {
			mu.Lock()
			starts[key] = append(starts[key], time.Since(begin))
			mu.Unlock()
		}
		release := make(chan struct{})
		var removedErr error
		removedRunning := make(chan struct{})
		s := New([]Job{
			{Key: "stays", Interval: 10 * time.Second, Run: func(context.Context) { record("stays") }},
			{Key: "goes", Interval: 10 * time.Second, Run: func(ctx context.Context) {
				record("goes")
				select {
				case removedRunning <- struct{}{}:
				default:
				}
				<-release
				removedErr = ctx.Err()
			}},
		})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { s.Run(ctx); close(done) }()

		<-removedRunning // "goes" is in its first run
		idle := s.Remove("goes")
		if err := s.Add(Job{Key: "new", Interval: 10 * time.Second, Run: func(context.Context) { record("new") }}); err != nil {
			t.Fatal(err)
		}
		if err := s.Add(Job{Key: "stays", Interval: time.Second, Run: func(context.Context) {}}); !errors.Is(err, ErrDuplicateJob) {
			t.Errorf("adding a key twice: %v, want ErrDuplicateJob", err)
		}
		synctest.Wait()
		select {
		case <-idle:
			t.Fatal("Remove reported idle while the removed job's run was in flight")
		default:
		}
		close(release)
		<-idle
		if removedErr != nil {
			t.Errorf("the removed job's run in flight saw %v; want it to finish uncancelled", removedErr)
		}
		if _, err := s.RunNow(t.Context(), "goes"); !errors.Is(err, ErrUnknownJob) {
			t.Errorf("RunNow of a removed job: %v, want ErrUnknownJob", err)
		}
		time.Sleep(45 * time.Second)
		cancel()
		<-done

		mu.Lock()
		defer mu.Unlock()
		if n := len(starts["goes"]); n != 1 {
			t.Errorf("removed job ran %d times, want once (the run in flight)", n)
		}
		if n := len(starts["new"]); n < 4 || n > 5 {
			t.Errorf("added job ran %d times in 45 s at a 10 s interval", n)
		}
		st := starts["stays"]
		for i := 1; i < len(st); i++ {
			if d := st[i] - st[i-1]; d != 10*time.Second {
				t.Errorf("the job that stayed: run %d %s after the previous, want 10s (schedule kept)", i, d)
			}
		}
	})
}
