package history

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Roll-ups keep a fleet's history bounded: raw results are kept for a
// short time (storage.raw_retention), per-minute summaries longer
// (storage.minute_retention) and per-hour summaries for the rest
// (storage.retention). Summaries are written continuously, a minute after
// the minute ends, so that queries of long windows read them even where
// raw results still exist: a 30-day chart reads 720 hour summaries, not
// 2.6 million rows.
//
// Each series has two marks, kept in the marks bucket: the end of the
// last minute rolled up (raw results before it have their minute summary)
// and the end of the last hour rolled up (minute summaries before it have
// their hour summary). A result that arrives for a minute already rolled
// up marks that minute (and its hour) to be rolled up again.

// level is one resolution of stored data.
type level int

const (
	levelRaw level = iota
	levelMinute
	levelHour
)

var (
	bucketMinutes = []byte("rollup_minutes")
	bucketHours   = []byte("rollup_hours")
	bucketMarks   = []byte("rollup_marks")
)

func (l level) period() time.Duration {
	switch l {
	case levelMinute:
		return time.Minute
	case levelHour:
		return time.Hour
	}
	return 0
}

func (l level) root() []byte {
	switch l {
	case levelMinute:
		return bucketMinutes
	case levelHour:
		return bucketHours
	}
	return bucketResults
}

func (l level) String() string { return [...]string{"raw", "minute", "hour"}[l] }

// marks are a series' roll-up progress, in Unix nanoseconds (0: nothing
// rolled up yet).
type marks struct{ minutes, hours int64 }

func floorTo(ns int64, d time.Duration) int64 {
	if ns <= 0 {
		return 0
	}
	return ns - ns%int64(d)
}

func key8(ns int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(max(ns, 0))) }

// loadMarks reads every series' marks. Called by load.
func (s *Store) loadMarks(tx *bolt.Tx) error {
	return tx.Bucket(bucketMarks).ForEach(func(k, v []byte) error {
		if len(k) != 8 || len(v) != 16 {
			return fmt.Errorf("%w: roll-up mark %x", errDamaged, k)
		}
		s.marks[binary.BigEndian.Uint64(k)] = marks{int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:]))}
		return nil
	})
}

// SetSpecs says what roll-ups keep of each probe type's values (a type
// not listed keeps every value and no distribution). Call before the
// first Rollup.
func (s *Store) SetSpecs(specs map[string]Spec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.specs = specs
}

// spec resolves the series type's Spec to name ids: the distribution
// value's id (-1: none) and the filter of kept values. Called with s.mu
// held.
func (s *Store) spec(typ string) (int64, func(uint32) bool) {
	sp, ok := s.specs[typ]
	if !ok {
		return -1, func(uint32) bool { return true }
	}
	dist := int64(-1)
	if id, ok := s.names[sp.Distribution]; ok && sp.Distribution != "" {
		dist = int64(id)
	}
	if sp.Values == nil {
		return dist, func(uint32) bool { return true }
	}
	keep := make([]bool, len(s.byID))
	for _, name := range append(sp.Values, sp.Distribution) {
		if id, ok := s.names[name]; ok {
			keep[id] = true
		}
	}
	return dist, func(id uint32) bool { return int(id) < len(keep) && keep[id] }
}

// rollupBudget bounds the raw rows one Rollup call reads, so catching up
// on a large history (an old file, a long stop) never holds the write
// lock for long: the writer calls again while there is more.
const rollupBudget = 200000

// RollupLag is how long after a minute ends it is moved out of the log
// and rolled up: most runs that started in it have been recorded by then
// (a later one goes to its series' bucket and has its minute rolled up
// again).
const RollupLag = time.Minute

