package history

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/netpulse/netpulse/internal/probe"
)

// bucketOutages holds the outage log: contiguous failure periods of a
// target or of a fault domain, keyed by start time then id (outageKey), so
// that a time window is a range of keys and an open outage, rewritten as
// it grows, keeps its key.
var bucketOutages = []byte("outages")

// Outage is one contiguous failure period, of a target (Probe and Target
// set) or of a fault domain that the verdict blamed (both empty).
type Outage struct {
	Probe  string `json:"probe,omitempty"`
	Target string `json:"target,omitempty"`
	// Domain is the fault domain: the one blamed (a domain outage), or the
	// one the verdict blamed while the target failed.
	Domain string    `json:"domain"`
	Start  time.Time `json:"start"`
	// End is zero while the outage is open.
	End time.Time `json:"end,omitzero"`
	// LastFailure is when the last failed run seen ended (for a domain
	// outage: the last time the verdict still blamed it). An outage whose
	// recovery was not seen (the agent was stopped, runs were skipped)
	// ends there: what happened after it is unknown.
	LastFailure time.Time `json:"last_failure"`
	// Verdict is the verdict's reasoning during the outage.
	Verdict string `json:"verdict"`
}

// Open reports whether the outage has not ended.
func (o Outage) Open() bool { return o.End.IsZero() }

// IsDomain reports whether the outage is a fault domain's, not a target's.
func (o Outage) IsDomain() bool { return o.Probe == "" && o.Target == "" }

// ID identifies the outage's subject: a target's series key, or a hash
// of the domain's name.
func (o Outage) ID() uint64 {
	if !o.IsDomain() {
		return probe.SeriesKey(o.Probe, o.Target)
	}
	h := fnv.New64a()
	h.Write([]byte("\x00domain\x00" + o.Domain))
	return h.Sum64()
}

func (o Outage) key() []byte {
	k := binary.BigEndian.AppendUint64(nil, uint64(max(o.Start.UnixNano(), 0)))
	return binary.BigEndian.AppendUint64(k, o.ID())
}

// maxOutageVerdict bounds the verdict text kept with an outage.
const maxOutageVerdict = 2048

// PutOutages writes (or rewrites, by subject and start) outages in one
// transaction.
func (s *Store) PutOutages(outages []Outage) error {
	if len(outages) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutages)
		for _, o := range outages {
			if len(o.Verdict) > maxOutageVerdict {
				o.Verdict = o.Verdict[:maxOutageVerdict] + "…"
			}
			js, err := json.Marshal(o)
			if err != nil {
				return err
			}
			if err := b.Put(o.key(), js); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot write outages to %s: %w", s.path, err)
	}
	return nil
}

// Outages calls f, newest start first, with each outage that overlaps
// [since, until): started before until and still open or ended at or
// after since; f returns false to stop. An entry that does not decode is
// skipped (a later version's, or damage): the log is a view, not a ledger.
func (s *Store) Outages(since, until time.Time, f func(Outage) bool) error {
	return s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutages).Cursor()
		hi := binary.BigEndian.AppendUint64(nil, uint64(max(until.UnixNano(), 0)))
		var k, v []byte
		if sk, _ := c.Seek(hi); sk == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil; k, v = c.Prev() {
			var o Outage
			if len(k) != 16 || json.Unmarshal(v, &o) != nil {
				continue
			}
			if !o.Open() && o.End.Before(since) {
				continue
			}
			if !f(o) {
				return nil
			}
		}
		return nil
	})
}

// OpenOutages returns the outages that have not ended (at start: the
// agent resumes them).
func (s *Store) OpenOutages() ([]Outage, error) {
	var out []Outage
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutages).ForEach(func(k, v []byte) error {
			var o Outage
			if len(k) == 16 && json.Unmarshal(v, &o) == nil && o.Open() {
				out = append(out, o)
			}
			return nil
		})
	})
	return out, err
}

// trimOutages deletes the outages that ended before cutoff (open ones
// stay, whatever their age).
func (s *Store) trimOutages(cutoff time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutages).Cursor()
		hi := binary.BigEndian.AppendUint64(nil, uint64(max(cutoff.UnixNano(), 0)))
		var doomed [][]byte
		for k, v := c.First(); k != nil && string(k) < string(hi); k, v = c.Next() {
			var o Outage
			if json.Unmarshal(v, &o) == nil && (o.Open() || !o.End.Before(cutoff)) {
				continue
			}
			doomed = append(doomed, append([]byte(nil), k...))
		}
		b := tx.Bucket(bucketOutages)
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("cannot trim outages in %s: %w", s.path, err)
	}
	return n, nil
}
