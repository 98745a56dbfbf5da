package telemetry

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

// logEvery limits how often export errors are logged: a collector that is
// down fails every export, and one line a minute says so well enough.
const logEvery = time.Minute

// watchExportErrors counts the SDK's errors (failed exports, dropped data)
// and logs them at most once per logEvery, with how many were suppressed.
func (t *Telemetry) watchExportErrors(logger *slog.Logger) error {
	errs, err := t.MeterProvider.Meter(scopeName).Int64Counter("netpulse.telemetry.errors",
		metric.WithUnit("{error}"),
		metric.WithDescription("Errors reported by the OpenTelemetry SDK, such as failed OTLP exports."))
	if err != nil {
		return err
	}
	errs.Add(context.Background(), 0) // exported as 0 from the start, not absent
	var (
		mu         sync.Mutex
		lastLogged time.Time
		suppressed int
	)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(e error) {
		errs.Add(context.Background(), 1)
		mu.Lock()
		defer mu.Unlock()
		if time.Since(lastLogged) < logEvery {
			suppressed++
			return
		}
		logger.Warn("telemetry export error", "error", e, "suppressed_since_last", suppressed)
		lastLogged, suppressed = time.Now(), 0
	}))
	return nil
}

const scopeName = "github.com/netpulse/netpulse/internal/telemetry"
