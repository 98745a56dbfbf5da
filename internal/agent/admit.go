package agent

import (
	"context"
	"log/slog"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe"
)

// runAdmitted runs p against t unless p refuses the run (a speed test over
// its data budget): a refusal is counted as a skipped run
// (outcome="skipped", error_type=<reason>), nothing is measured and the
// target's last result and success stand.
func runAdmitted(ctx context.Context, runner *probe.Runner, p probe.Prober, t *probe.Target, timeout time.Duration,
	logger *slog.Logger) {
	if a, ok := p.(probe.Admitter); ok {
		if reason, err := a.Admit(t); reason != "" {
			runner.Skipped(ctx, t, reason, 1)
			logger.InfoContext(ctx, "probe run skipped", "probe", t.Probe, "target", t.Name, "reason", reason, "error", err)
			return
		}
	}
	runner.Run(ctx, p, t, timeout)
}

// jitter is the random delay a probe's runs may start after their slot:
// half the interval for speed tests, so an hourly or daily test samples
// different times of day (the first offset alone fixes its time of day),
// none for the others.
func jitter(pc config.Probe) time.Duration {
	if pc.Type == config.TypeSpeedtest {
		return pc.Interval / 2
	}
	return 0
}
