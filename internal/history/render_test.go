package history

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/probe"
)

// TestErrorTextIsWhatTheStoreKeeps: a live view (ErrorText) and the stored
// record show the same error text, bounded.
func TestErrorTextIsWhatTheStoreKeeps(t *testing.T) {
	if got := ErrorText(nil); got != "" {
		t.Errorf("ErrorText(nil) = %q", got)
	}
	s := open(t, t.TempDir())
	defer s.Close()
	tg := newTarget("wan", "ping", "gw")
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for _, err := range []error{errors.New("short"), errors.New(strings.Repeat("long error ", 200))} {
		res := probe.Result{Target: tg, Start: start, Duration: time.Second, Outcome: probe.OutcomeFailure,
			ErrorType: probe.ErrNetwork, Err: err, RunID: probe.NewRunID(tg, start)}
		if err := s.Put([]probe.Result{res}); err != nil {
			t.Fatal(err)
		}
		rec, ok, gerr := s.Get(res.RunID)
		if gerr != nil || !ok {
			t.Fatalf("get: %v %v", ok, gerr)
		}
		if text := ErrorText(err); rec.Error != text || len(text) > maxErrorText+len("…") {
			t.Errorf("stored %q (%d bytes), ErrorText %q (%d bytes)", rec.Error[:min(len(rec.Error), 40)], len(rec.Error),
				text[:min(len(text), 40)], len(text))
		}
		start = start.Add(time.Second)
	}
}
