package history

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/netpulse/netpulse/internal/logging"
	"github.com/netpulse/netpulse/internal/probe"
)

// A stored result is a compact binary record, keyed by its start time
// (8 bytes, big-endian Unix nanoseconds) inside its series' bucket, or by
// its start and series key (16 bytes) in the log (log.go):
//
//	version  byte (1)
//	flags    byte: 1 on demand, 2 trace id, 4 error, 8 logs
//	duration uvarint nanoseconds
//	outcome  byte (index into outcomes, or 255 + string)
//	[error]  string error type, string error text
//	[trace]  16 bytes
//	config   8 bytes: key of the run's config in the configs bucket
//	values   uvarint n, then per value uvarint(name id<<1 | isInt) and a
//	         uvarint (small non-negative integers: packet counts, a loss of
//	         0) or 8 bytes of float64
//	[logs]   uvarint n, then per line varint offset from start (ns),
//	         string level, string message, uvarint n, n × (string, string)
//
// Strings are a uvarint length and bytes. Value names are interned in the
// names bucket, so a ping result takes about 80 bytes.
const recordVersion = 1

const (
	flagOnDemand = 1 << iota
	flagTrace
	flagError
	flagLogs
)

var outcomes = []string{probe.OutcomeSuccess, probe.OutcomeFailure, probe.OutcomeTimeout, probe.OutcomeSkipped}

// maxErrorText bounds the error text kept with a record.
const maxErrorText = 1024

// row is a record as stored, before names are resolved.
type row struct {
	start      int64
	duration   time.Duration
	outcome    string
	errType    string
	errText    string
	trace      [16]byte
	hasTrace   bool
	onDemand   bool
	configKey  uint64
	values     []value
	logs       []logging.Line
	logsParsed bool
}

type value struct {
	name uint32
	v    float64
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// encode appends the record of res; names maps value names to ids.
func encode(b []byte, res *probe.Result, configKey uint64, nameID func(string) uint32) []byte {
	var flags byte
	if res.OnDemand {
		flags |= flagOnDemand
	}
	if res.TraceID.IsValid() {
		flags |= flagTrace
	}
	if res.Err != nil || res.ErrorType != "" {
		flags |= flagError
	}
	// Log lines are kept for failed and on-demand runs: a successful
	// scheduled run's lines (its summary) would double the size of history.
	if len(res.Logs) > 0 && (res.Outcome != probe.OutcomeSuccess || res.OnDemand) {
		flags |= flagLogs
	}
	b = append(b, recordVersion, flags)
	b = binary.AppendUvarint(b, uint64(max(res.Duration, 0)))
	oc := byte(255)
	for i, o := range outcomes {
		if o == res.Outcome {
			oc = byte(i)
		}
	}
	b = append(b, oc)
	if oc == 255 {
		b = appendString(b, res.Outcome)
	}
	if flags&flagError != 0 {
		text := ""
		if res.Err != nil {
			text = res.Err.Error()
		}
		if len(text) > maxErrorText {
			text = text[:maxErrorText] + "…"
		}
		b = appendString(b, res.ErrorType)
		b = appendString(b, text)
	}
	if flags&flagTrace != 0 {
		b = append(b, res.TraceID[:]...)
	}
	b = binary.BigEndian.AppendUint64(b, configKey)
	b = binary.AppendUvarint(b, uint64(len(res.Values)))
	for name, v := range res.Values {
		id := uint64(nameID(name)) << 1
		if v >= 0 && v < 1<<20 && v == math.Trunc(v) {
			b = binary.AppendUvarint(b, id|1)
			b = binary.AppendUvarint(b, uint64(v))
		} else {
			b = binary.AppendUvarint(b, id)
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(v))
		}
	}
	if flags&flagLogs != 0 {
		b = binary.AppendUvarint(b, uint64(len(res.Logs)))
		for _, l := range res.Logs {
			b = binary.AppendVarint(b, l.Time.Sub(res.Start).Nanoseconds())
			b = appendString(b, l.Level)
			b = appendString(b, l.Message)
			b = binary.AppendUvarint(b, uint64(len(l.Attrs)))
			for _, a := range l.Attrs {
				b = appendString(b, a.Key)
				b = appendString(b, a.Value)
			}
		}
	}
	return b
}

var errCorrupt = errors.New("corrupt record")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.err = errCorrupt
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil || n < 0 || len(d.b) < n {
		d.err = errCorrupt
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u64() uint64 {
	if b := d.bytes(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) string() string { return string(d.bytes(int(d.uvarint()))) }

// decode parses a record; logs are parsed only when withLogs is set (a
// history query has no use for them). values is reused when it has room.
func decode(key, data []byte, withLogs bool, values []value) (row, error) {
	if len(key) != 8 {
		return row{}, errCorrupt
	}
	r := row{start: int64(binary.BigEndian.Uint64(key)), values: values[:0]}
	d := decoder{b: data}
	if v := d.byte(); v != recordVersion && d.err == nil {
		return row{}, fmt.Errorf("record version %d not supported", v)
	}
	flags := d.byte()
	r.onDemand = flags&flagOnDemand != 0
	r.duration = time.Duration(d.uvarint())
	if oc := d.byte(); int(oc) < len(outcomes) {
		r.outcome = outcomes[oc]
	} else {
		r.outcome = d.string()
	}
	if flags&flagError != 0 {
		r.errType, r.errText = d.string(), d.string()
	}
	if flags&flagTrace != 0 {
		copy(r.trace[:], d.bytes(16))
		r.hasTrace = true
	}
	r.configKey = d.u64()
	n := d.uvarint()
	for i := uint64(0); i < n && d.err == nil; i++ {
		id := d.uvarint()
		if id&1 == 1 {
			r.values = append(r.values, value{uint32(id >> 1), float64(d.uvarint())})
		} else {
			r.values = append(r.values, value{uint32(id >> 1), math.Float64frombits(d.u64())})
		}
	}
	if withLogs && flags&flagLogs != 0 {
		r.logsParsed = true
		n := d.uvarint()
		for i := uint64(0); i < n && d.err == nil; i++ {
			l := logging.Line{Time: time.Unix(0, r.start+d.varint()).UTC(), Level: d.string(), Message: d.string()}
			na := d.uvarint()
			for j := uint64(0); j < na && d.err == nil; j++ {
				l.Attrs = append(l.Attrs, logging.Attr{Key: d.string(), Value: d.string()})
			}
			r.logs = append(r.logs, l)
		}
	}
	return r, d.err
}
