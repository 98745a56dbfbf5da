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

// throttle returns a report function that passes p to each of r's
// OnProgress at most every progressEvery, and at every phase change.
func (r *Runner) throttle(res Result) func(Progress) {
	var (
		mu    sync.Mutex
		last  time.Time
		phase string
	)
	return func(p Progress) {
		mu.Lock()
		now := time.Now()
		pass := p.Phase != phase || now.Sub(last) >= progressEvery
		if pass {
			last, phase = now, p.Phase
		}
		mu.Unlock()
		if pass {
			r.OnProgress(res, p)
		}
	}
}
