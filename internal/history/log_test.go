package history

import (
	"compress/gzip"
	"encoding/binary"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/netpulse/netpulse/internal/probe"
)

// allResults pages through a series' raw results in [since, until) as
// the API does (limit rows at a time), in time order or newest first, and
// returns them in time order.
func allResults(t *testing.T, s *Store, series uint64, since, until time.Time, desc bool) []Record {
	t.Helper()
	q := Query{Series: series, Since: since, Until: until, Limit: 70, Desc: desc}
	var got []Record
	for {
		recs, more, err := s.Results(q)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, recs...)
		if !more {
			break
		}
		if desc {
			q.Until = recs[len(recs)-1].Start
		} else {
			q.Since = recs[len(recs)-1].Start.Add(time.Nanosecond)
		}
	}
	if desc {
		slices.Reverse(got)
	}
	for i := 1; i < len(got); i++ {
		if !got[i-1].Start.Before(got[i].Start) {
			t.Fatalf("desc=%v: out of order at %d: %s then %s", desc, i, got[i-1].Start, got[i].Start)
		}
	}
	return got
}

// logMinutes lists the minutes the log holds.
func logMinutes(t *testing.T, s *Store) []time.Time {
	t.Helper()
	var out []time.Time
	if err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLog).ForEach(func(k, _ []byte) error {
			out = append(out, time.Unix(0, int64(binary.BigEndian.Uint64(k))).UTC())
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// Results are read the same wherever they are: in the log, moved into
// their series' buckets, or both (a read across the mark), in both
// orders and page by page; runs are found by id; a late result (before
// the mark) is kept and rolled up; everything survives reopening.
func TestLogIsReadTheSameBeforeAndAfterItMoves(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	s.SetSpecs(pingSpec)
	a, b := newTarget("wan", "ping", "a"), newTarget("wan", "ping", "b")
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	var batch []probe.Result
	for i := range 180 { // three minutes, both targets, every 7th failed
		for k, tg := range []*probe.Target{a, b} {
			res := pingResult(tg, t0.Add(time.Duration(i)*time.Second+time.Duration(k)*time.Millisecond), float64(i)/1000)
			if i%7 == 0 {
				res.Outcome, res.ErrorType = probe.OutcomeFailure, probe.ErrNoReply
			}
			batch = append(batch, res)
		}
	}
	if err := s.Put(batch); err != nil {
		t.Fatal(err)
	}
	if got := logMinutes(t, s); len(got) != 3 || !got[0].Equal(t0) {
		t.Fatalf("log minutes %v, want the 3 from %s", got, t0)
	}
	end := t0.Add(time.Hour)
	type answer struct {
		asc, desc []Record
		agg       []Bucket
		last      Record
		success   time.Time
		run       Record
	}
	read := func() answer {
		var ans answer
		ans.asc, ans.desc = allResults(t, s, a.Key, t0, end, false), allResults(t, s, a.Key, t0, end, true)
		var err error
		if ans.agg, err = s.Aggregate(a.Key, t0, end, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		var ok bool
		if ans.last, ok, err = s.Last(a.Key); err != nil || !ok {
			t.Fatalf("Last: %v %v", ok, err)
		}
		if ans.success, err = s.LastSuccess(a.Key, 100); err != nil {
			t.Fatal(err)
		}
		if ans.run, ok, err = s.Get(probe.NewRunID(a, t0.Add(90*time.Second))); err != nil || !ok {
			t.Fatalf("Get: %v %v", ok, err)
		}
		return ans
	}
	inLog := read()
	if len(inLog.asc) != 180 || len(inLog.desc) != 180 || inLog.asc[0].Target != "a" || len(inLog.agg) != 6 || inLog.agg[0].Runs != 30 ||
		!inLog.last.Start.Equal(t0.Add(179*time.Second)) || inLog.run.Values["rtt_avg_seconds"] != 0.09 ||
		!inLog.success.Equal(t0.Add(179*time.Second).Add(2500*time.Millisecond)) {
		t.Fatalf("from the log: %d ascending, %d descending, %d buckets, last %s, last success %s, run %+v",
			len(inLog.asc), len(inLog.desc), len(inLog.agg), inLog.last.Start, inLog.success, inLog.run)
	}
	if err := s.Close(); err != nil { // the log survives a restart
		t.Fatal(err)
	}
	s = open(t, dir)
	defer func() { s.Close() }()
	s.SetSpecs(pingSpec)
	same := func(when string, got answer) {
		t.Helper()
		for i, r := range [][]Record{got.asc, got.desc} {
			if len(r) != len(inLog.asc) {
				t.Fatalf("%s: %d results (order %d), want %d", when, len(r), i, len(inLog.asc))
			}
			for j := range r {
				w := inLog.asc[j]
				if r[j].RunID != w.RunID || !r[j].Start.Equal(w.Start) || r[j].Outcome != w.Outcome || r[j].Values["rtt_avg_seconds"] != w.Values["rtt_avg_seconds"] {
					t.Fatalf("%s: result %d is %+v, want %+v", when, j, r[j], w)
				}
			}
		}
		if !slices.EqualFunc(got.agg, inLog.agg, func(x, y Bucket) bool {
			return x.Start.Equal(y.Start) && x.Runs == y.Runs && x.Failures == y.Failures && x.Values["rtt_avg_seconds"] == y.Values["rtt_avg_seconds"]
		}) || got.last.RunID != inLog.last.RunID || !got.success.Equal(inLog.success) || got.run.RunID != inLog.run.RunID {
			t.Fatalf("%s: answers differ from the log's", when)
		}
	}
	same("after reopening", read())
	// At t0+3m, with the roll-up's lag, minutes 0 and 1 move.
	if _, err := s.Rollup(t0.Add(3 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := logMinutes(t, s); len(got) != 1 || !got[0].Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("log minutes after the move %v, want only %s", got, t0.Add(2*time.Minute))
	}
	same("across the mark", read())
	if _, err := s.Rollup(t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := logMinutes(t, s); len(got) != 0 {
		t.Fatalf("log minutes %v after all moved", got)
	}
	same("all moved", read())

	// A run recorded after its minute moved goes to its series' bucket
	// and its minute is rolled up again.
	late := pingResult(a, t0.Add(30*time.Second+500*time.Millisecond), 7)
	if err := s.Put([]probe.Result{late}); err != nil {
		t.Fatal(err)
	}
	if got := logMinutes(t, s); len(got) != 0 {
		t.Fatalf("a late result went to the log: %v", got)
	}
	if rec, ok, err := s.Get(late.RunID); err != nil || !ok || rec.Values["rtt_avg_seconds"] != 7 {
		t.Fatalf("late run: %+v %v %v", rec, ok, err)
	}
	if _, err := s.Rollup(t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	mins, err := s.Aggregate(a.Key, t0, end, time.Minute)
	if err != nil || len(mins) != 3 || mins[0].Runs != 61 || !near(mins[0].Values["rtt_max_seconds"].Max, 8.4, 1e-6) {
		t.Fatalf("minute summaries after the late run: %+v, %v", mins, err)
	}
}

// A history file written by netpulse before the log (main at 2ea7f14:
// raw results in series' buckets, roll-ups to 11:49, evidence, an
// outage) opens, reads as it did, takes new results (into the log, from
// the minute after its newest) and late ones (into the series' bucket),
// and moves and rolls them up.
//
// The fixture was written by that version's code: two ping targets (gw,
// dns) of probe wan, a result every 10 s from 2026-11-20T10:00Z for two
// hours (dns 1 ms after gw), rtt_avg 1 ms × (1 + i mod 50) (i: the
// result's index), every 17th a failure (values loss_ratio,
// packets_sent, packets_received only); gw's result 100 on demand with
// one log line; evidence "echoes" of gw's run at 10:00:50; one outage of
// gw at 11:00–11:01; Rollup at 11:50 with the ping spec (pingSpec).
func TestFileFromBeforeTheLogReads(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Open(filepath.Join("testdata", "history-main-2ea7f14.db.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	content, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), content, 0o640); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir)
	defer func() { s.Close() }()
	if rec, damaged := s.Recovered(); damaged {
		t.Fatalf("the old file was judged damaged: %v", rec.Reason)
	}
	s.SetSpecs(pingSpec)
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	gw, dns := newTarget("wan", "ping", "gw"), newTarget("wan", "ping", "dns")
	if want := t0.Add(2 * time.Hour).UnixNano(); s.logMark != want {
		t.Errorf("log mark %s, want %s (the minute after the newest result)", time.Unix(0, s.logMark).UTC(), time.Unix(0, want).UTC())
	}
	const newRTT = 0.0055 // no result of the file has it
	// extra results were added, late of them in the second hour.
	check := func(when string, tg *probe.Target, extra, late int) {
		t.Helper()
		var recs []Record
		all := allResults(t, s, tg.Key, t0, t0.Add(3*time.Hour), false)
		for _, r := range all {
			if r.Values["rtt_avg_seconds"] != newRTT {
				recs = append(recs, r)
			}
		}
		if len(recs) != 720 || len(all) != 720+extra {
			t.Fatalf("%s: %s has %d results, %d of them the file's; want %d, 720", when, tg.Name, len(all), len(recs), 720+extra)
		}
		for i, r := range recs {
			wantStart := t0.Add(time.Duration(i) * 10 * time.Second)
			if tg == dns {
				wantStart = wantStart.Add(time.Millisecond)
			}
			failed := i%17 == 0
			rtt, hasRTT := r.Values["rtt_avg_seconds"]
			if !r.Start.Equal(wantStart) || (r.Outcome == probe.OutcomeFailure) != failed || hasRTT == failed ||
				(!failed && math.Abs(rtt-0.001*float64(1+i%50)) > 1e-12) || r.Rollup != nil {
				t.Fatalf("%s: %s result %d: %+v", when, tg.Name, i, r)
			}
		}
		hours, err := s.Aggregate(tg.Key, t0, t0.Add(2*time.Hour), time.Hour)
		if err != nil || len(hours) != 2 || hours[0].Runs != 360 || hours[1].Runs != 360+late || hours[0].Failures != 22 {
			t.Fatalf("%s: hours of %s: %+v, %v", when, tg.Name, hours, err)
		}
	}
	check("as written", gw, 0, 0)
	check("as written", dns, 0, 0)
	run := probe.NewRunID(gw, t0.Add(1000*time.Second))
	rec, ok, err := s.Get(run)
	if err != nil || !ok || !rec.OnDemand || len(rec.Logs) != 1 || rec.Logs[0].Message != "burst done" {
		t.Fatalf("on-demand run: %+v %v %v", rec, ok, err)
	}
	if cfg, err := s.Config(rec.ConfigKey); err != nil || cfg.(map[string]any)["name"] != "wan" {
		t.Errorf("config: %#v, %v", cfg, err)
	}
	if ev, err := s.Evidence(probe.NewRunID(gw, t0.Add(50*time.Second))); err != nil || string(ev["echoes"]) != `[{"fate":"lost","seq":0}]` {
		t.Errorf("evidence: %s, %v", ev, err)
	}
	var outages []Outage
	if err := s.Outages(t0, t0.Add(3*time.Hour), func(o Outage) bool { outages = append(outages, o); return true }); err != nil || len(outages) != 1 || outages[0].Target != "gw" {
		t.Errorf("outages: %+v, %v", outages, err)
	}

	// New results: three minutes from 12:00 (into the log), and a late one
	// at 11:55 (into gw's bucket).
	var batch []probe.Result
	for i := range 180 {
		batch = append(batch, pingResult(gw, t0.Add(2*time.Hour+time.Duration(i)*time.Second), newRTT))
	}
	late := pingResult(gw, t0.Add(115*time.Minute+500*time.Millisecond), newRTT)
	if err := s.Put(append(batch, late)); err != nil {
		t.Fatal(err)
	}
	if got := logMinutes(t, s); len(got) != 3 || !got[0].Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("log minutes %v, want the 3 from 12:00", got)
	}
	check("with new results", gw, 181, 1)
	for more := true; more; {
		if more, err = s.Rollup(t0.Add(2*time.Hour + 3*time.Minute + RollupLag)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	s.SetSpecs(pingSpec)
	check("moved and reopened", gw, 181, 1)
	check("moved and reopened", dns, 0, 0)
	mins, err := s.Aggregate(gw.Key, t0.Add(115*time.Minute), t0.Add(2*time.Hour+3*time.Minute), time.Minute)
	if err != nil || len(mins) != 8 || mins[0].Runs != 7 || mins[1].Runs != 6 || mins[5].Runs != 60 || mins[7].Runs != 60 {
		t.Fatalf("minutes 11:55–12:03: %+v, %v", mins, err)
	}
	if rec, ok, err := s.Get(batch[100].RunID); err != nil || !ok || rec.Values["rtt_avg_seconds"] != newRTT {
		t.Fatalf("a moved run: %+v %v %v", rec, ok, err)
	}
	if _, ok, err := s.Get(probe.RunID{Series: gw.Key, Start: t0.Add(2*time.Hour).UnixNano() + 1}); ok || err != nil {
		t.Fatalf("a run that never was: found=%v, %v", ok, err)
	}
}

// A file from before the log whose roll-ups went past its newest result
// (its targets stopped, the agent did not) gets its log's mark at the
// roll-ups' mark: a result that arrives for a minute already rolled up
// goes to its series' bucket and has its minute rolled up again.
func TestOldFileLogMarkIsNotBeforeItsRollups(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	s.SetSpecs(pingSpec)
	tg := newTarget("wan", "ping", "gw")
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	if err := s.Put([]probe.Result{pingResult(tg, t0, 0.01)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rollup(t0.Add(time.Hour)); err != nil { // rolled up to 10:59
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Without its mark, the file is as a netpulse before the log left it.
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o640, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketMeta).Delete(keyLogMark); err != nil {
			return err
		}
		return tx.DeleteBucket(bucketLog)
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	s.SetSpecs(pingSpec)
	if want := t0.Add(59 * time.Minute).UnixNano(); s.logMark != want {
		t.Fatalf("log mark %s, want the roll-ups' %s", time.Unix(0, s.logMark).UTC(), time.Unix(0, want).UTC())
	}
	late := pingResult(tg, t0.Add(30*time.Minute), 0.02)
	if err := s.Put([]probe.Result{late}); err != nil {
		t.Fatal(err)
	}
	if got := logMinutes(t, s); len(got) != 0 {
		t.Fatalf("a result in a rolled-up minute went to the log: %v", got)
	}
	if _, err := s.Rollup(t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	mins, err := s.Aggregate(tg.Key, t0, t0.Add(time.Hour), time.Minute)
	if err != nil || len(mins) != 2 || !mins[1].Start.Equal(late.Start) || mins[1].Runs != 1 {
		t.Fatalf("minute summaries %+v, %v; want 10:00 and the late 10:30", mins, err)
	}
}

// Results logged out of order, or twice (the same run id), are read once
// each and in order, from the log and after reopening.
func TestLogReadsResultsRecordedOutOfOrder(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	tg := newTarget("wan", "ping", "gw")
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	var first, second []probe.Result
	for i := range 90 { // every other second, newest first, then the rest
		res := pingResult(tg, t0.Add(time.Duration(179-2*i)*time.Second), 0.01)
		first = append(first, res)
		second = append(second, pingResult(tg, t0.Add(time.Duration(2*i)*time.Second), 0.01))
	}
	for _, batch := range [][]probe.Result{first, second, second[:10]} {
		if err := s.Put(batch); err != nil {
			t.Fatal(err)
		}
	}
	for pass := range 2 {
		for _, desc := range []bool{false, true} {
			got := allResults(t, s, tg.Key, t0, t0.Add(time.Hour), desc) // checks the order
			if len(got) != 180 || !got[0].Start.Equal(t0) || !got[179].Start.Equal(t0.Add(179*time.Second)) {
				t.Fatalf("pass %d, desc=%v: %d results from %s to %s, want 180 from %s", pass, desc, len(got), got[0].Start, got[len(got)-1].Start, t0)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = open(t, dir)
	}
	s.Close()
}

// A log larger than moveChunk moves in several transactions, a minute or
// more each, with the mark after each: nothing is lost or read twice.
func TestLogMovesInChunks(t *testing.T) {
	defer func(c int) { moveChunk = c }(moveChunk)
	moveChunk = 100 // a minute of two targets is 120 results
	s := open(t, t.TempDir())
	defer s.Close()
	s.SetSpecs(pingSpec)
	a, b := newTarget("wan", "ping", "a"), newTarget("wan", "ping", "b")
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	var batch []probe.Result
	for i := range 300 {
		batch = append(batch, pingResult(a, t0.Add(time.Duration(i)*time.Second), 0.01),
			pingResult(b, t0.Add(time.Duration(i)*time.Second+time.Millisecond), 0.01))
	}
	if err := s.Put(batch); err != nil {
		t.Fatal(err)
	}
	// One step moves the first minute (120 results, past the chunk).
	var mark int64
	if err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		if mark, err = moveMinutes(tx, t0.Add(5*time.Minute).UnixNano(), s.logMark); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyLogMark, key8(mark))
	}); err != nil {
		t.Fatal(err)
	}
	if got := logMinutes(t, s); mark != t0.Add(time.Minute).UnixNano() || len(got) != 4 {
		t.Fatalf("one step: mark %s, log minutes %v; want 10:01, 4 left", time.Unix(0, mark).UTC(), got)
	}
	s.logMark = mark // as moveLog does after the step's commit
	s.unindexLogged()
	if got := allResults(t, s, a.Key, t0, t0.Add(time.Hour), false); len(got) != 300 {
		t.Fatalf("after one step: %d results, want 300", len(got))
	}
	if _, err := s.Rollup(t0.Add(5*time.Minute + RollupLag)); err != nil {
		t.Fatal(err)
	}
	if got := logMinutes(t, s); len(got) != 0 || s.logMark != t0.Add(5*time.Minute).UnixNano() {
		t.Fatalf("log minutes %v left, mark %s; want none, 10:05", got, time.Unix(0, s.logMark).UTC())
	}
	for _, tg := range []*probe.Target{a, b} {
		if got := allResults(t, s, tg.Key, t0, t0.Add(time.Hour), false); len(got) != 300 {
			t.Errorf("%s: %d results, want 300", tg.Name, len(got))
		}
		if mins, err := s.Aggregate(tg.Key, t0, t0.Add(time.Hour), time.Minute); err != nil || len(mins) != 5 || mins[4].Runs != 60 {
			t.Errorf("%s: minute summaries %+v, %v", tg.Name, mins, err)
		}
	}
	// A result from the future (a clock that jumped) stays in the log, and
	// the mark moves only to the roll-up's minute.
	future := pingResult(a, t0.Add(24*time.Hour), 0.01)
	if err := s.Put([]probe.Result{future}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rollup(t0.Add(7*time.Minute + RollupLag)); err != nil {
		t.Fatal(err)
	}
	if got := logMinutes(t, s); len(got) != 1 || !got[0].Equal(future.Start) || s.logMark != t0.Add(7*time.Minute).UnixNano() {
		t.Fatalf("log minutes %v, mark %s; want the future one, 10:07", got, time.Unix(0, s.logMark).UTC())
	}
	if last, ok, err := s.Last(a.Key); err != nil || !ok || !last.Start.Equal(future.Start) {
		t.Fatalf("last %+v %v %v, want the future one", last, ok, err)
	}
}
