package api

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netpulse/netpulse/internal/history"
	"github.com/netpulse/netpulse/internal/logging"
	"github.com/netpulse/netpulse/internal/probe"
)

// resultJSON is one run's result as the API serves it: in a history query,
// as a target's last result, in run now's answer, the debug view and the
// result event. It is built from a stored record (fromRecord) or from a
// live result not yet read back from the store (liveResult), so the two
// read the same; the store's own types carry no encoding.
type resultJSON struct {
	RunID string `json:"run_id,omitempty"` // none for a summary

	Probe     string             `json:"probe"`
	Type      string             `json:"probe_type"`
	Target    string             `json:"target"`
	Start     time.Time          `json:"start"`
	Duration  float64            `json:"duration_seconds"`
	Outcome   string             `json:"outcome"`
	ErrorType string             `json:"error_type,omitempty"`
	Error     string             `json:"error,omitempty"`
	TraceID   string             `json:"trace_id,omitempty"`
	OnDemand  bool               `json:"on_demand,omitempty"`
	Values    map[string]float64 `json:"values"`
	Logs      logLines           `json:"logs,omitempty"`
	// Rollup is set on a summary of a period's runs, which stands for
	// them where the raw results were trimmed (storage.raw_retention).
	Rollup *rollupJSON `json:"rollup,omitempty"`
}

// rollupJSON says what a summary record stands for.
type rollupJSON struct {
	Period    float64                  `json:"period_seconds"`
	Runs      int                      `json:"runs"`
	Failures  int                      `json:"failures"`
	Quantiles map[string]quantilesJSON `json:"quantiles,omitempty"`
}

// quantilesJSON are the quantiles of a value's distribution over a
// period (the type's headline latency).
type quantilesJSON struct {
	P10    float64 `json:"p10"`
	P25    float64 `json:"p25"`
	Median float64 `json:"median"`
	P75    float64 `json:"p75"`
	P90    float64 `json:"p90"`
}

func fromQuantiles(q history.Quantiles) quantilesJSON {
	return quantilesJSON{P10: q.P10, P25: q.P25, Median: q.Median, P75: q.P75, P90: q.P90}
}

// logLines are a run's captured log lines, encoded as logLineJSON.
type logLines []logging.Line

// logLineJSON is one log line of a result (the debug view).
type logLineJSON struct {
	Time    time.Time  `json:"time"`
	Level   string     `json:"level"`
	Message string     `json:"msg"`
	Attrs   []attrJSON `json:"attrs,omitempty"`
}

type attrJSON struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// MarshalJSON writes the lines in the API's shape (few: a debug view's).
func (ls logLines) MarshalJSON() ([]byte, error) {
	out := make([]logLineJSON, len(ls))
	for i, l := range ls {
		out[i] = logLineJSON{Time: l.Time, Level: l.Level, Message: l.Message}
		for _, a := range l.Attrs {
			out[i].Attrs = append(out[i].Attrs, attrJSON{Key: a.Key, Value: a.Value})
		}
	}
	return json.Marshal(out)
}

// fromRecord is the result of a stored record. Values and Logs are
// shared, not copied: a history query converts and encodes each row
// inside the store's callback, before the record is reused.
func fromRecord(rec *history.Record) resultJSON {
	out := resultJSON{RunID: rec.RunID, Probe: rec.Probe, Type: rec.Type, Target: rec.Target, Start: rec.Start,
		Duration: rec.Duration, Outcome: rec.Outcome, ErrorType: rec.ErrorType, Error: rec.Error,
		TraceID: rec.TraceID, OnDemand: rec.OnDemand, Values: rec.Values, Logs: rec.Logs}
	if r := rec.Rollup; r != nil {
		out.Rollup = &rollupJSON{Period: r.Period.Seconds(), Runs: r.Runs, Failures: r.Failures}
		for name, q := range r.Quantiles {
			if out.Rollup.Quantiles == nil {
				out.Rollup.Quantiles = map[string]quantilesJSON{}
			}
			out.Rollup.Quantiles[name] = fromQuantiles(q)
		}
	}
	return out
}

