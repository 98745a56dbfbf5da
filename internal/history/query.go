package history

import (
	"encoding/binary"
	"maps"
	"math"
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
func (s *Store) Each(q Query, f func(*Record) bool) (more bool, err error) {
	s.mu.RLock()
	sr, ok := s.series[q.Series]
	names := s.byID // append-only: the ids seen here stay valid
	s.mu.RUnlock()
	if !ok {
		return false, nil
	}
	var (
		values []value
		rec    = Record{Values: map[string]float64{}}
		n      int
	)
	err = s.scan(q.Series, q.Since, q.Until, q.Desc, func(k, v []byte) (bool, error) {
		if n >= q.Limit {
			more = true
			return false, nil
		}
		r, err := decode(k, v, false, values)
		if err != nil {
			return false, err
		}
		values = r.values
		clear(rec.Values)
		fill(&rec, sr, r, names)
		n++
		return f(&rec), nil
	})
	return more, err
}

// scan calls f for each row of the series in [since, until), in time order
// or reversed, until f returns false.
func (s *Store) scan(series uint64, since, until time.Time, desc bool, f func(k, v []byte) (bool, error)) error {
	lo := binary.BigEndian.AppendUint64(nil, uint64(max(since.UnixNano(), 0)))
	hi := binary.BigEndian.AppendUint64(nil, uint64(max(until.UnixNano(), 0)))
	return s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketResults).Bucket(binary.BigEndian.AppendUint64(nil, series))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		var k, v []byte
		if desc {
			k, v = c.Seek(hi)
			if k == nil {
				k, v = c.Last()
			}
			for k != nil && string(k) >= string(hi) {
				k, v = c.Prev()
			}
		} else {
			k, v = c.Seek(lo)
		}
		for k != nil && string(k) >= string(lo) && string(k) < string(hi) {
			ok, err := f(k, v)
			if err != nil || !ok {
				return err
			}
			if desc {
				k, v = c.Prev()
			} else {
				k, v = c.Next()
			}
		}
		return nil
	})
}

// Stat summarises one value over a bucket of time.
type Stat struct {
	Min, Avg, Max float64
	n             int
}

// Bucket is the aggregate of the runs that started in [Start, Start+step).
type Bucket struct {
	Start    time.Time
	Runs     int
	Failures int
	Values   map[string]Stat
}

// Aggregate summarises the series over [since, until) in buckets of step:
// run and failure counts and, per value, min, mean and max. It is what a
// chart of a day of 1-s results needs (86,400 rows in, 1,440 points out at
// a 1 min step). Buckets without runs are left out.
func (s *Store) Aggregate(series uint64, since, until time.Time, step time.Duration) ([]Bucket, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.series[series]; !ok {
		return nil, nil
	}
	var (
		out    []Bucket
		cur    *Bucket
		stats  []Stat // by name id, for the current bucket
		seen   []uint32
		values []value
	)
	flush := func() {
		if cur == nil {
			return
		}
		cur.Values = make(map[string]Stat, len(seen))
		for _, id := range seen {
			st := stats[id]
			st.Avg /= float64(st.n)
			cur.Values[s.byID[id]] = st
			stats[id] = Stat{}
		}
		seen = seen[:0]
		out = append(out, *cur)
	}
	err := s.scan(series, since, until, false, func(k, v []byte) (bool, error) {
		r, err := decode(k, v, false, values)
		if err != nil {
			return false, err
		}
		values = r.values
		bstart := r.start / int64(step) * int64(step) // aligned to the epoch: stable as time moves
		if cur == nil || cur.Start.UnixNano() != bstart {
			flush()
			cur = &Bucket{Start: time.Unix(0, bstart).UTC()}
		}
		cur.Runs++
		if r.outcome != "success" {
			cur.Failures++
		}
		for _, val := range r.values {
			if int(val.name) >= len(s.byID) || math.IsNaN(val.v) {
				continue
			}
			for int(val.name) >= len(stats) {
				stats = append(stats, Stat{})
			}
			st := &stats[val.name]
			if st.n == 0 {
				st.Min, st.Max = val.v, val.v
				seen = append(seen, val.name)
			}
			st.Min, st.Max = min(st.Min, val.v), max(st.Max, val.v)
			st.Avg += val.v
			st.n++
		}
		return true, nil
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
