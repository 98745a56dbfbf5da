package scheduler

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// Soon: a first run within a minute without recent history; an interval
// after the last run when history has one within the interval.
func TestFirstRunSoon(t *testing.T) {
	for _, c := range []struct {
		name     string
		lastAgo  time.Duration // 0: no history
		from, to time.Duration // where the first run must fall
	}{
		{"no history", 0, 0, time.Minute},
		{"history older than the interval", 3 * time.Hour, 0, time.Minute},
		{"a run 50 minutes ago", 50 * time.Minute, 10 * time.Minute, 10 * time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				begin := time.Now()
				var last time.Time
				if c.lastAgo > 0 {
					last = begin.Add(-c.lastAgo)
				}
				first := make(chan time.Duration, 1)
				ctx, cancel := context.WithTimeout(t.Context(), 2*time.Hour)
				defer cancel()
				s := New([]Job{{Interval: time.Hour, First: Soon(time.Hour, last), Run: func(context.Context) {
					select {
					case first <- time.Since(begin):
					default:
					}
					cancel()
				}}})
				s.Run(ctx)
				select {
				case at := <-first:
					if at < c.from || at > c.to {
						t.Errorf("first run after %s, want between %s and %s", at, c.from, c.to)
					}
				default:
					t.Error("no run in two hours")
				}
			})
		})
	}
}

// With a window (here 01:00-06:00 of each virtual day), runs start only
// inside it, hourly, and the slots of the closed hours are not counted as
// skipped; the first run waits for the first opening.
func TestWindows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		begin := time.Now()
		open := func(t time.Time) time.Time {
			day := begin.Add(t.Sub(begin).Truncate(24 * time.Hour))
			switch since := t.Sub(day); {
			case since < time.Hour:
				return day.Add(time.Hour)
			case since < 6*time.Hour:
				return t
			default:
				return day.Add(25 * time.Hour)
			}
		}
		var starts []time.Duration
		skipped := 0
		ctx, cancel := context.WithTimeout(t.Context(), 48*time.Hour)
		defer cancel()
		s := New([]Job{{Interval: time.Hour, First: func(now time.Time) time.Time { return now }, Open: open,
			Run:     func(context.Context) { starts = append(starts, time.Since(begin)) },
			Skipped: func(context.Context, string, int) { skipped++ }}})
		s.Run(ctx)
		want := []time.Duration{1, 2, 3, 4, 5, 25, 26, 27, 28, 29}
		if len(starts) != len(want) {
			t.Fatalf("runs at %v, want at hours %v", starts, want)
		}
		for i, h := range want {
			if starts[i] != h*time.Hour {
				t.Errorf("run %d at %s, want %dh", i, starts[i], h)
			}
		}
		if skipped != 0 {
			t.Errorf("%d skip reports; closed hours are not missed runs", skipped)
		}
	})
}
