package scheduler

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// The tests run in a synctest bubble: time is virtual and advances only when
// every goroutine is blocked, so intervals are exact and no test sleeps for real.

func TestRunsEveryIntervalAfterRandomOffset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var starts []time.Duration
		begin := time.Now()
		ctx, cancel := context.WithCancel(t.Context())
		s := New([]Job{{Interval: 10 * time.Second, Run: func(context.Context) {
			starts = append(starts, time.Since(begin))
		}}})
		go func() { time.Sleep(55 * time.Second); cancel() }()
		s.Run(ctx)

		if len(starts) < 5 || len(starts) > 6 {
			t.Fatalf("got %d runs in 55s at a 10s interval: %v", len(starts), starts)
		}
		if starts[0] >= 10*time.Second {
			t.Errorf("first run at %s, want within the first interval", starts[0])
		}
		for i := 1; i < len(starts); i++ {
			if d := starts[i] - starts[i-1]; d != 10*time.Second {
				t.Errorf("run %d started %s after the previous one, want 10s", i, d)
			}
		}
	})
}

func TestFirstOffsetsSpreadJobs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		first := map[time.Duration]bool{}
		begin := time.Now()
		ctx, cancel := context.WithCancel(t.Context())
		var jobs []Job
		for range 20 {
			jobs = append(jobs, Job{Interval: time.Minute, Run: func(context.Context) {
				mu.Lock()
				first[time.Since(begin)] = true
				mu.Unlock()
			}})
		}
		go func() { time.Sleep(59 * time.Second); cancel() }()
		New(jobs).Run(ctx)
		if len(first) < 15 {
			t.Errorf("20 jobs started at only %d distinct offsets; want them spread", len(first))
		}
	})
}

func TestOverrunningRunSkipsSlotsWithoutOverlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var running, maxRunning, runs atomic.Int32
		var skipped atomic.Int32
		ctx, cancel := context.WithCancel(t.Context())
		job := Job{
			Interval: 10 * time.Second,
			Run: func(ctx context.Context) {
				n := running.Add(1)
				if n > maxRunning.Load() {
					maxRunning.Store(n)
				}
				runs.Add(1)
				time.Sleep(25 * time.Second) // overruns two slots
				running.Add(-1)
			},
			Skipped: func(_ context.Context, reason string, n int) {
				if reason != SkipOverdue {
					t.Errorf("reason %q, want %q", reason, SkipOverdue)
				}
				skipped.Add(int32(n))
			},
		}
		go func() { time.Sleep(100 * time.Second); cancel() }()
		New([]Job{job}).Run(ctx)
		if maxRunning.Load() != 1 {
			t.Errorf("max concurrent runs %d, want 1", maxRunning.Load())
		}
		// Each run covers 3 slots: itself and 2 skipped.
		if r, s := runs.Load(), skipped.Load(); s != 2*(r-1) && s != 2*r {
			t.Errorf("%d runs, %d skipped slots; want 2 skipped per completed run", r, s)
		}
	})
}

func TestExclusiveJobRunsAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var shared, exclusive atomic.Int32
		var violations, exclusiveRuns, exclusiveSkips atomic.Int32
		ctx, cancel := context.WithCancel(t.Context())
		var jobs []Job
		for range 5 {
			jobs = append(jobs, Job{Interval: time.Second,
				Run: func(context.Context) {
					shared.Add(1)
					if exclusive.Load() > 0 {
						violations.Add(1)
					}
					time.Sleep(300 * time.Millisecond)
					shared.Add(-1)
				},
				Skipped: func(_ context.Context, reason string, n int) {
					if reason == SkipExclusive {
						exclusiveSkips.Add(int32(n))
					}
				}})
		}
		jobs = append(jobs, Job{Interval: 20 * time.Second, Exclusive: true, Run: func(context.Context) {
			exclusive.Add(1)
			if shared.Load() > 0 {
				violations.Add(1)
			}
			exclusiveRuns.Add(1)
			time.Sleep(5 * time.Second)
			exclusive.Add(-1)
		}})
		go func() { time.Sleep(60 * time.Second); cancel() }()
		New(jobs).Run(ctx)
		if violations.Load() != 0 {
			t.Errorf("%d runs overlapped an exclusive run", violations.Load())
		}
		if exclusiveRuns.Load() < 2 {
			t.Errorf("exclusive job ran %d times in 60s at a 20s interval", exclusiveRuns.Load())
		}
		if exclusiveSkips.Load() == 0 {
			t.Error("shared jobs paused by 5s exclusive runs reported no skipped slots")
		}
	})
}

func TestCancelStopsPromptly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		started := make(chan struct{})
		var once sync.Once
		job := Job{Interval: time.Second, Run: func(ctx context.Context) {
			once.Do(func() { close(started) })
			<-ctx.Done() // a run that only ends when cancelled
		}}
		done := make(chan struct{})
		go func() { New([]Job{job}).Run(ctx); close(done) }()
		<-started
		begin := time.Now()
		cancel()
		<-done
		if d := time.Since(begin); d != 0 {
			t.Errorf("Run returned %s after cancel, want at once", d)
		}
	})
}

// With Jitter, each run starts a random delay after its slot: starts vary,
// yet there is one run per interval, slots do not drift and nothing is
// counted as skipped.
func TestJitterDelaysRunsWithinTheirSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var starts []time.Duration
		var skipped atomic.Int32
		begin := time.Now()
		ctx, cancel := context.WithCancel(t.Context())
		job := Job{Interval: 10 * time.Second, Jitter: 4 * time.Second,
			Run: func(context.Context) {
				starts = append(starts, time.Since(begin))
				time.Sleep(7 * time.Second) // with the delay, often past the next slot's start
			},
			Skipped: func(context.Context, string, int) { skipped.Add(1) }}
		go func() { time.Sleep(1000 * time.Second); cancel() }()
		New([]Job{job}).Run(ctx)

		if n := len(starts); n < 98 || n > 101 {
			t.Errorf("%d runs in 1000 s at a 10 s interval", n)
		}
		if skipped.Load() != 0 {
			t.Errorf("%d skips; a run shorter than the interval must not skip slots", skipped.Load())
		}
		first := starts[0]
		distinct := map[time.Duration]bool{}
		for i, s := range starts {
			slotStart := first + time.Duration(i)*10*time.Second - 4*time.Second
			if s < slotStart || s >= slotStart+8*time.Second {
				t.Errorf("run %d at %v, outside slot %d's window", i, s, i)
			}
			if i > 0 {
				distinct[s-starts[i-1]] = true
			}
		}
		if len(distinct) < 20 {
			t.Errorf("only %d distinct gaps between 100 runs: no jitter", len(distinct))
		}
	})
}
