package probe

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"time"
)

// RunID identifies one run: the (probe, target) series key and the run's
// start time. It needs no index to find a stored run, sorts by time within
// a series, and is unique because runs of one series never overlap.
type RunID struct {
	Series uint64
	Start  int64 // Unix nanoseconds
}

// SeriesKey is the stable 64-bit key of a (probe, target) pair, the same
// across restarts (FNV-1a of the names).
func SeriesKey(probeName, targetName string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(probeName))
	h.Write([]byte{0})
	h.Write([]byte(targetName))
	return h.Sum64()
}

// NewRunID returns the id of the run of t started at start.
func NewRunID(t *Target, start time.Time) RunID {
	return RunID{Series: t.Key, Start: start.UnixNano()}
}

// String is 32 lower-case hex digits.
func (id RunID) String() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], id.Series)
	binary.BigEndian.PutUint64(b[8:], uint64(id.Start))
	return hex.EncodeToString(b[:])
}

// IsZero reports whether id is unset.
func (id RunID) IsZero() bool { return id == RunID{} }

// ParseRunID parses the String form.
func ParseRunID(s string) (RunID, error) {
	if len(s) != 32 {
		return RunID{}, fmt.Errorf("run id must be 32 hex digits, not %d characters", len(s))
	}
	var b [16]byte
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return RunID{}, fmt.Errorf("run id must be 32 hex digits: %w", err)
	}
	return RunID{Series: binary.BigEndian.Uint64(b[:8]), Start: int64(binary.BigEndian.Uint64(b[8:]))}, nil
}

// Demand marks a run started on request (the API's run now) rather than by
// the schedule. Started, when set, is called as soon as the run's span has
// started, with the run's Target, Start, RunID and TraceID; Refused, when
// admission refused the run instead. Neither may block.
type Demand struct {
	Started func(Result)
	Refused func(*Refusal)
}

type demandKey struct{}

// WithDemand returns a context whose run is an on-demand one.
func WithDemand(ctx context.Context, d *Demand) context.Context {
	return context.WithValue(ctx, demandKey{}, d)
}

func demandFrom(ctx context.Context) *Demand {
	d, _ := ctx.Value(demandKey{}).(*Demand)
	return d
}

type runIDKey struct{}

// WithRunID returns a context that carries the run's id: a prober that
// keeps evidence of a run beside its values (Deps.Evidence) finds it there.
func WithRunID(ctx context.Context, id RunID) context.Context {
	return context.WithValue(ctx, runIDKey{}, id)
}

// RunIDFrom returns the id of the run ctx belongs to.
func RunIDFrom(ctx context.Context) (RunID, bool) {
	id, ok := ctx.Value(runIDKey{}).(RunID)
	return id, ok
}

// maxLogLines bounds the log lines kept with one run.
const maxLogLines = 100
