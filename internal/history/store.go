// Package history keeps probe results in a single-file embedded database
// (bbolt: pure Go, no server) so the API and the status page have a history
// that survives restarts. Results are written in batches by a Writer that
// never blocks probing, and trimmed by age and by size (retention.go).
package history

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	yaml "go.yaml.in/yaml/v3"

	"github.com/netpulse/netpulse/internal/logging"
	"github.com/netpulse/netpulse/internal/probe"
)

// FileName is the store's file inside the data directory.
const FileName = "history.db"

// Buckets. Results live in one nested bucket per series under results,
// named by the series key, keyed by start time; recent ones in the log
// (log.go) until they are moved there, once a minute.
var (
	bucketMeta    = []byte("meta")
	bucketSeries  = []byte("series")
	bucketNames   = []byte("names")
	bucketConfigs = []byte("configs")
	bucketResults = []byte("results")
	keyVersion    = []byte("version")
)

const schemaVersion = 1

// ErrLocked means another process has the store open.
var ErrLocked = errors.New("the history file is in use by another process")

// Series describes one (probe, target) pair that has results.
type Series struct {
	Key    uint64 `json:"-"`
	Probe  string `json:"probe"`
	Type   string `json:"probe_type"`
	Target string `json:"target"`
}

// Record is one stored result, as the store returns it.
type Record struct {
	RunID     string
	Probe     string
	Type      string
	Target    string
	Start     time.Time
	Duration  float64 // seconds
	Outcome   string
	ErrorType string
	Error     string
	TraceID   string
	OnDemand  bool
	Values    map[string]float64
	Logs      []logging.Line

	// ConfigKey finds the configuration the run ran with (Store.Config).
	ConfigKey uint64

	// Rollup is set when the record summarises a period's runs (results
	// older than the raw retention); RunID is then empty.
	Rollup *Rollup
}

// Store is an open history file.
type Store struct {
	db   *bolt.DB
	path string

	mu      sync.RWMutex
	series  map[uint64]Series
	names   map[string]uint32
	byID    []string                 // value names by id
	configs map[*probe.Target]uint64 // config key of each target seen
	stored  map[uint64]bool          // config keys known to be stored

	// Roll-ups (rollup.go): what they keep per type, each series'
	// progress, and minutes that got results after being rolled up.
	specs map[string]Spec
	marks map[uint64]marks
	dirty map[uint64]map[int64]bool

	// logMark is where the log of recent results begins, and logged the
	// starts of each series' results in it, in order (log.go).
	logMark int64
	logged  map[uint64][]int64

	// Evidence waiting for the next write (evidence.go).
	evMu      sync.Mutex
	evPending []pendingEvidence

	recovered *Recovery // set when Open replaced a damaged file
}

// Open opens (creating it and dir) the history file in dir. It fails with
// ErrLocked within a second when another process holds the file.
//
// A damaged file (truncated, or bytes changed: bbolt may panic on it) is
// moved aside as history.db.corrupt-<time> and a fresh one started; the
// store reports it through Recovered, so the caller can log and count it.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("cannot create data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	s, err := openChecked(path)
	if !errors.Is(err, errDamaged) {
		return s, err
	}
	aside := path + ".corrupt-" + time.Now().UTC().Format("20060102T150405.000Z")
	if rerr := os.Rename(path, aside); rerr != nil {
		return nil, fmt.Errorf("%s: %w; cannot move it aside: %w", path, err, rerr)
	}
	s, nerr := openChecked(path)
	if nerr != nil {
		return nil, fmt.Errorf("%s: moved the damaged file to %s but cannot start a fresh one: %w", path, aside, nerr)
	}
	s.recovered = &Recovery{MovedTo: aside, Reason: err}
	return s, nil
}

// Recovery describes a damaged history file that Open replaced.
type Recovery struct {
	// MovedTo is where the damaged file now is.
	MovedTo string
	// Reason says what was found wrong.
	Reason error
}

// Recovered reports whether Open found the file damaged and started anew.
func (s *Store) Recovered() (Recovery, bool) {
	if s.recovered == nil {
		return Recovery{}, false
	}
	return *s.recovered, true
}

