package history

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
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

// A batch collects results for BatchWait after its first and is then
// written as one commit: nothing is in the store before, all of it after.
// (At 1,000 results/s, a commit per queued result cost a third of the
// agent's CPU.)
func TestWriterBatchesForBatchWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := open(t, t.TempDir())
		defer s.Close()
		tel := testutil.NewTelemetry(t)
		w, err := NewWriter(s, Retention{MaxAge: 24 * time.Hour, MaxBytes: 1 << 30}, 10, tel.Meters, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); w.Run(ctx) }()
		tg := newTarget("wan", "ping", "gw")
		start := time.Now()
		stored := func() int {
			recs, _, err := s.Results(Query{Series: tg.Key, Since: start.Add(-time.Hour), Until: start.Add(time.Hour), Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			return len(recs)
		}
		for i := range 3 {
			w.Add(pingResult(tg, start.Add(time.Duration(i)*time.Millisecond), 0.01))
			time.Sleep(w.BatchWait / 4)
		}
		synctest.Wait()
		if n := stored(); n != 0 {
			t.Fatalf("%d results stored before the batch's wait ended, want 0", n)
		}
		time.Sleep(w.BatchWait)
		synctest.Wait()
		if n := stored(); n != 3 {
			t.Fatalf("%d results stored after the batch's wait, want 3 in one batch", n)
		}
		w.Add(pingResult(tg, start.Add(time.Second), 0.01))
		cancel() // shutting down writes what is queued at once
		<-done
		if n := stored(); n != 4 {
			t.Fatalf("%d results stored after shutdown, want 4", n)
		}
	})
}
