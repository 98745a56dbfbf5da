package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"go.opentelemetry.io/otel/metric"

	"github.com/netpulse/netpulse/internal/api"
	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/history"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probes"
)

// historyQueue is how many results may wait for the history writer; past
// it results are dropped (and counted), never waited for.
const historyQueue = 10000

// results is the agent's result history and live feed: the store, its
// writer and the API's feed, which every run's result reaches.
type results struct {
	store   *history.Store
	writer  *history.Writer
	feed    *api.Feed
	tempDir string // set when history is not persisted (removed at close)
	logger  *slog.Logger
	done    chan struct{}
}

// openResults opens the history in the configured data directory. With
// the default directory, a file already in use (another agent on the same
// account) or a directory that cannot be created does not stop the agent:
// history then lives in a temporary file for this run only, with a warning.
// A configured storage.path must work.
func openResults(cfg config.Storage, mp metric.MeterProvider, logger *slog.Logger) (*results, error) {
	r := &results{feed: api.NewFeed(), done: make(chan struct{}), logger: logger}
	dir := cfg.DataDir()
	store, err := history.Open(dir)
	if err != nil && cfg.Path == "" {
		tmp, terr := os.MkdirTemp("", "netpulse-history-")
		if terr != nil {
			return nil, errors.Join(err, terr)
		}
		logger.Warn("history is kept for this run only", "reason", err, "fix", "set storage.path to a writable directory")
		r.tempDir = tmp
		store, err = history.Open(tmp)
	}
	if err != nil {
		return nil, fmt.Errorf("storage.path %q: %w", dir, err)
	}
	r.store = store
	var long []string
	for _, t := range probes.Registry.Types() {
		if t.Policy.LongRetention {
			long = append(long, t.Name)
		}
	}
	store.SetSpecs(rollupSpecs(probes.Registry.Types()))
	r.writer, err = history.NewWriter(store, history.Retention{MaxAge: cfg.Retention, RawMaxAge: cfg.RawRetention,
		MinuteMaxAge: cfg.MinuteRetention, LongMaxAge: cfg.SpeedtestRetention,
		LongTypes: long, MaxBytes: int64(cfg.MaxSizeMB) << 20}, historyQueue, mp, logger)
	if err != nil {
		r.close()
		return nil, fmt.Errorf("cannot create history writer: %w", err)
	}
	return r, nil
}

// onResult feeds a finished run to the history and the live view; it
// never blocks.
func (r *results) onResult(res probe.Result) {
	r.writer.Add(res)
	r.feed.Publish(res)
}

// evidence keeps what a run found beside its values with the run
// (probe.Deps.Evidence): rare (a path snapshot on trouble, at most one per
// target per min_gap), so written at once.
func (r *results) evidence(ctx context.Context, kind string, v any) {
	id, ok := probe.RunIDFrom(ctx)
	if !ok {
		return
	}
	if err := r.store.PutEvidence(id, kind, v); err != nil {
		r.logger.WarnContext(ctx, "evidence not kept", "kind", kind, "run_id", id.String(), "error", err)
	}
}

// run writes results until ctx ends, then what is still queued.
func (r *results) run(ctx context.Context) {
	defer close(r.done)
	r.writer.Run(ctx)
}

func (r *results) close() {
	_ = r.store.Close()
	if r.tempDir != "" {
		_ = os.RemoveAll(r.tempDir)
	}
}

// rollupSpecs says what history roll-ups keep of each type: the
// distribution of its headline latency, and the values the status page
// and alerts use (those with a role) and the packet counts. A type
// without a headline latency keeps every value.
func rollupSpecs(types []*probe.Type) map[string]history.Spec {
	specs := map[string]history.Spec{}
	for _, t := range types {
		sp := history.Spec{}
		for _, v := range t.Values {
			switch {
			case v.Role == probe.RoleLatency:
				sp.Distribution = v.Name
			case v.Role != "" || v.Unit == "{packet}":
				sp.Values = append(sp.Values, v.Name)
			}
		}
		if sp.Distribution != "" {
			specs[t.Name] = sp
		}
	}
	return specs
}