// liveResult is the result of a run as the store will return it once
// written (UTC start, bounded error text), with every log line.
func liveResult(res probe.Result) resultJSON {
	out := resultJSON{
		RunID: res.RunID.String(), Probe: res.Target.Probe, Type: res.Target.Type, Target: res.Target.Name,
		Start: res.Start.UTC(), Duration: res.Duration.Seconds(), Outcome: res.Outcome,
		ErrorType: res.ErrorType, Error: history.ErrorText(res.Err), OnDemand: res.OnDemand,
		Values: res.Values, Logs: res.Logs,
	}
	if out.Values == nil {
		out.Values = map[string]float64{}
	}
	if res.TraceID.IsValid() {
		out.TraceID = res.TraceID.String()
	}
	return out
}

// MarshalJSON encodes a result without reflection: a day of 1-s results is
// 86,400 of them, and encoding/json's map handling made up most of a
// history query's time. The output is what the struct tags describe
// (TestResultJSONMatchesEncodingJSON).
func (r resultJSON) MarshalJSON() ([]byte, error) { return r.appendJSON(nil), nil }

// appendJSON appends the result's JSON encoding to b.
func (r *resultJSON) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if r.RunID != "" {
		b = append(b, `"run_id":`...)
		b = appendJSONString(b, r.RunID)
		b = append(b, ',')
	}
	b = append(b, `"probe":`...)
	b = appendJSONString(b, r.Probe)
	b = append(b, `,"probe_type":`...)
	b = appendJSONString(b, r.Type)
	b = append(b, `,"target":`...)
	b = appendJSONString(b, r.Target)
	b = append(b, `,"start":"`...)
	b = r.Start.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","duration_seconds":`...)
	b = appendJSONFloat(b, r.Duration)
	b = append(b, `,"outcome":`...)
	b = appendJSONString(b, r.Outcome)
	if r.ErrorType != "" {
		b = append(b, `,"error_type":`...)
		b = appendJSONString(b, r.ErrorType)
	}
	if r.Error != "" {
		b = append(b, `,"error":`...)
		b = appendJSONString(b, r.Error)
	}
	if r.TraceID != "" {
		b = append(b, `,"trace_id":`...)
		b = appendJSONString(b, r.TraceID)
	}
	if r.OnDemand {
		b = append(b, `,"on_demand":true`...)
	}
	b = append(b, `,"values":{`...)
	var arr [16]string // no allocation for the usual handful of values
	names := arr[:0]
	for k := range r.Values {
		names = append(names, k)
	}
	slices.Sort(names)
	for i, k := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONFloat(b, r.Values[k])
	}
	b = append(b, '}')
	if len(r.Logs) > 0 {
		logs, _ := json.Marshal(r.Logs)
		b = append(b, `,"logs":`...)
		b = append(b, logs...)
	}
	if r.Rollup != nil {
		// Rare (one per minute or hour of old history): encoding/json.
		rollup, _ := json.Marshal(r.Rollup)
		b = append(b, `,"rollup":`...)
		b = append(b, rollup...)
	}
	return append(b, '}')
}

// appendJSONFloat writes NaN and infinities as null (JSON has no such
// numbers), others in the shortest form that reads back the same.
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// appendJSONString takes the fast path for plain ASCII and lets
// encoding/json escape anything else.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// bucketJSON is one bucket of an aggregate answer, encoded by appendJSON
// as {"start": time, "runs": n, "failures": n, "values": {name: {"min":
// x, "avg": x, "max": x}}}. The values are a slice sorted by name (the
// order encoding/json gives an object's keys), not a map: a day at a
// 1-min step is 1,440 buckets, and their values share one allocation.
type bucketJSON struct {
	Start          time.Time
	Runs, Failures int
	Values         []valueStat
}

// valueStat summarises one value over a bucket.
type valueStat struct {
	Name          string
	Min, Avg, Max float64
	// Quantiles of the type's headline latency, nil for other values.
	Quantiles *quantilesJSON
}

