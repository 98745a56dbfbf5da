package history

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Retention says how long results and their roll-ups are kept and how
// large the file may grow.
type Retention struct {
	// MaxAge applies to every probe type but the long-lived ones: hour
	// summaries are kept that long.
	MaxAge time.Duration
	// RawMaxAge keeps raw results (0: MaxAge), MinuteMaxAge minute
	// summaries (0: MaxAge); older ones live on in the coarser summaries.
	RawMaxAge, MinuteMaxAge time.Duration
	// LongMaxAge applies to the types in LongTypes (speed tests: few rows,
	// worth keeping long), raw and summaries alike; they are also trimmed
	// last when the file is too large.
	LongMaxAge time.Duration
	LongTypes  []string
	// MaxBytes bounds the space results take in the file.
	MaxBytes int64
}

// long reports whether results of the probe type follow LongMaxAge.
func (r Retention) long(probeType string) bool { return slices.Contains(r.LongTypes, probeType) }

// ages returns the raw, minute and hour retention of a type.
func (r Retention) ages(probeType string) [3]time.Duration {
	if r.long(probeType) {
		return [3]time.Duration{r.LongMaxAge, r.LongMaxAge, r.LongMaxAge}
	}
	a := [3]time.Duration{r.RawMaxAge, r.MinuteMaxAge, r.MaxAge}
	for i := range a {
		if a[i] == 0 {
			a[i] = r.MaxAge
		}
	}
	return a
}

// deleteChunk bounds the rows one transaction deletes, so trimming a large
// backlog does not hold the write lock (and delay result writes) for long.
const deleteChunk = 20000

// Trim first rolls up what is not yet (trimming never loses a result
// that no summary holds, unless it is past MaxAge), then deletes raw results, minute and hour
// summaries past their age. Then, while the file's used space exceeds
// MaxBytes, it deletes the oldest tenth of one level's time span, in this
// order, other types before the long-lived ones: raw results but the
// last hour's, minute summaries but the last day's, hour summaries but
// the last day's, then raw results and minute summaries down to what is
// rolled up, then hour summaries but the last hour's. Freed pages are
// reused by later writes; the file does not shrink. deleted counts raw
// results. Outages follow the hours' age, a run's evidence its raw
// result's.
func (s *Store) Trim(now time.Time, r Retention) (deleted int, err error) {
	// One bounded step: a backlog (an old file's results) is rolled up by
	// the writer between writes, and what is not rolled up yet is not
	// trimmed but at the hours' age.
	if _, err := s.Rollup(now); err != nil {
		return 0, err
	}
	if _, err := s.trimOutages(now.Add(-r.MaxAge)); err != nil {
		return 0, err
	}
	evidenceAge := r.MaxAge
	if r.RawMaxAge > 0 {
		evidenceAge = r.RawMaxAge
	}
	if _, err := s.trimEvidence(now.Add(-evidenceAge)); err != nil {
		return 0, err
	}
	for _, sr := range s.SeriesList() {
		ages := r.ages(sr.Type)
		for l := levelRaw; l <= levelHour; l++ {
			// Past the hours' age nothing is kept, whole periods or not.
			cutoff := max(s.trimCutoff(l, sr.Key, now.Add(-ages[l]).UnixNano()), now.Add(-ages[levelHour]).UnixNano())
			n, err := s.deleteBefore(l, sr.Key, cutoff)
			if l == levelRaw {
				deleted += n
			}
			if err != nil {
				return deleted, err
			}
		}
	}
	type phase struct {
		l    level
		keep time.Duration // the newest data kept whatever the size
	}
	phases := []phase{{levelRaw, time.Hour}, {levelMinute, 24 * time.Hour}, {levelHour, 24 * time.Hour},
		{levelRaw, 0}, {levelMinute, 0}, {levelHour, time.Hour}}
	for _, long := range []bool{false, true} {
		for _, p := range phases {
			for range 50 {
				used, err := s.UsedBytes()
				if err != nil || used <= r.MaxBytes {
					return deleted, err
				}
				n, err := s.trimOldest(now, r, p.l, long, now.Add(-p.keep).UnixNano())
				if p.l == levelRaw {
					deleted += n
				}
				if err != nil {
					return deleted, err
				}
				if n == 0 {
					break
				}
			}
		}
	}
	return deleted, nil
}

