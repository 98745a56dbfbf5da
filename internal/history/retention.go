package history

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Retention says how long results are kept and how large the file may grow.
type Retention struct {
	// MaxAge applies to every probe type but the long-lived ones.
	MaxAge time.Duration
	// LongMaxAge applies to the types in LongTypes (speed tests: few rows,
	// worth keeping long), which are also trimmed last when the file is
	// too large.
	LongMaxAge time.Duration
	LongTypes  []string
	// MaxBytes bounds the space results take in the file.
	MaxBytes int64
}

// long reports whether results of the probe type follow LongMaxAge.
func (r Retention) long(probeType string) bool { return slices.Contains(r.LongTypes, probeType) }

// deleteChunk bounds the rows one transaction deletes, so trimming a large
// backlog does not hold the write lock (and delay result writes) for long.
const deleteChunk = 20000

// Trim deletes outages, evidence and results past their age, then, while
// the file's used space exceeds MaxBytes, the oldest tenth of the
// remaining time span (other probe types first, speed tests only when
// nothing else is left). Freed pages are reused by later writes; the file
// does not shrink.
func (s *Store) Trim(now time.Time, r Retention) (deleted int, err error) {
	// Outages follow the results' age (they are few: size needs no rule).
	if deleted, err = s.trimOutages(now.Add(-r.MaxAge)); err != nil {
		return deleted, err
	}
	n, err := s.trimEvidence(now.Add(-r.MaxAge))
	if deleted += n; err != nil {
		return deleted, err
	}
	for _, sr := range s.SeriesList() {
		age := r.MaxAge
		if r.long(sr.Type) {
			age = r.LongMaxAge
		}
		n, err := s.deleteBefore(sr.Key, now.Add(-age))
		deleted += n
		if err != nil {
			return deleted, err
		}
	}
	for range 50 {
		used, err := s.UsedBytes()
		if err != nil || used <= r.MaxBytes {
			return deleted, err
		}
		n, err := s.trimOldest(now, r, false)
		if err == nil && n == 0 {
			n, err = s.trimOldest(now, r, true)
		}
		deleted += n
		if err != nil || n == 0 {
			return deleted, err
		}
	}
	return deleted, nil
}

// trimOldest deletes, from the series of one retention class, results in
// the oldest tenth of the span between their oldest result and now.
func (s *Store) trimOldest(now time.Time, r Retention, long bool) (int, error) {
	var keys []uint64
	oldest := now
	for _, sr := range s.SeriesList() {
		if r.long(sr.Type) != long {
			continue
		}
		keys = append(keys, sr.Key)
		if t, ok, err := s.first(sr.Key); err != nil {
			return 0, err
		} else if ok && t.Before(oldest) {
			oldest = t
		}
	}
	cutoff := oldest.Add(max(now.Sub(oldest)/10, time.Minute))
	deleted := 0
	for _, k := range keys {
		n, err := s.deleteBefore(k, cutoff)
		deleted += n
		if err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}

// first returns the start of the series' oldest result.
func (s *Store) first(series uint64) (time.Time, bool, error) {
	var t time.Time
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketResults).Bucket(binary.BigEndian.AppendUint64(nil, series))
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

// deleteBefore deletes the series' results that started before cutoff.
func (s *Store) deleteBefore(series uint64, cutoff time.Time) (int, error) {
	hi := binary.BigEndian.AppendUint64(nil, uint64(max(cutoff.UnixNano(), 0)))
	total := 0
	for {
		n := 0
		s.mu.Lock()
		err := s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketResults).Bucket(binary.BigEndian.AppendUint64(nil, series))
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
