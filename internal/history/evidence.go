package history

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/netpulse/netpulse/internal/probe"
)

// bucketEvidence holds what runs found beside their values (a path
// snapshot a ping run took when it saw trouble), as JSON keyed by the
// run's id (series, start) and a kind: the run's debug view shows it.
var bucketEvidence = []byte("evidence")

// maxEvidence bounds one piece of evidence.
const maxEvidence = 64 << 10

func evidenceKey(id probe.RunID, kind string) []byte {
	k := binary.BigEndian.AppendUint64(nil, id.Series)
	k = binary.BigEndian.AppendUint64(k, uint64(id.Start))
	return append(k, kind...)
}

// PutEvidence stores v (encoded as JSON, at most 64 KiB) as the run's
// evidence of the given kind.
func (s *Store) PutEvidence(id probe.RunID, kind string, v any) error {
	js, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("evidence %s of run %s: %w", kind, id, err)
	}
	if len(js) > maxEvidence {
		return fmt.Errorf("evidence %s of run %s: %d bytes, more than %d", kind, id, len(js), maxEvidence)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEvidence).Put(evidenceKey(id, kind), js)
	})
	if err != nil {
		return fmt.Errorf("cannot write evidence to %s: %w", s.path, err)
	}
	return nil
}

// Evidence returns the run's evidence by kind (nil when it has none).
func (s *Store) Evidence(id probe.RunID) (map[string]json.RawMessage, error) {
	var out map[string]json.RawMessage
	prefix := evidenceKey(id, "")
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvidence).Cursor()
		for k, v := c.Seek(prefix); k != nil && len(k) > len(prefix) && string(k[:len(prefix)]) == string(prefix); k, v = c.Next() {
			if out == nil {
				out = map[string]json.RawMessage{}
			}
			out[string(k[len(prefix):])] = append(json.RawMessage(nil), v...)
		}
		return nil
	})
	return out, err
}

// trimEvidence deletes the evidence of runs that started before cutoff.
func (s *Store) trimEvidence(cutoff time.Time) (int, error) {
	var doomed [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEvidence).ForEach(func(k, _ []byte) error {
			if len(k) < 16 || int64(binary.BigEndian.Uint64(k[8:16])) < cutoff.UnixNano() {
				doomed = append(doomed, append([]byte(nil), k...))
			}
			return nil
		})
	})
	if err != nil || len(doomed) == 0 {
		return 0, err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvidence)
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("cannot trim evidence in %s: %w", s.path, err)
	}
	return len(doomed), nil
}
