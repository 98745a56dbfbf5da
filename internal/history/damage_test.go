package history

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/testutil"
)

// healthyFile writes a history file big enough to have branch pages,
// overflow pages and nested buckets (results moved out of the log and
// rolled up, and results in the log), and returns its bytes.
func healthyFile(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	s := open(t, dir)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := range 40 {
		tg := newTarget("wan", "ping", fmt.Sprintf("t%02d", i))
		var batch []probe.Result
		for j := range 30 {
			batch = append(batch, pingResult(tg, t0.Add(time.Duration(j)*time.Second), 0.01),
				pingResult(tg, t0.Add(time.Hour+time.Duration(j)*time.Second), 0.01))
		}
		if err := s.Put(batch); err != nil {
			t.Fatal(err)
		}
		if i == 30 { // the first hour moves out of the log
			if _, err := s.Rollup(t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// usedBytes is the size of the pages a healthy file's newest meta counts.
func usedBytes(t *testing.T, content []byte) int {
	t.Helper()
	_, m := healthyChecker(t, content)
	return int(m.hwm) * int(m.pageSize)
}

// pagesInUse returns the pages a healthy file's newest meta reaches (a
// page not among them is free: changing it is no damage).
func pagesInUse(t *testing.T, content []byte) map[uint64]bool {
	t.Helper()
	c, m := healthyChecker(t, content)
	c.pageSize, c.hwm = int64(m.pageSize), m.hwm
	if err := c.tree(m.root, 0); err != nil {
		t.Fatal(err)
	}
	return c.seen
}

// healthyChecker opens a copy of a healthy file's content for the checker
// and returns its newest meta.
func healthyChecker(t *testing.T, content []byte) (*checker, meta) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, content, 0o640); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	c := &checker{f: f, size: int64(len(content)), seen: map[uint64]bool{}}
	m, err := c.newestMeta()
	if err != nil {
		t.Fatal(err)
	}
	return c, m
}

// openDamaged writes content as the history file of a new directory and
// opens it; the store must open, whatever the content.
func openDamaged(t *testing.T, content []byte) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), content, 0o640); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open of a damaged file: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

// requireReplaced checks that the damaged file was moved aside unchanged
// and that the fresh store works.
func requireReplaced(t *testing.T, s *Store, dir string, content []byte) {
	t.Helper()
	rec, ok := s.Recovered()
	if !ok {
		t.Fatal("the damaged file was not detected")
	}
	if dir := filepath.Dir(rec.MovedTo); dir != filepath.Dir(s.Path()) ||
		!strings.HasPrefix(filepath.Base(rec.MovedTo), FileName+".corrupt-") {
		t.Fatalf("moved to %s", rec.MovedTo)
	}
	if aside, err := os.ReadFile(rec.MovedTo); err != nil || !bytes.Equal(aside, content) {
		t.Fatalf("the damaged file is not kept as it was at %s (err %v)", rec.MovedTo, err)
	}
	if n := len(s.SeriesList()); n != 0 {
		t.Fatalf("fresh store has %d series", n)
	}
	tg := newTarget("wan", "ping", "gw")
	if err := s.Put([]probe.Result{pingResult(tg, time.Now(), 0.01)}); err != nil {
		t.Fatalf("fresh store: %v", err)
	}
}

func TestTruncatedFileIsReplaced(t *testing.T) {
	good := healthyFile(t)
	used := usedBytes(t, good) // bbolt grows the file ahead of its pages
	for _, size := range []int{used - 1, used / 2, 6000, 100} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			s, dir := openDamaged(t, good[:size])
			requireReplaced(t, s, dir, good[:size])
		})
	}
}

func TestDamagedPagesAreReplaced(t *testing.T) {
	good := healthyFile(t)
	ps := int(order.Uint32(good[pageHeaderSize+8:]))
	inUse := pagesInUse(t, good)
	cases := map[string]func(b []byte){
		"both meta pages": func(b []byte) {
			b[pageHeaderSize+20] ^= 0xff
			b[ps+pageHeaderSize+20] ^= 0xff
		},
		"a page header": func(b []byte) {
			for p := 2; p*ps < len(b); p++ { // the first branch or leaf page in use
				if f := order.Uint16(b[p*ps+8:]); inUse[uint64(p)] && (f == flagBranch || f == flagLeaf) {
					copy(b[p*ps:], []byte{0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff})
					return
				}
			}
			t.Fatal("no page to damage")
		},
		"every element of every page": func(b []byte) {
			for p := 2; p*ps < len(b); p++ {
				for i := p*ps + pageHeaderSize; i < p*ps+pageHeaderSize+64 && i < len(b); i++ {
					b[i] ^= 0x5a
				}
			}
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			b := bytes.Clone(good)
			damage(b)
			s, dir := openDamaged(t, b)
			requireReplaced(t, s, dir, b)
		})
	}
}

// TestFlippedBytesNeverPanic flips bytes all over the file: each variant
// must open, either replaced or (when the damage is inside a stored value)
// with every series still readable without a panic.
func TestFlippedBytesNeverPanic(t *testing.T) {
	good := healthyFile(t)
	step := len(good) / 401
	replaced := 0
	for off := 0; off < len(good); off += step {
		b := bytes.Clone(good)
		for i := off; i < off+8 && i < len(b); i++ {
			b[i] ^= 0xa5
		}
		s, _ := openDamaged(t, b)
		if _, ok := s.Recovered(); ok {
			replaced++
			continue
		}
		for _, sr := range s.SeriesList() {
			_, _, _ = s.Results(Query{Series: sr.Key, Limit: 1000})
		}
	}
	if replaced == 0 {
		t.Fatal("no damaged variant was detected")
	}
	t.Logf("%d of %d variants replaced", replaced, len(good)/step+1)
}

func TestDamagedFileIsLoggedAndCounted(t *testing.T) {
	good := healthyFile(t)
	s, _ := openDamaged(t, good[:len(good)/2])
	var logs bytes.Buffer
	tel := testutil.NewTelemetry(t)
	if _, err := NewWriter(s, Retention{}, 1, tel.Meters, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	if v, ok := testutil.Value(tel.Collect(t)["netpulse.history.corrupt"]); !ok || v != 1 {
		t.Fatalf("netpulse.history.corrupt = %v (present %v), want 1", v, ok)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), s.Path()) ||
		!strings.Contains(logs.String(), FileName+".corrupt-") {
		t.Fatalf("log does not name the file and where it went:\n%s", logs.String())
	}
}

func TestHealthyFileIsKept(t *testing.T) {
	good := healthyFile(t)
	s, _ := openDamaged(t, good)
	if _, ok := s.Recovered(); ok {
		t.Fatal("a healthy file was judged damaged")
	}
	if n := len(s.SeriesList()); n != 40 {
		t.Fatalf("%d series, want 40", n)
	}
}
