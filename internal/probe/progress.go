package probe

import (
	"context"
	"sync"
	"time"
)

// Progress is what a long run is doing, for a live display: its phase
// (a speed test's server_selection, latency, download, upload) and, in a
// transfer, its current rate.
type Progress struct {
	Phase string
	// Rate is in bytes per second over the last second; 0 outside a transfer.
	Rate float64
	// Elapsed is the time since the phase started.
	Elapsed time.Duration
}

type progressKey struct{}

// WithProgress returns ctx carrying report, which ReportProgress calls.
func WithProgress(ctx context.Context, report func(Progress)) context.Context {
	return context.WithValue(ctx, progressKey{}, report)
}

// ReportProgress tells whoever follows the run (the harness, through ctx)
// what it is doing. Without a follower it does nothing: a prober may call
// it as often as it samples.
func ReportProgress(ctx context.Context, p Progress) {
	if report, ok := ctx.Value(progressKey{}).(func(Progress)); ok {
		report(p)
	}
}

// progressEvery is the least time between two reports of one run passed
// on to Runner.OnProgress (a phase change always passes): a transfer
// samples every 50 ms, and a page needs a few updates a second.
const progressEvery = 250 * time.Millisecond

// runContext is a run's context (the deadline's) carrying the run's id
// and, when the harness follows progress, the run's report function: one
// allocation instead of two context layers, a boxed id and a closure with
// its state per run (most probers never report progress).
type runContext struct {
	context.Context
	id RunID
	// runner is set when its OnProgress follows the run's progress.
	runner  *Runner
	started Result

	mu    sync.Mutex
	last  time.Time
	phase string
}

func (c *runContext) Value(key any) any {
	switch key.(type) {
	case runIDKey:
		return c.id
	case progressKey:
		if c.runner != nil {
			return c.report // a method value, made only when a prober reports
		}
	}
	return c.Context.Value(key)
}

// report passes p to the runner's OnProgress at most every progressEvery,
// and at every phase change.
func (c *runContext) report(p Progress) {
	c.mu.Lock()
	now := time.Now()
	pass := p.Phase != c.phase || now.Sub(c.last) >= progressEvery
	if pass {
		c.last, c.phase = now, p.Phase
	}
	c.mu.Unlock()
	if pass {
		c.runner.OnProgress(c.started, p)
	}
}
