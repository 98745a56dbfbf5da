package scheduler

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// startScheduler runs s in the bubble until the test's end and returns a
// func that stops it and waits for Run to return.
func startScheduler(t *testing.T, s *Scheduler) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	synctest.Wait() // Run has registered its context
	return func() { cancel(); <-done }
}

func TestRunNowRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New([]Job{{Key: "a", Interval: time.Hour, Run: func(context.Context) {}}})
		if _, err := s.RunNow(t.Context(), "a"); !errors.Is(err, ErrNotRunning) {
			t.Errorf("before Run: %v, want ErrNotRunning", err)
		}
		stop := startScheduler(t, s)
		if _, err := s.RunNow(t.Context(), "nope"); !errors.Is(err, ErrUnknownJob) {
			t.Errorf("unknown key: %v, want ErrUnknownJob", err)
		}
		stop()
		if _, err := s.RunNow(t.Context(), "a"); !errors.Is(err, ErrNotRunning) {
			t.Errorf("after Run: %v, want ErrNotRunning", err)
		}
	})
}

func TestRunNowNeverOverlapsTheSameJob(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var running, maxRunning, runs atomic.Int32
		var overdue atomic.Int32
		job := Job{Key: "a", Interval: 10 * time.Second,
			Run: func(ctx context.Context) {
				if n := running.Add(1); n > maxRunning.Load() {
					maxRunning.Store(n)
				}
				runs.Add(1)
				time.Sleep(15 * time.Second)
				running.Add(-1)
			},
			Skipped: func(_ context.Context, reason string, n int) {
				if reason == SkipOverdue {
					overdue.Add(int32(n))
				}
			}}
		s := New([]Job{job})
		stop := startScheduler(t, s)

		done, err := s.RunNow(t.Context(), "a")
		if err != nil {
			t.Fatalf("first run now: %v", err)
		}
		synctest.Wait()
		if _, err := s.RunNow(t.Context(), "a"); !errors.Is(err, ErrBusy) {
			t.Errorf("second run now while the first runs: %v, want ErrBusy", err)
		}
		<-done
		// The schedule's first slot (within 10s) fell within the 15s
		// on-demand run: the scheduled run waited for it, not beside it.
		time.Sleep(60 * time.Second)
		stop()
		if maxRunning.Load() != 1 {
			t.Errorf("max concurrent runs of one job %d, want 1", maxRunning.Load())
		}
		if runs.Load() < 3 {
			t.Errorf("only %d runs in 75s", runs.Load())
		}
		if overdue.Load() == 0 {
			t.Error("slots covered by 15s runs at a 10s interval were not counted as overdue")
		}
	})
}

func TestRunNowHonoursExclusivity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var shared, exclusive, violations atomic.Int32
		check := func() {
			if shared.Load() > 0 && exclusive.Load() > 0 {
				violations.Add(1)
			}
		}
		// Scheduled runs come after the test (a random first slot came
		// within its 12 s in about 1 % of runs, and failed it).
		later := func(now time.Time) time.Time { return now.Add(time.Hour) }
		sharedJob := Job{Key: "ping", Interval: time.Hour, First: later, Run: func(context.Context) {
			shared.Add(1)
			check()
			time.Sleep(2 * time.Second)
			shared.Add(-1)
		}}
		exclusiveJob := func(key string) Job {
			return Job{Key: key, Interval: time.Hour, First: later, Exclusive: true, Run: func(context.Context) {
				exclusive.Add(1)
				check()
				time.Sleep(10 * time.Second)
				exclusive.Add(-1)
			}}
		}
		s := New([]Job{sharedJob, exclusiveJob("speed1"), exclusiveJob("speed2")})
		stop := startScheduler(t, s)
		defer stop()

		pingDone, err := s.RunNow(t.Context(), "ping")
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		// An exclusive run waits for the shared one, then has the link alone.
		begin := time.Now()
		speedDone, err := s.RunNow(t.Context(), "speed1")
		if err != nil {
			t.Fatalf("exclusive run now during a shared run: %v", err)
		}
		if waited := time.Since(begin); waited != 2*time.Second {
			t.Errorf("exclusive run admitted after %s, want when the shared run ended (2s)", waited)
		}
		<-pingDone
		synctest.Wait()
		if _, err := s.RunNow(t.Context(), "ping"); !errors.Is(err, ErrExclusive) {
			t.Errorf("shared run now during an exclusive run: %v, want ErrExclusive", err)
		}
		if _, err := s.RunNow(t.Context(), "speed2"); !errors.Is(err, ErrExclusive) {
			t.Errorf("second exclusive run now: %v, want ErrExclusive", err)
		}
		<-speedDone
		if _, err := s.RunNow(t.Context(), "ping"); err != nil {
			t.Errorf("shared run now after the exclusive run: %v", err)
		}
		if violations.Load() != 0 {
			t.Errorf("%d overlaps of shared and exclusive runs", violations.Load())
		}
	})
}

func TestRunNowContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type key struct{}
		var sawValue atomic.Bool
		var cancelled atomic.Bool
		s := New([]Job{{Key: "a", Interval: time.Hour, Run: func(ctx context.Context) {
			sawValue.Store(ctx.Value(key{}) == "v")
			select {
			case <-ctx.Done():
				cancelled.Store(true)
			case <-time.After(time.Minute):
			}
		}}})
		stop := startScheduler(t, s)
		reqCtx, cancelReq := context.WithCancel(context.WithValue(t.Context(), key{}, "v"))
		done, err := s.RunNow(reqCtx, "a")
		if err != nil {
			t.Fatal(err)
		}
		cancelReq() // the caller going away does not cancel the run
		synctest.Wait()
		if cancelled.Load() {
			t.Error("run cancelled with the caller's context")
		}
		stop() // waits for the on-demand run, which sees the scheduler stop
		select {
		case <-done:
		default:
			t.Error("Run returned before the on-demand run finished")
		}
		if !sawValue.Load() || !cancelled.Load() {
			t.Errorf("value seen %v, cancelled by stop %v", sawValue.Load(), cancelled.Load())
		}
	})
}
