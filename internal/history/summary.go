package history

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"
)

// A summary is what a roll-up keeps of one series' runs over one period
// (a minute or an hour): run and failure counts, the mean run duration,
// per kept value its count, min, max and mean, and for one value per
// probe type (its headline latency) a histogram from which any quantile
// is read back within histRelError.
//
// Stored summaries are keyed by the period's start (8 bytes, big-endian
// Unix nanoseconds) in the series' bucket under the level's root bucket:
//
//	version  byte (1)
//	runs     uvarint
//	failures uvarint (runs whose outcome is not success)
//	duration float32 mean run duration, seconds
//	values   uvarint n, then per value uvarint(name id<<2 | ownN<<1 |
//	         constant), [uvarint n when it differs from runs], and one
//	         float32 (constant: min = max = mean) or three (min, max, mean)
//	dist     uvarint (name id + 1, 0: none), then uvarint count of values
//	         <= 0, uvarint buckets, per bucket varint index (delta from the
//	         previous one) and uvarint count
//
// A minute of a 1-Hz ping target takes about 70 bytes.
const summaryVersion = 1

// Histogram buckets are powers of 2^(1/histPerOctave): bucket i holds
// (2^((i-1)/16), 2^(i/16)]. A quantile read back at the bucket's
// geometric middle is within histRelError of the value it stands for.
const (
	histPerOctave = 16
	histRelError  = 0.022 // 2^(1/32) - 1
)

// Spec says what roll-ups keep of one probe type's values.
type Spec struct {
	// Distribution names the value whose distribution is kept (quantiles
	// of a period's runs), empty for none.
	Distribution string
	// Values are the values whose count, min, max and mean are kept; nil
	// keeps every value.
	Values []string
}

// vsum is one value's count, min, max and sum over a period.
type vsum struct {
	name     uint32
	n        uint64
	min, max float64
	sum      float64
}

// summary is a period's summary, decoded or being built.
type summary struct {
	runs, failures uint64
	durSum         float64 // seconds
	values         []vsum  // a type's handful
	pos            []int32 // index+1 in values by name id (0: none)
	dist           int64   // name id of the distribution value, -1 none
	zero           uint64  // distribution values <= 0
	hist           map[int32]uint64
	// hb is the histogram as decoded (sorted), until flatten moves it
	// into hist: merging a decoded summary needs no map of its own.
	hb []hbucket
}

type hbucket struct {
	i int32
	n uint64
}

// flatten moves hb into hist.
func (s *summary) flatten() {
	if len(s.hb) == 0 {
		return
	}
	if s.hist == nil {
		s.hist = make(map[int32]uint64, len(s.hb))
	}
	for _, b := range s.hb {
		s.hist[b.i] += b.n
	}
	s.hb = nil
}

func newSummary(dist int64) *summary { return &summary{dist: dist} }

// histIndex is the bucket of v > 0.
func histIndex(v float64) int32 {
	return int32(math.Ceil(math.Log2(v) * histPerOctave))
}

// histMid is the geometric middle of bucket i.
func histMid(i int32) float64 { return math.Exp2((float64(i) - 0.5) / histPerOctave) }

// stat returns the entry of value id, adding it.
func (s *summary) stat(id uint32) *vsum {
	if int(id) < len(s.pos) && s.pos[id] > 0 {
		return &s.values[s.pos[id]-1]
	}
	if int(id) < 1<<16 { // name ids are few; a damaged one is not indexed
		for int(id) >= len(s.pos) {
			s.pos = append(s.pos, 0)
		}
		s.pos[id] = int32(len(s.values) + 1)
	} else {
		for i := range s.values {
			if s.values[i].name == id {
				return &s.values[i]
			}
		}
	}
	s.values = append(s.values, vsum{name: id, min: math.Inf(1), max: math.Inf(-1)})
	return &s.values[len(s.values)-1]
}

// addRun counts one raw run; keep says which value ids are summarised.
func (s *summary) addRun(r *row, keep func(uint32) bool) {
	s.runs++
	if r.outcome != "success" {
		s.failures++
	}
	s.durSum += r.duration.Seconds()
	for _, v := range r.values {
		if math.IsNaN(v.v) || !keep(v.name) {
			continue
		}
		st := s.stat(v.name)
		st.n++
		st.min, st.max = min(st.min, v.v), max(st.max, v.v)
		st.sum += v.v
		if int64(v.name) == s.dist && !math.IsInf(v.v, 0) {
			s.addDist(v.v, 1)
		}
	}
}

func (s *summary) addDist(v float64, n uint64) {
	if v <= 0 {
		s.zero += n
		return
	}
	if s.hist == nil {
		s.hist = make(map[int32]uint64, 16)
	}
	s.hist[histIndex(v)] += n
}

// merge adds summary o (of a shorter period, or of another part of this
// one).
func (s *summary) merge(o *summary) {
	s.runs += o.runs
	s.failures += o.failures
	s.durSum += o.durSum
	for _, v := range o.values {
		st := s.stat(v.name)
		st.n += v.n
		st.min, st.max = min(st.min, v.min), max(st.max, v.max)
		st.sum += v.sum
	}
	if o.dist >= 0 && (s.dist < 0 || s.dist == o.dist) {
		s.dist = o.dist
		s.zero += o.zero
		if s.hist == nil && (len(o.hist) > 0 || len(o.hb) > 0) {
			s.hist = make(map[int32]uint64, 16)
		}
		for i, n := range o.hist {
			s.hist[i] += n
		}
		for _, b := range o.hb {
			s.hist[b.i] += b.n
		}
	}
}