// fromBuckets converts the store's aggregate, keeping only the values
// keep names (all when keep is nil).
func fromBuckets(in []history.Bucket, keep []string) []bucketJSON {
	n := 0
	for i := range in {
		n += len(in[i].Values)
		if keep != nil {
			n -= max(len(in[i].Values)-len(keep), 0)
		}
	}
	all := make([]valueStat, 0, n) // never grows: every bucket's values kept
	out := make([]bucketJSON, len(in))
	for i, b := range in {
		first := len(all)
		for name, st := range b.Values {
			if keep == nil || slices.Contains(keep, name) {
				vs := valueStat{Name: name, Min: st.Min, Avg: st.Avg, Max: st.Max}
				if q, ok := b.Quantiles[name]; ok {
					qj := fromQuantiles(q)
					vs.Quantiles = &qj
				}
				all = append(all, vs)
			}
		}
		vs := all[first:len(all):len(all)]
		slices.SortFunc(vs, func(a, b valueStat) int { return strings.Compare(a.Name, b.Name) })
		out[i] = bucketJSON{Start: b.Start, Runs: b.Runs, Failures: b.Failures, Values: vs}
	}
	return out
}

// appendJSON appends the bucket's JSON encoding to b: the bytes
// encoding/json writes for the shape above (TestBucketJSONMatchesEncodingJSON),
// except that a NaN or infinite figure (a probe reported one) is null
// where encoding/json fails and would leave the whole answer empty.
func (bk *bucketJSON) appendJSON(b []byte) []byte {
	b = append(b, `{"start":"`...)
	b = bk.Start.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","runs":`...)
	b = strconv.AppendInt(b, int64(bk.Runs), 10)
	b = append(b, `,"failures":`...)
	b = strconv.AppendInt(b, int64(bk.Failures), 10)
	b = append(b, `,"values":{`...)
	for i, v := range bk.Values {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, v.Name)
		b = append(b, `:{"min":`...)
		b = appendJSONNumber(b, v.Min)
		b = append(b, `,"avg":`...)
		b = appendJSONNumber(b, v.Avg)
		b = append(b, `,"max":`...)
		b = appendJSONNumber(b, v.Max)
		if q := v.Quantiles; q != nil {
			for _, f := range [...]struct {
				key string
				v   float64
			}{{`,"p10":`, q.P10}, {`,"p25":`, q.P25}, {`,"median":`, q.Median}, {`,"p75":`, q.P75}, {`,"p90":`, q.P90}} {
				b = append(b, f.key...)
				b = appendJSONNumber(b, f.v)
			}
		}
		b = append(b, '}')
	}
	return append(b, "}}"...)
}

// appendAggregate appends an aggregate answer, its keys in the order
// encoding/json gives a map's (as the answer always had), and a newline.
// b grows once, if at all.
func appendAggregate(b []byte, buckets []bucketJSON, since, until time.Time, step time.Duration) []byte {
	size := 256
	for i := range buckets {
		size += 80 + 72*len(buckets[i].Values) // a little over what a ping bucket takes
	}
	b = slices.Grow(b, size)
	b = append(b, `{"buckets":[`...)
	for i := range buckets {
		if i > 0 {
			b = append(b, ',')
		}
		b = buckets[i].appendJSON(b)
	}
	b = append(b, `],"since":"`...)
	b = since.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","step_seconds":`...)
	b = appendJSONNumber(b, step.Seconds())
	b = append(b, `,"until":"`...)
	b = until.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, "\"}\n"...)
}

// appendJSONNumber writes f as encoding/json does (exponent form below
// 1e-6 and from 1e21, "1e-7" rather than "1e-07"), and NaN and infinities
// as null. (Results use appendJSONFloat, whose "1e-07" they have always
// had: the two formats are kept as each answer had them.)
func appendJSONNumber(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if n := len(b); format == 'e' && n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
		b[n-2] = b[n-1] // e-07 → e-7
		b = b[:n-1]
	}
	return b
}
