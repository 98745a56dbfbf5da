package history

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Query selects results of one series in [Since, Until).
type Query struct {
	Series       uint64
	Since, Until time.Time
	// Limit bounds the rows returned; More says whether rows were left.
	Limit int
	// Desc returns the newest first (the latest Limit rows).
	Desc bool
}

// Results returns the series' results in the window, without log lines,
// and whether more rows matched than Limit.
func (s *Store) Results(q Query) (recs []Record, more bool, err error) {
	more, err = s.Each(q, func(r *Record) bool {
		c := *r
		c.Values = maps.Clone(r.Values)
		recs = append(recs, c)
		return true
	})
	return recs, more, err
}

// Each calls f with each of the series' results in the window (without log
// lines), up to Limit, until f returns false, and reports whether more rows
// matched. The Record and its Values are reused between calls: f copies
// what it keeps. f runs inside a read transaction; it must not block (a
// handler encodes into memory and writes to the client afterwards).
//
// Where raw results were trimmed, the window is served from the minute
// summaries, and before those from the hour summaries: such a record has
// Rollup set, no RunID, and the means of its period's values.
func (s *Store) Each(q Query, f func(*Record) bool) (more bool, err error) {
	s.mu.RLock()
	sr, ok := s.series[q.Series]
	names := s.byID // append-only: the ids seen here stay valid
	m := s.marks[q.Series]
	logged := slices.Clone(s.logged[q.Series]) // Put may insert into it
	s.mu.RUnlock()
	if !ok {
		return false, nil
	}
	var (
		values []value
		rec    = Record{Values: map[string]float64{}}
		n      int
	)
	since, until := max(q.Since.UnixNano(), 0), max(q.Until.UnixNano(), 0)
	err = s.db.View(func(tx *bolt.Tx) error {
		b1, b2 := segments(tx, q.Series, m, levelRaw)
		parts := []struct {
			l      level
			lo, hi int64
		}{{levelHour, since, min(b1, until)}, {levelMinute, max(since, b1), min(b2, until)}, {levelRaw, max(since, b2), until}}
		if q.Desc {
			slices.Reverse(parts)
		}
		stop := false
		for _, p := range parts {
			if stop || p.lo >= p.hi {
				continue
			}
			err := scanIn(tx, p.l, q.Series, logged, p.lo, p.hi, q.Desc, func(k, v []byte) (bool, error) {
				if n >= q.Limit {
					more, stop = true, true
					return false, nil
				}
				clear(rec.Values)
				if p.l == levelRaw {
					r, err := decode(k, v, false, values)
					if err != nil {
						return false, err
					}
					values = r.values
					fill(&rec, sr, r, names)
				} else {
					sum, err := decodeSummary(v)
					if err != nil {
						return false, fmt.Errorf("%s summary: %w", p.l, err)
					}
					fillSummary(&rec, sr, int64(binary.BigEndian.Uint64(k)), p.l.period(), sum, names)
				}
				n++
				if !f(&rec) {
					stop = true
				}
				return !stop, nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return more, err
}

// fillSummary sets rec from a period's summary.
func fillSummary(rec *Record, sr Series, start int64, period time.Duration, sum *summary, names []string) {
	values := rec.Values
	*rec = Record{Probe: sr.Probe, Type: sr.Type, Target: sr.Target, Start: time.Unix(0, start).UTC(),
		Outcome: "success", Values: values,
		Rollup: &Rollup{Period: period, Runs: int(sum.runs), Failures: int(sum.failures)}}
	if sum.failures > 0 {
		rec.Outcome = "failure"
	}
	if sum.runs > 0 {
		rec.Duration = sum.durSum / float64(sum.runs)
	}
	for _, v := range sum.values {
		if int(v.name) < len(names) && v.n > 0 {
			rec.Values[names[v.name]] = v.sum / float64(v.n)
		}
	}
	if q, ok := sum.quantiles(); ok && int(sum.dist) < len(names) {
		rec.Rollup.Quantiles = map[string]Quantiles{names[sum.dist]: q}
	}
}

// segments returns where a read of the series at the coarsest level
// coarsest finds its data: hour summaries before b1, minute summaries in
// [b1, b2), raw results from b2. It reads each level where it is at
// least as coarse as asked and holds the data, the next finer one past
// its mark, and a coarser one where finer data was trimmed.
func segments(tx *bolt.Tx, series uint64, m marks, coarsest level) (b1, b2 int64) {
	first := func(l level) (int64, bool) {
		b := tx.Bucket(l.root()).Bucket(seriesKey(series))
		if b == nil {
			return 0, false
		}
		k, _ := b.Cursor().First()
		if len(k) != 8 {
			return 0, false
		}
		return int64(binary.BigEndian.Uint64(k)), true
	}
	// Trims cut raw results at whole minutes and minute summaries at
	// whole hours (retention.go), so the first period left of each is
	// whole, or as whole as what its summary was made of.
	loRaw, loMin := m.minutes, m.hours
	if t, ok := first(levelRaw); ok {
		loRaw = min(floorTo(t, time.Minute), m.minutes)
	}
	if t, ok := first(levelMinute); ok {
		loMin = min(floorTo(t, time.Hour), m.hours)
	}
	switch coarsest {
	case levelHour:
		b1, b2 = m.hours, m.minutes
	case levelMinute:
		b1, b2 = loMin, m.minutes
	default:
		b1, b2 = loMin, loRaw
	}
	return min(b1, b2), b2
}

// scanIn calls f for each row of the series at level l with a key in
// [lo, hi), in time order or reversed, until f returns false.
// logged is the series' starts in the log (Store.logged).
func scanIn(tx *bolt.Tx, l level, series uint64, logged []int64, lo, hi int64, desc bool, f func(k, v []byte) (bool, error)) error {
	if l == levelRaw {
		return scanRaw(tx, series, logged, lo, hi, desc, f)
	}
	return scanBucket(tx.Bucket(l.root()).Bucket(seriesKey(series)), lo, hi, desc, f)
}

// scan calls f for each raw row of the series in [since, until), in time
// order or reversed, until f returns false. Called with s.mu held.
func (s *Store) scan(series uint64, since, until time.Time, desc bool, f func(k, v []byte) (bool, error)) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return scanIn(tx, levelRaw, series, s.logged[series], max(since.UnixNano(), 0), max(until.UnixNano(), 0), desc, f)
	})
}

// Stat summarises one value over a bucket of time.
type Stat struct {
	Min, Avg, Max float64
}

// Bucket is the aggregate of the runs that started in [Start, Start+step).
type Bucket struct {
	Start    time.Time
	Runs     int
	Failures int
	Values   map[string]Stat
	// Quantiles of the type's distribution value (roll-ups' Spec), by
	// name; nil when it has none.
	Quantiles map[string]Quantiles
}

// Aggregate summarises the series over [since, until) in buckets of step:
// run and failure counts and, per value, min, mean and max, and the
// quantiles of the type's distribution value. It is what a chart of a
// day of 1-s results needs (86,400 rows in, 1,440 points out at a 1 min
// step). Buckets without runs are left out.
//
// A step of whole hours reads hour summaries (a 30-day chart: 720 of
// them), one of whole minutes minute summaries, where they exist; other
// steps read raw results, and summaries where those were trimmed. A
// summary counts whole in the bucket of its start. Values that roll-ups
// do not keep are missing from buckets made of summaries.
func (s *Store) Aggregate(series uint64, since, until time.Time, step time.Duration) ([]Bucket, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sr, ok := s.series[series]
	if !ok || step <= 0 {
		return nil, nil
	}
	coarsest := levelRaw
	switch {
	case step%time.Hour == 0:
		coarsest = levelHour
	case step%time.Minute == 0:
		coarsest = levelMinute
	}
	dist, _ := s.spec(sr.Type)
	all := func(uint32) bool { return true }
	var (
		out    []Bucket
		cur    *summary
		bstart int64
		values []value
	)
	flush := func() {
		if cur == nil {
			return
		}
		b := Bucket{Start: time.Unix(0, bstart).UTC(), Runs: int(cur.runs), Failures: int(cur.failures),
			Values: make(map[string]Stat, len(cur.values))}
		for _, v := range cur.values {
			if int(v.name) < len(s.byID) && v.n > 0 {
				b.Values[s.byID[v.name]] = Stat{Min: v.min, Avg: v.sum / float64(v.n), Max: v.max}
			}
		}
		if q, ok := cur.quantiles(); ok && int(cur.dist) < len(s.byID) {
			b.Quantiles = map[string]Quantiles{s.byID[cur.dist]: q}
		}
		out = append(out, b)
		cur = nil
	}
	into := func(t int64) *summary {
		bs := t / int64(step) * int64(step) // aligned to the epoch: stable as time moves
		if cur == nil || bs != bstart {
			flush()
			cur, bstart = newSummary(dist), bs
		}
		return cur
	}
	lo, hi := max(since.UnixNano(), 0), max(until.UnixNano(), 0)
	err := s.db.View(func(tx *bolt.Tx) error {
		b1, b2 := segments(tx, series, s.marks[series], coarsest)
		parts := []struct {
			l      level
			lo, hi int64
		}{{levelHour, floorTo(lo, time.Hour), min(b1, hi)}, {levelMinute, max(floorTo(lo, time.Minute), b1), min(b2, hi)},
			{levelRaw, max(lo, b2), hi}}
		for _, p := range parts {
			if p.lo >= p.hi {
				continue
			}
			err := scanIn(tx, p.l, series, s.logged[series], p.lo, p.hi, false, func(k, v []byte) (bool, error) {
				if p.l == levelRaw {
					r, err := decode(k, v, false, values)
					if err != nil {
						return false, err
					}
					values = r.values
					into(r.start).addRun(&r, all)
					return true, nil
				}
				sum, err := decodeSummary(v)
				if err != nil {
					return false, fmt.Errorf("%s summary: %w", p.l, err)
				}
				into(int64(binary.BigEndian.Uint64(k))).merge(sum)
				return true, nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	flush()
	return out, err
}

// Last returns the series' most recent result.
func (s *Store) Last(series uint64) (Record, bool, error) {
	recs, _, err := s.Results(Query{Series: series, Since: time.Unix(0, 0), Until: time.Unix(0, math.MaxInt64), Limit: 1, Desc: true})
	if err != nil || len(recs) == 0 {
		return Record{}, false, err
	}
	return recs[0], true, nil
}

// LastSuccess returns the start of the series' most recent successful run,
// looking back over at most scan rows.
func (s *Store) LastSuccess(series uint64, scan int) (time.Time, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var found time.Time
	n := 0
	err := s.scan(series, time.Unix(0, 0), time.Unix(0, math.MaxInt64), true, func(k, v []byte) (bool, error) {
		n++
		r, err := decode(k, v, false, nil)
		if err != nil {
			return false, err
		}
		if r.outcome == "success" {
			found = time.Unix(0, r.start).Add(r.duration).UTC()
			return false, nil
		}
		return n < scan, nil
	})
	return found, err
}