// load creates the buckets and reads the series and names dictionaries.
func (s *Store) load() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		// The roll-up buckets were added to schema 1 (a file without them
		// gets them here, and its results are rolled up by the writer).
		for _, name := range [][]byte{bucketMeta, bucketSeries, bucketNames, bucketConfigs, bucketResults,
			bucketMinutes, bucketHours, bucketMarks, bucketOutages, bucketEvidence, bucketLog} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keyVersion); v == nil {
			if err := meta.Put(keyVersion, []byte{schemaVersion}); err != nil {
				return err
			}
		} else if len(v) != 1 || v[0] != schemaVersion {
			return fmt.Errorf("schema version %v not supported by this netpulse (want %d)", v, schemaVersion)
		}
		if err := s.loadMarks(tx); err != nil {
			return err
		}
		if err := s.loadLogMark(tx); err != nil {
			return err
		}
		if err := s.loadLogged(tx); err != nil {
			return err
		}
		if err := tx.Bucket(bucketSeries).ForEach(func(k, v []byte) error {
			var sr Series
			if len(k) != 8 || json.Unmarshal(v, &sr) != nil {
				return fmt.Errorf("%w: series entry %x", errDamaged, k)
			}
			sr.Key = binary.BigEndian.Uint64(k)
			s.series[sr.Key] = sr
			return nil
		}); err != nil {
			return err
		}
		// Name ids are dense (0..n-1): a larger one is damage, and must not
		// size the table.
		names := tx.Bucket(bucketNames)
		s.byID = make([]string, names.Stats().KeyN)
		return names.ForEach(func(k, v []byte) error {
			if len(v) != 4 {
				return fmt.Errorf("%w: name entry %q", errDamaged, k)
			}
			id := binary.BigEndian.Uint32(v)
			if int64(id) >= int64(len(s.byID)) || s.byID[id] != "" {
				return fmt.Errorf("%w: name entry %q has id %d of %d", errDamaged, k, id, len(s.byID))
			}
			s.names[string(k)] = id
			s.byID[id] = string(k)
			return nil
		})
	})
}

// Close writes the evidence still pending and closes the file.
func (s *Store) Close() error {
	return errors.Join(s.flushEvidence(), s.db.Close())
}

// Path is the file's path.
func (s *Store) Path() string { return s.path }

// Put writes results in one transaction (one fsync for the batch).
func (s *Store) Put(results []probe.Result) error {
	if len(results) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var newNames []string
	var toLog []logEntry
	// The evidence pending goes with the batch: one commit for both.
	evidence := s.takeEvidence()
	defer s.doneEvidence(evidence)
	err := s.db.Update(func(tx *bolt.Tx) error {
		newNames = newNames[:0]
		nameID := func(name string) uint32 {
			if id, ok := s.names[name]; ok {
				return id
			}
			id := uint32(len(s.byID))
			s.names[name] = id
			s.byID = append(s.byID, name)
			newNames = append(newNames, name)
			return id
		}
		root := tx.Bucket(bucketResults)
		// Each target's configuration is rendered once per transaction
		// (not once per result) until it is known to be stored.
		inTx := map[*probe.Target]uint64{}
		// Results from the log's mark on go to the log (log.go), in the
		// bucket of their minute: a batch's are in one or two.
		var (
			logMinute = int64(-1)
			logged    *bolt.Bucket
		)
		toLog = toLog[:0]
		// bbolt keeps references to keys and values until the commit:
		// each record gets its own slice of one buffer.
		buf := make([]byte, 0, len(results)*176)
		for i := range results {
			res := &results[i]
			t := res.Target
			sk := res.RunID.Series
			if sk == 0 {
				sk = t.Key
			}
			start := res.Start.UnixNano()
			var b *bolt.Bucket
			if _, known := s.series[sk]; !known || start < s.logMark {
				var err error
				if b, err = s.seriesBucket(tx, root, sk, t); err != nil {
					return err
				}
			}
			ck, seen := inTx[t]
			if !seen {
				var err error
				if ck, err = s.configKey(tx, t); err != nil {
					return err
				}
				inTx[t] = ck
			}
			off := len(buf)
			buf = logKey(buf, start, sk)
			buf = encode(buf, res, ck, nameID)
			// Full slice expressions: a later append that grows buf must not
			// write into a record already handed to bbolt.
			rec := buf[off:len(buf):len(buf)]
			if start >= s.logMark {
				if m := floorTo(start, time.Minute); m != logMinute {
					var err error
					if logged, err = tx.Bucket(bucketLog).CreateBucketIfNotExists(key8(m)); err != nil {
						return err
					}
					logged.FillPercent = 1 // keys arrive nearly in order
					logMinute = m
				}
				if err := logged.Put(rec[:16], rec[16:]); err != nil {
					return err
				}
				toLog = append(toLog, logEntry{sk, start})
			} else {
				if err := b.Put(rec[:8], rec[16:]); err != nil {
					return err
				}
				if m := s.marks[sk]; start < m.minutes {
					s.markDirty(sk, start)
				}
			}
			if cap(buf)-len(buf) < 512 {
				buf = make([]byte, 0, max(len(results)-i, 1)*176)
			}
		}
		if err := writeEvidence(tx, evidence); err != nil {
			return err
		}
		names := tx.Bucket(bucketNames)
		for _, name := range newNames {
			if err := names.Put([]byte(name), binary.BigEndian.AppendUint32(nil, s.names[name])); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// The transaction rolled back: forget the names it would have added.
		for _, name := range newNames {
			delete(s.names, name)
		}
		s.byID = s.byID[:len(s.byID)-len(newNames)]
		return fmt.Errorf("cannot write results to %s: %w", s.path, err)
	}
	s.indexLogged(toLog)
	return nil
}

// seriesBucket returns (creating it and its entry) the series' bucket.
// Called with s.mu held.
func (s *Store) seriesBucket(tx *bolt.Tx, root *bolt.Bucket, key uint64, t *probe.Target) (*bolt.Bucket, error) {
	k := binary.BigEndian.AppendUint64(nil, key)
	if b := root.Bucket(k); b != nil {
		b.FillPercent = 0.95 // appends in time order: fill pages
		return b, nil
	}
	b, err := root.CreateBucket(k)
	if err != nil {
		return nil, err
	}
	b.FillPercent = 0.95
	sr := Series{Key: key, Probe: t.Probe, Type: t.Type, Target: t.Name}
	js, _ := json.Marshal(sr)
	if err := tx.Bucket(bucketSeries).Put(k, js); err != nil {
		return nil, err
	}
	s.series[key] = sr
	return b, nil
}

// configKey stores the target's configuration once and returns its key.
// Called with s.mu held.
func (s *Store) configKey(tx *bolt.Tx, t *probe.Target) (uint64, error) {
	if ck, ok := s.configs[t]; ok && s.stored[ck] {
		return ck, nil
	}
	text := redactedYAML(t.Config)
	h := fnv.New64a()
	h.Write(text)
	ck := h.Sum64()
	k := binary.BigEndian.AppendUint64(nil, ck)
	b := tx.Bucket(bucketConfigs)
	if b.Get(k) == nil {
		if err := b.Put(k, text); err != nil {
			return 0, err
		}
	}
	s.configs[t] = ck
	// Marked stored only once the transaction commits.
	tx.OnCommit(func() { s.stored[ck] = true })
	return ck, nil
}

// Config returns the configuration stored under key, decoded from YAML so
// it renders as JSON with the configuration file's field names.
func (s *Store) Config(key uint64) (any, error) {
	var out any
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketConfigs).Get(binary.BigEndian.AppendUint64(nil, key))
		if v == nil {
			return nil
		}
		return yaml.Unmarshal(v, &out)
	})
	return out, err
}

