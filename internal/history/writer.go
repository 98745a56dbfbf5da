package history

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/netpulse/netpulse/internal/probe"
)

// ScopeName names this package's meter.
const ScopeName = "github.com/netpulse/netpulse/internal/history"

// Writer queues results and writes them in batches from one goroutine, so
// a slow disk never delays a probe: when the queue is full a result is
// dropped and counted (netpulse_history_dropped_total{reason="queue_full"}).
type Writer struct {
	store     *Store
	retention Retention
	logger    *slog.Logger
	queue     chan probe.Result
	dropped   metric.Int64Counter
	// TrimEvery is how often retention runs (and once at start).
	TrimEvery time.Duration
	// RollupEvery is how often finished minutes are rolled up; while a
	// backlog remains (an old file's results) it runs again after
	// rollupPause.
	RollupEvery time.Duration
	// BatchWait is how long a batch collects results after its first
	// before it is written.
	BatchWait time.Duration
	// failures lets one "history write failed" line through per
	// failureLogEvery: on a full disk every batch fails (2,275 lines in
	// 45 s were seen), and the log would bury everything else.
	failures logLimiter
}

// failureLogEvery is how often a repeated write failure is logged.
const failureLogEvery = 30 * time.Second

// logLimiter lets one line of a repeated message through per interval and
// counts those it held back, for the next line to report. Used from one
// goroutine.
type logLimiter struct {
	every      time.Duration
	now        func() time.Time
	last       time.Time
	suppressed int
}

// allow reports whether to log now, and how many lines were held back
// since the last one logged.
func (l *logLimiter) allow() (bool, int) {
	now := l.now()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return true, n
}

// reset forgets the past once the failures stopped, returning how many
// lines were still held back.
func (l *logLimiter) reset() int {
	n := l.suppressed
	l.last, l.suppressed = time.Time{}, 0
	return n
}

// Batch bounds: a batch is written batchWait after its first result, or
// at once when maxBatch results are queued. Each write is a bbolt commit
// with an fdatasync: at 1,000 results/s spread evenly, writing whenever the
// queue was empty made a commit of one or two results each millisecond,
// and the commits took more CPU than all the probing (a third of the
// agent's). Waiting 1 s makes one commit a second (a commit's pages are
// written once for all its results; 250 ms cost a fifth more); the API
// serves a run's result from its live feed before the store has it, and a
// crash loses at most the last second's results.
const (
	maxBatch  = 1000
	batchWait = time.Second
)

// NewWriter returns a writer with room for queueSize results in flight.
func NewWriter(store *Store, r Retention, queueSize int, mp metric.MeterProvider, logger *slog.Logger) (*Writer, error) {
	m := mp.Meter(ScopeName)
	w := &Writer{store: store, retention: r, logger: logger, queue: make(chan probe.Result, queueSize),
		TrimEvery: 10 * time.Minute, RollupEvery: time.Minute, BatchWait: batchWait, failures: logLimiter{every: failureLogEvery, now: time.Now}}
	var err error
	if w.dropped, err = m.Int64Counter("netpulse.history.dropped", metric.WithUnit("{result}"),
		metric.WithDescription("Results not written to the history, by reason (queue_full, write_error).")); err != nil {
		return nil, err
	}
	_, err = m.Int64ObservableGauge("netpulse.history.size", metric.WithUnit("By"),
		metric.WithDescription("Size of the history file."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(store.FileBytes())
			return nil
		}))
	if err != nil {
		return nil, err
	}
	corrupt, err := m.Int64Counter("netpulse.history.corrupt", metric.WithUnit("{file}"),
		metric.WithDescription("Damaged history files moved aside at start (a fresh one replaced each)."))
	if err != nil {
		return nil, err
	}
	corrupt.Add(context.Background(), 0)
	if rec, ok := store.Recovered(); ok {
		logger.Error("history file was damaged: moved it aside and started a fresh one; its results are not shown",
			"file", store.Path(), "moved_to", rec.MovedTo, "error", rec.Reason)
		corrupt.Add(context.Background(), 1)
	}
	// Both reasons exist from the start, at zero, so alerts see the series.
	for _, reason := range []string{"queue_full", "write_error"} {
		w.dropped.Add(context.Background(), 0, metric.WithAttributes(attribute.String("reason", reason)))
	}
	return w, nil
}

// Add queues a result; it never blocks.
func (w *Writer) Add(res probe.Result) {
	select {
	case w.queue <- res:
	default:
		w.dropped.Add(context.Background(), 1, metric.WithAttributes(attribute.String("reason", "queue_full")))
	}
}

// Run writes queued results until ctx ends, then writes what is still
// queued and returns. It trims the history at start and every TrimEvery.
func (w *Writer) Run(ctx context.Context) {
	w.trim()
	tick := time.NewTicker(w.TrimEvery)
	defer tick.Stop()
	roll := time.NewTimer(0) // at once: an old file's backlog starts now
	defer roll.Stop()
	batch := make([]probe.Result, 0, maxBatch)
	for {
		select {
		case res := <-w.queue:
			batch = append(batch[:0], res)
			w.write(w.gather(ctx, batch))
		case <-tick.C:
			w.trim()
		case <-roll.C:
			if w.rollup() {
				roll.Reset(rollupPause)
			} else {
				roll.Reset(w.RollupEvery)
			}
		case <-ctx.Done():
			w.write(w.drain(batch[:0]))
			return
		}
	}
}

// gather waits BatchWait after a batch's first result (not when a full
// batch is queued already), then takes what is queued, up to maxBatch;
// when ctx ends it takes what is queued at once. It sleeps rather than
// taking each result as it comes, so that a run's result is queued
// without waking the writer.
func (w *Writer) gather(ctx context.Context, batch []probe.Result) []probe.Result {
	if w.BatchWait > 0 && len(w.queue) < maxBatch-len(batch) {
		wait := time.NewTimer(w.BatchWait)
		select {
		case <-wait.C:
		case <-ctx.Done():
		}
		wait.Stop()
	}
	return w.drain(batch)
}

// drain appends what is queued, up to maxBatch.
func (w *Writer) drain(batch []probe.Result) []probe.Result {
	for len(batch) < maxBatch {
		select {
		case res := <-w.queue:
			batch = append(batch, res)
		default:
			return batch
		}
	}
	return batch
}

func (w *Writer) write(batch []probe.Result) {
	err := w.store.Put(batch)
	if err == nil {
		if n := w.failures.reset(); n > 0 {
			w.logger.Warn("history writes work again", "failures_not_logged", n)
		}
		return
	}
	w.dropped.Add(context.Background(), int64(len(batch)), metric.WithAttributes(attribute.String("reason", "write_error")))
	if ok, held := w.failures.allow(); ok {
		w.logger.Error("history write failed", "results", len(batch), "error", err,
			"failures_not_logged", held, "logged_at_most_every", w.failures.every)
	}
}

// rollupPause separates the calls that work through a roll-up backlog,
// so queued results are written in between.
const rollupPause = 100 * time.Millisecond

// rollup rolls up finished minutes and reports whether a backlog remains.
func (w *Writer) rollup() bool {
	more, err := w.store.Rollup(time.Now())
	if err != nil {
		w.logger.Error("history roll-up failed", "error", err)
		return false
	}
	return more
}

func (w *Writer) trim() {
	start := time.Now()
	n, err := w.store.Trim(start, w.retention)
	if err != nil {
		w.logger.Error("history trim failed", "error", err)
		return
	}
	if n > 0 {
		w.logger.Info("history trimmed", "deleted", n, "took", time.Since(start).Round(time.Millisecond))
	}
}
