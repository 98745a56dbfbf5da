package probe

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/netpulse/netpulse/internal/testutil"
)

// A run cut short by the agent stopping (its context cancelled, not its
// timeout) measured nothing: it is counted as skipped with
// error_type="canceled", reaches neither history nor the live view, and the
// target's last result stands, so a restart or a rebuilding reload draws no
// false loss point.
func TestCancelledRunIsNotAFailure(t *testing.T) {
	r, tel, _ := newRunner(t)
	results := 0
	r.OnResult = func(Result) { results++ }
	tg := NewTarget(target.Config, target.Config.Targets[0])
	r.Seed(tg, true, time.Now().Add(-time.Minute))
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	go func() { <-started; cancel() }()
	res := r.Run(ctx, proberFunc(func(ctx context.Context, _ *Target) (Values, error) {
		close(started)
		<-ctx.Done()
		return Values{"packets_sent": 3, "packets_received": 0}, errors.New("interrupted")
	}), tg, time.Minute)
	if res.Outcome != OutcomeSkipped || res.ErrorType != ErrCanceled {
		t.Errorf("outcome %s/%s, want skipped/canceled", res.Outcome, res.ErrorType)
	}
	if results != 0 {
		t.Errorf("a cancelled scheduled run reached OnResult (history, live view) %d times", results)
	}
	m := tel.Collect(t)
	if v, ok := testutil.Value(m["netpulse.probe.runs"], KeyOutcome.String(OutcomeSkipped), KeyErrorType.String(ErrCanceled)); !ok || v != 1 {
		t.Errorf("skipped/canceled runs: %v (present %v), want 1", v, ok)
	}
	for _, o := range []string{OutcomeFailure, OutcomeTimeout} {
		if _, ok := testutil.Value(m["netpulse.probe.runs"], KeyOutcome.String(o)); ok {
			t.Errorf("a cancelled run was counted as %s", o)
		}
	}
	if v, ok := testutil.Value(m["netpulse.probe.success"], attribute.String("target.name", "gw")); !ok || v != 1 {
		t.Errorf("netpulse.probe.success after a cancelled run: %v (present %v), want the last result (1) to stand", v, ok)
	}
}
