package history

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Recent raw results are appended to a log, not to their series' buckets.
//
// Why: a commit rewrites every page it touched. Writing each second's
// results into one bucket per series touched a leaf page (and its
// branches) of every target's bucket, so at 1,000 targets every commit
// rewrote over 1,000 pages (4 MB/s): history took 2.7 % of a core at
// 1,000 results/s (BenchmarkWrite1000Targets), most of it in commits. In
// the log, a second's results are neighbours: keyed by (start, series) in
// a bucket of their minute, filled to the brim (FillPercent 1: the keys
// arrive nearly in order), a commit writes a few dozen pages, and history
// takes 0.4 %.
//
// Once a minute, before the roll-up, the finished minutes of the log are
// moved into the series' buckets in one transaction (60 results per
// series at a time: a page or two each instead of 60 rewrites), and the
// minute's bucket is dropped. Results that start before the mark
// (keyLogMark in meta: where the log begins) go straight to their series'
// bucket, as all results did before the log: late results, and a clock
// that went back. So a series' raw results are in its bucket before the
// mark and in the log from it, and a read joins the two at the mark.
//
// A file written before the log has no mark: load sets it past the
// newest raw result, so those stay where they are.
//
// A read of one series in the log gets each of its results by key: the
// store keeps the starts of each series' logged results in memory
// (Store.logged: 8 bytes a result, about 1.5 MB at 1,000 targets), as
// scanning a minute's 60,000 keys for a target's 60 made the API's page
// of a target's last results 14 times slower than from its bucket.
var (
	bucketLog  = []byte("log")
	keyLogMark = []byte("log_mark")
)

// moveChunk bounds the results one transaction moves out of the log
// (whole minutes), so that a large log (a backfill) is moved in steps. A
// variable for tests.
var moveChunk = 200000

// logEntry is a logged result's series and start.
type logEntry struct {
	series uint64
	start  int64
}

// indexLogged adds entries, committed to the log, to s.logged. Called
// with s.mu held.
func (s *Store) indexLogged(entries []logEntry) {
	for _, e := range entries {
		starts := s.logged[e.series]
		if n := len(starts); n == 0 || starts[n-1] < e.start {
			s.logged[e.series] = append(starts, e.start) // the usual case
			continue
		}
		if i, found := slices.BinarySearch(starts, e.start); !found {
			s.logged[e.series] = slices.Insert(starts, i, e.start)
		}
	}
}

// unindexLogged drops the starts before the log's mark from s.logged.
// Called with s.mu held.
func (s *Store) unindexLogged() {
	for series, starts := range s.logged {
		i, _ := slices.BinarySearch(starts, s.logMark)
		switch {
		case i == len(starts):
			delete(s.logged, series)
		case i > 0:
			// A copy: readers that cloned the old slice are not disturbed,
			// and the moved part's memory is freed.
			s.logged[series] = slices.Clone(starts[i:])
		}
	}
}

// loadLogged reads the starts of the logged results. Called by load.
func (s *Store) loadLogged(tx *bolt.Tx) error {
	var entries []logEntry
	log := tx.Bucket(bucketLog)
	err := log.ForEach(func(minute, _ []byte) error {
		mb := log.Bucket(minute)
		if mb == nil {
			return fmt.Errorf("%w: log entry %x", errDamaged, minute)
		}
		return mb.ForEach(func(k, _ []byte) error {
			if len(k) != 16 {
				return fmt.Errorf("%w: log key %x", errDamaged, k)
			}
			entries = append(entries, logEntry{binary.BigEndian.Uint64(k[8:]), int64(binary.BigEndian.Uint64(k))})
			return nil
		})
	})
	s.indexLogged(entries)
	return err
}

// logKey is a logged result's key: start and series, big-endian.
func logKey(b []byte, start int64, series uint64) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(max(start, 0)))
	return binary.BigEndian.AppendUint64(b, series)
}