// Rollup writes the summaries of the minutes that ended at least
// RollupLag before now, of the hours those complete, and again of periods
// that got late results. It reads at most about rollupBudget raw rows and
// reports whether work is left.
func (s *Store) Rollup(now time.Time) (more bool, err error) {
	until := floorTo(now.Add(-RollupLag).UnixNano(), time.Minute)
	s.mu.Lock()
	defer s.mu.Unlock()
	// The minutes rolled up must be in the series' buckets: move them out
	// of the log first (log.go).
	if err := s.moveLog(until); err != nil {
		return false, err
	}
	until = min(until, s.logMark)
	// All series in one transaction (one commit, one fsync: a commit per
	// series made 1,000 a minute at 1,000 targets, most of the roll-up's
	// cost), up to the budget.
	budget := rollupBudget
	type progress struct {
		series uint64
		next   marks
	}
	var done []progress
	err = s.db.Update(func(tx *bolt.Tx) error {
		done = done[:0]
		for _, sr := range s.series {
			if budget <= 0 {
				more = true
				return nil
			}
			next, n, err := s.rollupSeries(tx, sr, until, budget)
			budget -= n
			if err != nil {
				return err
			}
			done = append(done, progress{sr.Key, next})
		}
		more = budget <= 0
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("cannot roll up history in %s: %w", s.path, err)
	}
	for _, p := range done {
		s.marks[p.series] = p.next
		delete(s.dirty, p.series)
	}
	return more, nil
}

// rollupSeries rolls one series up to until (or as far as budget rows
// take it) in tx, and returns its new marks and the rows it read. Called
// with s.mu held.
func (s *Store) rollupSeries(tx *bolt.Tx, sr Series, until int64, budget int) (next marks, read int, err error) {
	dist, keep := s.spec(sr.Type)
	m := s.marks[sr.Key]
	dirty := s.dirty[sr.Key]
	next = m
	err = func() error {
		sk := seriesKey(sr.Key)
		raw := tx.Bucket(bucketResults).Bucket(sk)
		if raw == nil {
			return nil
		}
		minutes, err := tx.Bucket(bucketMinutes).CreateBucketIfNotExists(sk)
		if err != nil {
			return err
		}
		hours, err := tx.Bucket(bucketHours).CreateBucketIfNotExists(sk)
		if err != nil {
			return err
		}
		minutes.FillPercent, hours.FillPercent = 0.95, 0.95
		// addRaw adds one raw result to a minute's summary.
		var values []value
		addRaw := func(sum *summary, k, v []byte) error {
			r, err := decode(k, v, false, values)
			if err != nil {
				return err
			}
			values = r.values
			sum.addRun(&r, keep)
			return nil
		}
		// New minutes.
		from := m.minutes
		if from == 0 {
			k, _ := raw.Cursor().First()
			if len(k) != 8 {
				return nil // no results yet
			}
			from = floorTo(int64(binary.BigEndian.Uint64(k)), time.Minute)
		}
		if from < until {
			end, n, err := rollRange(raw, minutes, from, until, time.Minute, budget, addRaw, dist)
			read += n
			if err != nil {
				return err
			}
			next.minutes = end
		}
		// Minutes that got late results.
		redoHours := map[int64]bool{}
		for minute := range dirty {
			if minute >= m.minutes {
				continue // rolled up above, with its late rows
			}
			_, n, err := rollRange(raw, minutes, minute, minute+int64(time.Minute), time.Minute, 1<<62, addRaw, dist)
			read += n
			if err != nil {
				return err
			}
			if h := floorTo(minute, time.Hour); h < m.hours {
				redoHours[h] = true
			}
		}
		// New hours, from the minutes.
		hfrom, huntil := m.hours, floorTo(next.minutes, time.Hour)
		if hfrom == 0 {
			if k, _ := minutes.Cursor().First(); len(k) == 8 {
				hfrom = floorTo(int64(binary.BigEndian.Uint64(k)), time.Hour)
			} else {
				hfrom = huntil
			}
		}
		mergeMinutes := func(sum *summary, _, v []byte) error {
			o, err := decodeSummary(v)
			if err != nil {
				return err
			}
			sum.merge(o)
			return nil
		}
		if hfrom < huntil {
			if _, _, err := rollRange(minutes, hours, hfrom, huntil, time.Hour, 1<<62, mergeMinutes, dist); err != nil {
				return err
			}
			next.hours = huntil
		}
		for h := range redoHours {
			if _, _, err := rollRange(minutes, hours, h, h+int64(time.Hour), time.Hour, 1<<62, mergeMinutes, dist); err != nil {
				return err
			}
		}
		if next != m {
			v := binary.BigEndian.AppendUint64(key8(next.minutes), uint64(next.hours))
			return tx.Bucket(bucketMarks).Put(sk, v)
		}
		return nil
	}()
	return next, read, err
}

// rollRange reads src's rows in [from, until), adds each to the summary
// of its period (add), and writes (or replaces, or deletes when it has no
// rows left) each period's summary in dst. It stops at the first period
// boundary after budget rows and returns where it stopped and the rows
// it read.
func rollRange(src, dst *bolt.Bucket, from, until int64, period time.Duration, budget int,
	add func(*summary, []byte, []byte) error, dist int64) (end int64, read int, err error) {
	var (
		cur   *summary
		start int64
		buf   []byte
	)
	flush := func(through int64) error {
		// Every period in [start, through) gets what was read of it:
		// periods without rows lose a summary they may have had.
		for p := start; p < through; p += int64(period) {
			k := key8(p)
			if cur != nil && p == start {
				off := len(buf)
				buf = cur.encode(buf)
				if err := dst.Put(k, buf[off:len(buf):len(buf)]); err != nil {
					return err
				}
				continue
			}
			if dst.Get(k) != nil {
				if err := dst.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	}
	start = from
	c := src.Cursor()
	for k, v := c.Seek(key8(from)); k != nil; k, v = c.Next() {
		if len(k) != 8 {
			return 0, read, errCorrupt
		}
		t := int64(binary.BigEndian.Uint64(k))
		if t >= until {
			break
		}
		p := floorTo(t, period)
		if p != start {
			if read >= budget {
				if err := flush(p); err != nil {
					return 0, read, err
				}
				return p, read, nil
			}
			if err := flush(p); err != nil {
				return 0, read, err
			}
			cur, start = nil, p
		}
		if cur == nil {
			cur = newSummary(dist)
		}
		if err := add(cur, k, v); err != nil {
			return 0, read, fmt.Errorf("%s at %s: %w", "roll-up", time.Unix(0, t).UTC().Format(time.RFC3339Nano), err)
		}
		read++
	}
	if err := flush(until); err != nil {
		return 0, read, err
	}
	return until, read, nil
}

// markDirty notes that the minute of ns, already rolled up, got a late
// result. Called with s.mu held.
func (s *Store) markDirty(series uint64, ns int64) {
	d := s.dirty[series]
	if d == nil {
		d = map[int64]bool{}
		s.dirty[series] = d
	}
	d[floorTo(ns, time.Minute)] = true
}

// seriesKey is the name of a series' bucket.
func seriesKey(series uint64) []byte { return binary.BigEndian.AppendUint64(nil, series) }
