package history

import (
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/netpulse/netpulse/internal/probe"
)

// Outages are rewritten in place as they grow, read back newest first by
// overlap with a window, survive reopening, and are trimmed by age once
// closed.
func TestOutages(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	old := Outage{Probe: "p", Target: "a", Domain: "isp", Start: t0, End: t0.Add(time.Hour), LastFailure: t0.Add(59 * time.Minute)}
	open := Outage{Probe: "p", Target: "b", Domain: "gateway", Start: t0.Add(2 * time.Hour), LastFailure: t0.Add(2 * time.Hour)}
	domain := Outage{Domain: "gateway", Start: t0.Add(2 * time.Hour), LastFailure: t0.Add(2 * time.Hour)}
	if err := s.PutOutages([]Outage{old, open, domain}); err != nil {
		t.Fatal(err)
	}
	open.LastFailure = open.LastFailure.Add(time.Minute) // grows: same key
	if err := s.PutOutages([]Outage{open}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	read := func(since, until time.Time) []Outage {
		var out []Outage
		if err := s.Outages(since, until, func(o Outage) bool { out = append(out, o); return true }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := read(t0.Add(-time.Hour), t0.Add(3*time.Hour)); len(got) != 3 || !got[2].Start.Equal(t0) || !got[0].Start.Equal(open.Start) {
		t.Errorf("outages %+v, want 3, newest first", got)
	}
	// An outage that started before the window and ended in it overlaps.
	if got := read(t0.Add(30*time.Minute), t0.Add(90*time.Minute)); len(got) != 1 || got[0].Target != "a" {
		t.Errorf("window inside the first outage: %+v", got)
	}
	// An open outage overlaps every window after its start.
	if got := read(t0.Add(5*time.Hour), t0.Add(6*time.Hour)); len(got) != 2 {
		t.Errorf("later window: %+v, want the two open outages", got)
	}
	got, err := s.OpenOutages()
	if err != nil || len(got) != 2 {
		t.Fatalf("open outages %+v, %v", got, err)
	}
	for _, o := range got {
		if o.Target == "b" && !o.LastFailure.Equal(open.LastFailure) {
			t.Errorf("rewritten outage %+v, want last failure %v", o, open.LastFailure)
		}
	}
	if n, err := s.trimOutages(t0.Add(3 * time.Hour)); err != nil || n != 1 {
		t.Errorf("trim: %d, %v; want the closed one deleted", n, err)
	}
	if got := read(time.Time{}, t0.Add(6*time.Hour)); len(got) != 2 {
		t.Errorf("after trim: %+v, want the open ones", got)
	}
}

// A run's evidence is read back by run id, kind by kind, bounded in size,
// and trimmed with the run's age.
func TestEvidence(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	run, other := probe.RunID{Series: 7, Start: t0.UnixNano()}, probe.RunID{Series: 7, Start: t0.Add(time.Hour).UnixNano()}
	if err := s.PutEvidence(run, "path_snapshot", map[string]int{"loss_from_hop": 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutEvidence(other, "path_snapshot", map[string]int{"loss_from_hop": 0}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutEvidence(run, "huge", strings.Repeat("x", maxEvidence)); err == nil {
		t.Error("evidence over 64 KiB was kept")
	}
	ev, err := s.Evidence(run)
	if err != nil || len(ev) != 1 || string(ev["path_snapshot"]) != `{"loss_from_hop":3}` {
		t.Errorf("evidence %s, %v", ev, err)
	}
	if ev, _ := s.Evidence(probe.RunID{Series: 7, Start: t0.UnixNano() + 1}); ev != nil {
		t.Errorf("another run's evidence: %s", ev)
	}
	if n, err := s.trimEvidence(t0.Add(time.Minute)); err != nil || n != 1 {
		t.Errorf("trim: %d, %v; want the older run's", n, err)
	}
	if ev, _ := s.Evidence(run); ev != nil {
		t.Errorf("trimmed evidence still there: %s", ev)
	}
	if ev, _ := s.Evidence(other); len(ev) != 1 {
		t.Errorf("the later run's evidence went too: %s", ev)
	}
}

// evidenceInFile counts the pieces of evidence in the file (not pending).
func evidenceInFile(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	if err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketEvidence).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// Evidence is written with the next batch of results (one commit), is
// read at once before that, is written by Close, and past
// maxPendingEvidence pieces is written without waiting for results.
func TestEvidenceIsWrittenWithResults(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	tg := newTarget("wan", "ping", "gw")
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	res := pingResult(tg, t0, 0.01)
	if err := s.PutEvidence(res.RunID, "echoes", []int{1}); err != nil {
		t.Fatal(err)
	}
	if ev, err := s.Evidence(res.RunID); err != nil || string(ev["echoes"]) != "[1]" {
		t.Fatalf("pending evidence read as %s, %v", ev, err)
	}
	if n := evidenceInFile(t, s); n != 0 {
		t.Fatalf("%d pieces in the file before any results were written, want 0", n)
	}
	if err := s.Put([]probe.Result{res}); err != nil {
		t.Fatal(err)
	}
	if n := evidenceInFile(t, s); n != 1 || len(s.takeEvidence()) != 0 {
		t.Fatalf("after Put: %d pieces in the file (want 1), %d pending (want 0)", n, len(s.takeEvidence()))
	}
	if err := s.PutEvidence(res.RunID, "echoes", []int{2}); err != nil { // replaces
		t.Fatal(err)
	}
	if ev, _ := s.Evidence(res.RunID); string(ev["echoes"]) != "[2]" {
		t.Fatalf("a pending piece does not replace the file's: %s", ev)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	if ev, _ := s.Evidence(res.RunID); string(ev["echoes"]) != "[2]" {
		t.Fatalf("after Close and Open: %s, want the pending piece written", ev)
	}
	for i := range maxPendingEvidence {
		if err := s.PutEvidence(probe.RunID{Series: 9, Start: int64(i)}, "echoes", i); err != nil {
			t.Fatal(err)
		}
	}
	if n := evidenceInFile(t, s); n != 1+maxPendingEvidence {
		t.Fatalf("%d pieces in the file after %d pending, want all written", n, maxPendingEvidence)
	}
}
