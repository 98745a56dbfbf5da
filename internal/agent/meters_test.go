package agent

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/netpulse/netpulse/internal/testutil"
)

// Callbacks registered through scoped meters, given when an observable
// instrument is created or registered later, stop reporting at Close,
// and a replacement's instruments of the same names continue the series
// (counters keep their totals): what a prober replaced by a reload needs.
func TestScopedMetersClose(t *testing.T) {
	tel := testutil.NewTelemetry(t)
	old := newScopedMeters(tel.Meters)
	m := old.Meter("test")
	attrs := metric.WithAttributes(attribute.String("who", "old"))
	if _, err := m.Int64ObservableGauge("inline", metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(1, attrs)
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	later, err := m.Float64ObservableGauge("later")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveFloat64(later, 2, attrs)
		return nil
	}, later); err != nil {
		t.Fatal(err)
	}
	runs, err := m.Int64Counter("runs")
	if err != nil {
		t.Fatal(err)
	}
	runs.Add(t.Context(), 3)
	got := tel.Collect(t)
	if v, ok := testutil.Value(got["inline"]); !ok || v != 1 {
		t.Fatalf("inline gauge before Close: %v %v", v, ok)
	}
	if v, ok := testutil.Value(got["later"]); !ok || v != 2 {
		t.Fatalf("registered gauge before Close: %v %v", v, ok)
	}

	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	next := newScopedMeters(tel.Meters).Meter("test")
	runs2, err := next.Int64Counter("runs")
	if err != nil {
		t.Fatal(err)
	}
	runs2.Add(t.Context(), 1)
	got = tel.Collect(t)
	for _, name := range []string{"inline", "later"} {
		if _, ok := testutil.Value(got[name]); ok {
			t.Errorf("%s still reported after Close", name)
		}
	}
	if v, _ := testutil.Value(got["runs"]); v != 4 {
		t.Errorf("counter after its replacement: %v, want 4 (3 + 1: continued, not reset)", v)
	}
}