// Quantiles of a value's distribution over a period.
type Quantiles struct {
	P10, P25, Median, P75, P90 float64
}

// quantiles reads the distribution's quantiles back from the histogram,
// each within histRelError and clamped to the value's exact min and max;
// ok is false when there is no distribution.
func (s *summary) quantiles() (q Quantiles, ok bool) {
	if s.dist < 0 {
		return q, false
	}
	s.flatten()
	var st *vsum
	for i := range s.values {
		if int64(s.values[i].name) == s.dist {
			st = &s.values[i]
		}
	}
	total := s.zero
	idx := make([]int32, 0, len(s.hist))
	for i, n := range s.hist {
		idx = append(idx, i)
		total += n
	}
	if st == nil || total == 0 {
		return q, false
	}
	slices.Sort(idx)
	at := func(p float64) float64 {
		// The value of rank p·(total-1), 0-based, as sort.Float64s and a
		// nearest-rank quantile would find it.
		rank := uint64(math.Round(p * float64(total-1)))
		if rank < s.zero {
			return max(min(0, st.max), st.min)
		}
		seen := s.zero
		for _, i := range idx {
			seen += s.hist[i]
			if rank < seen {
				return max(min(histMid(i), st.max), st.min)
			}
		}
		return st.max
	}
	return Quantiles{P10: at(0.10), P25: at(0.25), Median: at(0.5), P75: at(0.75), P90: at(0.9)}, true
}

// encode appends the stored form of s.
func (s *summary) encode(b []byte) []byte {
	b = append(b, summaryVersion)
	b = binary.AppendUvarint(b, s.runs)
	b = binary.AppendUvarint(b, s.failures)
	dur := 0.0
	if s.runs > 0 {
		dur = s.durSum / float64(s.runs)
	}
	b = binary.BigEndian.AppendUint32(b, math.Float32bits(float32(dur)))
	b = binary.AppendUvarint(b, uint64(len(s.values)))
	for _, v := range s.values {
		mean := v.sum / float64(max(v.n, 1))
		constant := float32(v.min) == float32(v.max)
		head := uint64(v.name) << 2
		if v.n != s.runs {
			head |= 2
		}
		if constant {
			head |= 1
		}
		b = binary.AppendUvarint(b, head)
		if v.n != s.runs {
			b = binary.AppendUvarint(b, v.n)
		}
		if constant {
			b = binary.BigEndian.AppendUint32(b, math.Float32bits(float32(v.min)))
			continue
		}
		for _, f := range [3]float64{v.min, v.max, mean} {
			b = binary.BigEndian.AppendUint32(b, math.Float32bits(float32(f)))
		}
	}
	s.flatten()
	if s.dist < 0 || (len(s.hist) == 0 && s.zero == 0) {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(s.dist)+1)
	b = binary.AppendUvarint(b, s.zero)
	idx := make([]int32, 0, len(s.hist))
	for i := range s.hist {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	b = binary.AppendUvarint(b, uint64(len(idx)))
	prev := int32(0)
	for _, i := range idx {
		b = binary.AppendVarint(b, int64(i-prev))
		b = binary.AppendUvarint(b, s.hist[i])
		prev = i
	}
	return b
}

// maxSummaryItems bounds what a damaged summary can make decode allocate.
const maxSummaryItems = 1 << 16

// decodeSummary parses a stored summary.
func decodeSummary(data []byte) (*summary, error) {
	d := decoder{b: data}
	if v := d.byte(); v != summaryVersion && d.err == nil {
		return nil, fmt.Errorf("summary version %d not supported", v)
	}
	s := &summary{dist: -1}
	s.runs = d.uvarint()
	s.failures = d.uvarint()
	f32 := func() float64 {
		if b := d.bytes(4); b != nil {
			return float64(math.Float32frombits(binary.BigEndian.Uint32(b)))
		}
		return 0
	}
	s.durSum = f32() * float64(s.runs)
	n := d.uvarint()
	if n > maxSummaryItems {
		return nil, errCorrupt
	}
	s.values = make([]vsum, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		head := d.uvarint()
		v := vsum{name: uint32(head >> 2), n: s.runs}
		if head&2 != 0 {
			v.n = d.uvarint()
		}
		if head&1 != 0 {
			v.min = f32()
			v.max, v.sum = v.min, v.min*float64(v.n)
		} else {
			v.min, v.max = f32(), f32()
			v.sum = f32() * float64(v.n)
		}
		s.values = append(s.values, v)
	}
	if id := d.uvarint(); id > 0 && d.err == nil {
		s.dist = int64(id - 1)
		s.zero = d.uvarint()
		nb := d.uvarint()
		if nb > maxSummaryItems {
			return nil, errCorrupt
		}
		s.hb = make([]hbucket, 0, nb)
		prev := int64(0)
		for i := uint64(0); i < nb && d.err == nil; i++ {
			prev += d.varint()
			s.hb = append(s.hb, hbucket{int32(prev), d.uvarint()})
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	return s, nil
}

// Rollup describes a history record that summarises the runs of a
// period instead of being one run: results older than the raw retention
// are served as such records.
type Rollup struct {
	Period   time.Duration
	Runs     int
	Failures int
	// Quantiles of the type's distribution value (its headline latency),
	// keyed by the value's name; nil when the type has none.
	Quantiles map[string]Quantiles
}