// trimCutoff is where level l of a series may be cut when asked to cut at
// want: at a whole minute (raw) or hour (minutes), and never past what is
// rolled up into the next level.
func (s *Store) trimCutoff(l level, series uint64, want int64) int64 {
	s.mu.RLock()
	m := s.marks[series]
	s.mu.RUnlock()
	switch l {
	case levelRaw:
		return min(floorTo(want, time.Minute), m.minutes)
	case levelMinute:
		return min(floorTo(want, time.Hour), m.hours)
	}
	return want
}

// trimOldest deletes, from level l of the series of one retention class,
// what is in the oldest tenth of the span between their oldest data and
// now, but nothing from limit on.
func (s *Store) trimOldest(now time.Time, r Retention, l level, long bool, limit int64) (int, error) {
	var keys []uint64
	oldest := now
	for _, sr := range s.SeriesList() {
		if r.long(sr.Type) != long {
			continue
		}
		keys = append(keys, sr.Key)
		if t, ok, err := s.first(l, sr.Key); err != nil {
			return 0, err
		} else if ok && t.Before(oldest) {
			oldest = t
		}
	}
	cutoff := oldest.Add(max(now.Sub(oldest)/10, time.Minute)).UnixNano()
	deleted := 0
	for _, k := range keys {
		n, err := s.deleteBefore(l, k, s.trimCutoff(l, k, min(cutoff, limit)))
		deleted += n
		if err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}

// first returns the start of the series' oldest data at level l.
func (s *Store) first(l level, series uint64) (time.Time, bool, error) {
	var t time.Time
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(l.root()).Bucket(binary.BigEndian.AppendUint64(nil, series))
		if b == nil {
			return nil
		}
		if k, _ := b.Cursor().First(); len(k) == 8 {
			t, ok = time.Unix(0, int64(binary.BigEndian.Uint64(k))), true
		}
		return nil
	})
	return t, ok, err
}

// deleteBefore deletes the series' data at level l before cutoff (Unix
// nanoseconds).
func (s *Store) deleteBefore(l level, series uint64, cutoff int64) (int, error) {
	hi := binary.BigEndian.AppendUint64(nil, uint64(max(cutoff, 0)))
	// Most calls find nothing to delete: a read transaction tells, where
	// a write one would cost a commit and an fsync (3,000 of them every
	// trim at 1,000 targets).
	if t, ok, err := s.first(l, series); err != nil || !ok || t.UnixNano() >= cutoff {
		return 0, err
	}
	total := 0
	for {
		n := 0
		s.mu.Lock()
		err := s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(l.root()).Bucket(binary.BigEndian.AppendUint64(nil, series))
			if b == nil {
				return nil
			}
			c := b.Cursor()
			for k, _ := c.First(); k != nil && string(k) < string(hi) && n < deleteChunk; k, _ = c.First() {
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		s.mu.Unlock()
		total += n
		if err != nil {
			return total, fmt.Errorf("cannot trim history in %s: %w", s.path, err)
		}
		if n < deleteChunk {
			return total, nil
		}
	}
}

// UsedBytes is the file's size less its free pages: the space results take.
func (s *Store) UsedBytes() (int64, error) {
	var size int64
	err := s.db.View(func(tx *bolt.Tx) error {
		size = tx.Size()
		return nil
	})
	st := s.db.Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(s.db.Info().PageSize)
	return max(size-free, 0), err
}

// FileBytes is the size of the file on disk.
func (s *Store) FileBytes() int64 {
	var size int64
	_ = s.db.View(func(tx *bolt.Tx) error {
		size = tx.Size()
		return nil
	})
	return size
}