// SeriesList returns every series with results.
func (s *Store) SeriesList() []Series {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Series, 0, len(s.series))
	for _, sr := range s.series {
		out = append(out, sr)
	}
	return out
}

// fill sets rec from a decoded row; names resolves value name ids.
func fill(rec *Record, sr Series, r row, names []string) {
	values := rec.Values
	*rec = Record{
		RunID: probe.RunID{Series: sr.Key, Start: r.start}.String(),
		Probe: sr.Probe, Type: sr.Type, Target: sr.Target,
		Start: time.Unix(0, r.start).UTC(), Duration: r.duration.Seconds(), Outcome: r.outcome,
		ErrorType: r.errType, Error: r.errText, OnDemand: r.onDemand,
		Values: values, Logs: r.logs, ConfigKey: r.configKey,
	}
	if rec.Values == nil {
		rec.Values = make(map[string]float64, len(r.values))
	}
	if r.hasTrace {
		rec.TraceID = hex.EncodeToString(r.trace[:])
	}
	for _, v := range r.values {
		if int(v.name) < len(names) {
			rec.Values[names[v.name]] = v.v
		}
	}
}

// Get returns the run with the given id, with its log lines.
func (s *Store) Get(id probe.RunID) (Record, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sr, ok := s.series[id.Series]
	if !ok {
		return Record{}, false, nil
	}
	var rec Record
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		key := key8(id.Start)
		var v []byte
		if id.Start >= txLogMark(tx) {
			v = getLogged(tx, id.Series, id.Start)
		} else if b := tx.Bucket(bucketResults).Bucket(seriesKey(id.Series)); b != nil {
			v = b.Get(key)
		}
		if v == nil {
			return nil
		}
		r, err := decode(key, v, true, nil)
		if err != nil {
			return fmt.Errorf("run %s: %w", id, err)
		}
		fill(&rec, sr, r, s.byID)
		found = true
		return nil
	})
	return rec, found, err
}
