package history

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/testutil"
)

// On a failing store (a full disk; here a closed file) every batch fails:
// one line per failureLogEvery is logged, the next one says how many were
// held back, and every dropped result is still counted.
func TestWriteFailuresLogRateLimited(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	tel := testutil.NewTelemetry(t)
	var logs bytes.Buffer
	w, err := NewWriter(s, Retention{}, 1, tel.Meters, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	w.failures.now = func() time.Time { return now }
	if err := s.Close(); err != nil { // every Put now fails
		t.Fatal(err)
	}
	tg := newTarget("wan", "ping", "gw")
	batch := []probe.Result{pingResult(tg, now, 0.01)}
	for range 100 {
		w.write(batch)
	}
	lines := func() []string { return strings.Split(strings.TrimSpace(logs.String()), "\n") }
	if got := lines(); len(got) != 1 || !strings.Contains(got[0], "history write failed") {
		t.Fatalf("100 failures in the same instant logged %d lines, want 1:\n%s", len(got), logs.String())
	}
	now = now.Add(failureLogEvery)
	w.write(batch)
	if got := lines(); len(got) != 2 || !strings.Contains(got[1], "failures_not_logged=99") {
		t.Fatalf("after %s, want a second line reporting 99 held back:\n%s", failureLogEvery, logs.String())
	}
	w.write(batch) // held back again
	w.store = open(t, t.TempDir())
	defer w.store.Close()
	w.write(batch)
	if got := lines(); len(got) != 3 || !strings.Contains(got[2], "work again") ||
		!strings.Contains(got[2], "failures_not_logged=1") {
		t.Fatalf("want a line when writes work again:\n%s", logs.String())
	}
	m := tel.Collect(t)["netpulse.history.dropped"]
	if v, _ := testutil.Value(m, attribute.String("reason", "write_error")); v != 102 {
		t.Errorf("dropped{reason=write_error} = %v, want 102", v)
	}
}