// loadLogMark reads the log's mark, setting it for a file written before
// the log: at the minute after its newest raw result, and not before a
// minute already rolled up (a result logged there would be moved after
// its minute's roll-up, and missed by it: the roll-up never goes past the
// mark, so a logged result is never in a minute rolled up). Called by
// load, after loadMarks.
func (s *Store) loadLogMark(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get(keyLogMark); v != nil {
		if len(v) != 8 {
			return fmt.Errorf("%w: log mark %x", errDamaged, v)
		}
		s.logMark = int64(binary.BigEndian.Uint64(v))
		return nil
	}
	newest := int64(-1)
	c := tx.Bucket(bucketResults).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v != nil {
			continue // not a series bucket
		}
		if b := tx.Bucket(bucketResults).Bucket(k); b != nil {
			if last, _ := b.Cursor().Last(); len(last) == 8 {
				newest = max(newest, int64(binary.BigEndian.Uint64(last)))
			}
		}
	}
	if newest >= 0 {
		s.logMark = floorTo(newest, time.Minute) + int64(time.Minute)
	}
	for _, m := range s.marks {
		s.logMark = max(s.logMark, m.minutes)
	}
	return meta.Put(keyLogMark, key8(s.logMark))
}

// txLogMark is the log's mark as tx sees it (readers do not hold s.mu
// while the writer may move the log).
func txLogMark(tx *bolt.Tx) int64 {
	if v := tx.Bucket(bucketMeta).Get(keyLogMark); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

// moveLog moves the log's minutes before until into the series' buckets
// and advances the mark to until. Called with s.mu held.
func (s *Store) moveLog(until int64) error {
	until = floorTo(until, time.Minute)
	for s.logMark < until {
		mark := s.logMark
		err := s.db.Update(func(tx *bolt.Tx) error {
			var err error
			mark, err = moveMinutes(tx, until, max(mark, 0))
			if err != nil {
				return err
			}
			return tx.Bucket(bucketMeta).Put(keyLogMark, key8(mark))
		})
		if err != nil {
			return fmt.Errorf("cannot move results out of the log in %s: %w", s.path, err)
		}
		s.logMark = mark
		s.unindexLogged()
	}
	return nil
}

// moveMinutes moves whole minutes of the log before until, at least one
// and up to about moveChunk results, and returns the new mark: until when
// no minute before it is left, else the end of the last minute moved.
func moveMinutes(tx *bolt.Tx, until, mark int64) (int64, error) {
	log, results := tx.Bucket(bucketLog), tx.Bucket(bucketResults)
	moved := 0
	c := log.Cursor()
	for k, v := c.First(); k != nil; k, v = c.First() {
		if len(k) != 8 || v != nil {
			return 0, fmt.Errorf("%w: log entry %x", errDamaged, k)
		}
		minute := int64(binary.BigEndian.Uint64(k))
		if minute >= until {
			break // a minute still running, or one in the future (a clock that jumped)
		}
		if moved >= moveChunk {
			return max(mark, minute), nil // everything before minute moved
		}
		// Grouped by series, each series' rows are appended one after
		// another (its last page stays at hand): 15 % cheaper than in the
		// log's order, which hops between 1,000 buckets.
		bySeries := map[uint64][][2][]byte{}
		err := log.Bucket(k).ForEach(func(k, v []byte) error {
			if len(k) != 16 {
				return fmt.Errorf("%w: log key %x", errDamaged, k)
			}
			sk := binary.BigEndian.Uint64(k[8:])
			bySeries[sk] = append(bySeries[sk], [2][]byte{k, v})
			return nil
		})
		if err != nil {
			return 0, err
		}
		for _, rows := range bySeries {
			// Put made the bucket with the series' first result; made here
			// too, a damaged file's log still moves.
			b, err := results.CreateBucketIfNotExists(rows[0][0][8:])
			if err != nil {
				return 0, err
			}
			b.FillPercent = 0.95 // appends in time order: fill pages
			for _, r := range rows {
				if err := b.Put(r[0][:8], r[1]); err != nil {
					return 0, err
				}
			}
			moved += len(rows)
		}
		if err := log.DeleteBucket(k); err != nil {
			return 0, err
		}
		mark = max(mark, minute+int64(time.Minute))
	}
	return max(mark, until), nil
}

// scanRaw calls f for each raw result of the series with a start in
// [lo, hi), in time order or reversed, until f returns false: from the
// series' bucket before the log's mark, from the log after it. logged are
// the series' starts in the log (Store.logged).
func scanRaw(tx *bolt.Tx, series uint64, logged []int64, lo, hi int64, desc bool, f func(k, v []byte) (bool, error)) error {
	mark := txLogMark(tx)
	stopped := false
	g := func(k, v []byte) (bool, error) {
		ok, err := f(k, v)
		stopped = !ok
		return ok, err
	}
	parts := [2]func() error{
		func() error {
			return scanBucket(tx.Bucket(bucketResults).Bucket(seriesKey(series)), lo, min(hi, mark), desc, g)
		},
		func() error { return scanLog(tx, series, logged, max(lo, mark), hi, desc, g) },
	}
	if desc {
		parts[0], parts[1] = parts[1], parts[0]
	}
	for _, p := range parts {
		if err := p(); err != nil || stopped {
			return err
		}
	}
	return nil
}

// scanLog calls f for each of the series' results in the log with a start
// in [lo, hi), in time order or reversed, until f returns false. logged
// are the starts to look for; one not in the log (a read that began
// before the log moved, or after the index was copied) is skipped. f gets
// the result's start alone as its key, as from a series' bucket.
func scanLog(tx *bolt.Tx, series uint64, logged []int64, lo, hi int64, desc bool, f func(k, v []byte) (bool, error)) error {
	if lo >= hi {
		return nil
	}
	i, _ := slices.BinarySearch(logged, lo)
	j, _ := slices.BinarySearch(logged, hi)
	log := tx.Bucket(bucketLog)
	var (
		minute = int64(-1)
		mb     *bolt.Bucket
		key    []byte
	)
	for n := range j - i {
		start := logged[i+n]
		if desc {
			start = logged[j-1-n]
		}
		if m := floorTo(start, time.Minute); m != minute {
			minute, mb = m, log.Bucket(key8(m))
		}
		if mb == nil {
			continue
		}
		key = logKey(key[:0], start, series)
		v := mb.Get(key)
		if v == nil {
			continue
		}
		if ok, err := f(key[:8], v); err != nil || !ok {
			return err
		}
	}
	return nil
}

// getLogged returns the logged result of the series that started at
// start, or nil.
func getLogged(tx *bolt.Tx, series uint64, start int64) []byte {
	mb := tx.Bucket(bucketLog).Bucket(key8(floorTo(start, time.Minute)))
	if mb == nil {
		return nil
	}
	return mb.Get(logKey(nil, start, series))
}

// scanBucket calls f for each entry of b (nil: none) whose key's first 8
// bytes, a big-endian time, are in [lo, hi), in order or reversed, until
// f returns false.
func scanBucket(b *bolt.Bucket, lo, hi int64, desc bool, f func(k, v []byte) (bool, error)) error {
	if b == nil || lo >= hi {
		return nil
	}
	lok, hik := key8(lo), key8(hi)
	c := b.Cursor()
	var k, v []byte
	if desc {
		k, v = seekBefore(c, hik)
	} else {
		k, v = c.Seek(lok)
	}
	for ; k != nil && bytes.Compare(k, lok) >= 0 && bytes.Compare(k, hik) < 0; k, v = stepKV(c, desc) {
		ok, err := f(k, v)
		if err != nil || !ok {
			return err
		}
	}
	return nil
}

// seekBefore moves c to the last key below limit.
func seekBefore(c *bolt.Cursor, limit []byte) ([]byte, []byte) {
	k, v := c.Seek(limit)
	if k == nil {
		return c.Last()
	}
	for k != nil && bytes.Compare(k, limit) >= 0 {
		k, v = c.Prev()
	}
	return k, v
}

func stepKV(c *bolt.Cursor, desc bool) ([]byte, []byte) {
	if desc {
		return c.Prev()
	}
	return c.Next()
}
