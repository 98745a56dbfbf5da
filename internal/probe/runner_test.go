package probe

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/testutil"
)

// proberFunc adapts a function to Prober: the harness is pure logic, so a
// stub prober is the right test double here (real probers have their own tests).
type proberFunc func(ctx context.Context, t *Target) (Values, error)

func (f proberFunc) Probe(ctx context.Context, t *Target) (Values, error) { return f(ctx, t) }

func newRunner(t *testing.T) (*Runner, *testutil.Telemetry, *bytes.Buffer) {
	tel := testutil.NewTelemetry(t)
	var logs bytes.Buffer
	r, err := NewRunner(tel.Meters, tel.Traces, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})), 0)
	if err != nil {
		t.Fatal(err)
	}
	return r, tel, &logs
}

var target = NewTarget(config.Probe{Name: "wan", Type: "ping"},
	config.Target{Name: "gw", Host: "192.0.2.1", Labels: map[string]string{"role": "gateway"}})

func TestRunOutcomes(t *testing.T) {
	cases := []struct {
		name        string
		probe       proberFunc
		outcome     string
		errType     string
		spanIsError bool
	}{
		{"success", func(context.Context, *Target) (Values, error) { return Values{"x": 1}, nil }, OutcomeSuccess, "", false},
		{"classified failure", func(context.Context, *Target) (Values, error) {
			return nil, Fail(ErrNoReply, errors.New("no reply to 3 packets"))
		}, OutcomeFailure, ErrNoReply, true},
		{"unclassified failure", func(context.Context, *Target) (Values, error) {
			return nil, errors.New("surprise")
		}, OutcomeFailure, ErrInternal, true},
		{"timeout", func(ctx context.Context, _ *Target) (Values, error) {
			<-ctx.Done()
			return nil, Fail(ErrNoReply, errors.New("gave up"))
		}, OutcomeTimeout, ErrTimeout, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, tel, _ := newRunner(t)
			var got Result
			r.OnResult = func(res Result) { got = res }
			res := r.Run(context.Background(), c.probe, target, 50*time.Millisecond)
			if res.Outcome != c.outcome || res.ErrorType != c.errType {
				t.Errorf("outcome %q/%q, want %q/%q", res.Outcome, res.ErrorType, c.outcome, c.errType)
			}
			if got.Outcome != res.Outcome || !got.TraceID.IsValid() {
				t.Errorf("OnResult got %+v", got)
			}
			spans := tel.Spans.Ended()
			if len(spans) != 1 || spans[0].Name() != "ping wan" {
				t.Fatalf("spans %v, want one named 'ping wan'", spans)
			}
			if isErr := spans[0].Status().Code == codes.Error; isErr != c.spanIsError {
				t.Errorf("span status %v", spans[0].Status())
			}
			m := tel.Collect(t)
			want := []attribute.KeyValue{KeyOutcome.String(c.outcome), KeyTargetName.String("gw"), attribute.String("role", "gateway")}
			if c.errType != "" {
				want = append(want, KeyErrorType.String(c.errType))
			}
			if n, ok := testutil.Value(m["netpulse.probe.runs"], want...); !ok || n != 1 {
				t.Errorf("runs counter %g (present %v) for %v", n, ok, want)
			}
			success, _ := testutil.Value(m["netpulse.probe.success"], KeyTargetName.String("gw"))
			if (success == 1) != (c.outcome == OutcomeSuccess) {
				t.Errorf("success gauge %g", success)
			}
			_, hasLast := testutil.Value(m["netpulse.probe.last_success.timestamp"], KeyTargetName.String("gw"))
			if hasLast != (c.outcome == OutcomeSuccess) {
				t.Errorf("last success timestamp present=%v", hasLast)
			}
		})
	}
}

func TestLastSuccessSurvivesFailure(t *testing.T) {
	r, tel, logs := newRunner(t)
	ok := proberFunc(func(context.Context, *Target) (Values, error) { return nil, nil })
	bad := proberFunc(func(context.Context, *Target) (Values, error) { return nil, Fail(ErrResolve, errors.New("nxdomain")) })
	first := r.Run(context.Background(), ok, target, time.Second)
	r.Run(context.Background(), bad, target, time.Second)
	r.Run(context.Background(), bad, target, time.Second)
	m := tel.Collect(t)
	ts, present := testutil.Value(m["netpulse.probe.last_success.timestamp"], KeyTargetName.String("gw"))
	if want := float64(first.Start.Add(first.Duration).UnixNano()) / 1e9; !present || ts != want {
		t.Errorf("last success %f (present %v), want %f from the first run", ts, present, want)
	}
	// Two failures in a row log one warning; recovery logs once.
	r.Run(context.Background(), ok, target, time.Second)
	if n := strings.Count(logs.String(), "probe failing"); n != 1 {
		t.Errorf("%d 'probe failing' lines, want 1:\n%s", n, logs)
	}
	if n := strings.Count(logs.String(), "probe recovered"); n != 1 {
		t.Errorf("%d 'probe recovered' lines, want 1:\n%s", n, logs)
	}
}

func TestSkippedCountsReason(t *testing.T) {
	r, tel, _ := newRunner(t)
	r.Skipped(context.Background(), target, "overdue", 3)
	n, ok := testutil.Value(tel.Collect(t)["netpulse.probe.runs"],
		KeyOutcome.String(OutcomeSkipped), KeyErrorType.String("overdue"))
	if !ok || n != 3 {
		t.Errorf("skipped runs %g (present %v), want 3", n, ok)
	}
}

func TestErrorTypeNeverUsesErrorText(t *testing.T) {
	ctx := context.Background()
	for _, err := range []error{errors.New("dial tcp 10.0.0.1: connection refused"), Fail("no_reply", errors.New("x"))} {
		if got := ErrorType(ctx, err); got != ErrInternal && got != ErrNoReply {
			t.Errorf("ErrorType(%v) = %q", err, got)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if got := ErrorType(cancelled, errors.New("read: use of closed connection")); got != ErrCanceled {
		t.Errorf("cancelled run: %q, want %q", got, ErrCanceled)
	}
}
