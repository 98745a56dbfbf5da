package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/netpulse/netpulse/internal/agent"
	"github.com/netpulse/netpulse/internal/config"
)

// runWithReload runs the agent until ctx ends, reloading the configuration
// on every value from reload (SIGHUP). A new configuration is validated
// first: an invalid one is logged and the running agent keeps going. A valid
// one is applied by difference (agent.Apply): unchanged targets keep their
// series, state, schedule and runs in flight. One that changes what the
// agent was built from (telemetry, global, storage...) replaces the agent
// as a whole (runs finish or are cancelled, history and telemetry are
// flushed, then the new agent starts on the same address); counters restart
// from zero, which Prometheus's rate() handles as a reset. If the new agent
// cannot start, the previous configuration is restored.
func runWithReload(ctx context.Context, cfg *config.Config, load func() (*config.Config, error),
	start func(context.Context, *config.Config) (*agent.Agent, error), reload <-chan os.Signal, status *agent.ReloadStatus,
	logger *slog.Logger) error {
	status.Record(true, time.Now())
	a, err := start(ctx, cfg)
	if err != nil {
		return err
	}
	for {
		runCtx, stopRun := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.Run(runCtx) }()

		var next *config.Config
		for next == nil {
			select {
			case err := <-done:
				stopRun()
				return err
			case <-reload:
				c, err := load()
				if err != nil {
					status.Record(false, time.Now())
					logger.Error("configuration reload failed; the running configuration stays", "error", err)
					continue
				}
				ch, err := a.Apply(c)
				var restart *agent.RestartError
				switch {
				case errors.As(err, &restart):
					logger.Info("configuration reload restarts the agent", "reason", restart.Reason)
					next = c
				case err != nil:
					status.Record(false, time.Now())
					logger.Error("configuration reload failed; the running configuration stays", "error", err)
				default:
					cfg = c
					status.Record(true, time.Now())
					logger.Info("configuration reloaded", "probes", len(cfg.Probes), "targets_added", ch.Added,
						"targets_removed", ch.Removed, "targets_changed", ch.Changed, "targets_kept", ch.Kept,
						"duration", ch.Duration)
				}
			}
		}
		stopRun()
		if err := <-done; err != nil {
			return err
		}
		if a, err = start(ctx, next); err != nil {
			status.Record(false, time.Now())
			logger.Error("cannot start the reloaded configuration; restoring the previous one", "error", err)
			if a, err = start(ctx, cfg); err != nil {
				return fmt.Errorf("cannot restore the previous configuration: %w", err)
			}
			continue
		}
		cfg = next
		status.Record(true, time.Now())
		logger.Info("configuration reloaded", "probes", len(cfg.Probes))
	}
}
