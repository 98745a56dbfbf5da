package history

import (
	"bytes"
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

// maxPendingEvidence bounds the evidence waiting for a write: past it
// PutEvidence writes at once (a store without a writer, or one whose
// writes fail).
const maxPendingEvidence = 1000

// pendingEvidence is a piece of evidence waiting for the next write.
type pendingEvidence struct{ key, js []byte }

// PutEvidence keeps v (encoded as JSON, at most 64 KiB) as the run's
// evidence of the given kind. It is written with the next batch of
// results (Put), in the same commit: a commit and an fsync of its own
// for each piece cost as much as a second's 1,000 results at 20 pieces
// a second (runs with lost echoes), and made the probe wait for the
// disk. Evidence reads it at once; a crash loses it with the results of
// the same second. When Put fails, its pending evidence is dropped with
// its results.
func (s *Store) PutEvidence(id probe.RunID, kind string, v any) error {
	js, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("evidence %s of run %s: %w", kind, id, err)
	}
	if len(js) > maxEvidence {
		return fmt.Errorf("evidence %s of run %s: %d bytes, more than %d", kind, id, len(js), maxEvidence)
	}
	s.evMu.Lock()
	s.evPending = append(s.evPending, pendingEvidence{evidenceKey(id, kind), js})
	full := len(s.evPending) >= maxPendingEvidence
	s.evMu.Unlock()
	if full {
		return s.flushEvidence()
	}
	return nil
}

// takeEvidence returns the evidence pending now. It stays pending (and
// readable) until doneEvidence, after the commit that wrote it. Called
// with s.mu held.
func (s *Store) takeEvidence() []pendingEvidence {
	s.evMu.Lock()
	defer s.evMu.Unlock()
	return s.evPending[:len(s.evPending):len(s.evPending)]
}

// doneEvidence forgets the pieces of taken, written or dropped.
func (s *Store) doneEvidence(taken []pendingEvidence) {
	if len(taken) == 0 {
		return
	}
	s.evMu.Lock()
	defer s.evMu.Unlock()
	s.evPending = append(s.evPending[:0:0], s.evPending[len(taken):]...)
}

// writeEvidence writes pieces in tx.
func writeEvidence(tx *bolt.Tx, pieces []pendingEvidence) error {
	b := tx.Bucket(bucketEvidence)
	for _, p := range pieces {
		if err := b.Put(p.key, p.js); err != nil {
			return err
		}
	}
	return nil
}

// flushEvidence writes the evidence pending in a commit of its own.
func (s *Store) flushEvidence() error {
	// s.mu orders the writers of pending evidence (Put holds it too).
	s.mu.Lock()
	defer s.mu.Unlock()
	pieces := s.takeEvidence()
	if len(pieces) == 0 {
		return nil
	}
	defer s.doneEvidence(pieces)
	if err := s.db.Update(func(tx *bolt.Tx) error { return writeEvidence(tx, pieces) }); err != nil {
		return fmt.Errorf("cannot write evidence to %s: %w", s.path, err)
	}
	return nil
}

// Evidence returns the run's evidence by kind (nil when it has none).
func (s *Store) Evidence(id probe.RunID) (map[string]json.RawMessage, error) {
	var out map[string]json.RawMessage
	prefix := evidenceKey(id, "")
	add := func(k, v []byte) {
		if out == nil {
			out = map[string]json.RawMessage{}
		}
		out[string(k[len(prefix):])] = append(json.RawMessage(nil), v...)
	}
	// Pending pieces are read before the file: a piece leaves them only
	// after its commit, so it is in one or the other.
	var pending []pendingEvidence
	s.evMu.Lock()
	for _, p := range s.evPending {
		if len(p.key) > len(prefix) && bytes.HasPrefix(p.key, prefix) {
			pending = append(pending, p)
		}
	}
	s.evMu.Unlock()
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvidence).Cursor()
		for k, v := c.Seek(prefix); k != nil && len(k) > len(prefix) && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			add(k, v)
		}
		return nil
	})
	for _, p := range pending { // newer than the file's
		add(p.key, p.js)
	}
	return out, err
}

// trimEvidence deletes the evidence of runs that started before cutoff.
func (s *Store) trimEvidence(cutoff time.Time) (int, error) {
	if err := s.flushEvidence(); err != nil { // pending pieces are trimmed too
		return 0, err
	}
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
