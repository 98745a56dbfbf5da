package history

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/netpulse/netpulse/internal/probe"
)

// MarshalJSON encodes a record without reflection: a day of 1-s results is
// 86,400 records, and encoding/json's map handling made up most of a history
// query's time. The output is what the struct tags describe.
func (r Record) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// AppendJSON appends the record's JSON encoding to b.
func (r *Record) AppendJSON(b []byte) []byte {
	b = append(b, `{"run_id":`...)
	b = appendJSONString(b, r.RunID)
	b = append(b, `,"probe":`...)
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
	return append(b, '}')
}

// appendJSONFloat writes NaN and infinities as null (JSON has no such numbers).
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

// AppendRecords appends a JSON array of records (what the API writes for a
// history query; encoding/json would re-validate every MarshalJSON output).
func AppendRecords(b []byte, recs []Record) []byte {
	b = append(b, '[')
	for i := range recs {
		if i > 0 {
			b = append(b, ',')
		}
		b = recs[i].AppendJSON(b)
	}
	return append(b, ']')
}

// FromResult is the Record of a result not yet read back from the store
// (the API's live view and events).
func FromResult(res probe.Result) Record {
	rec := Record{
		RunID: res.RunID.String(), Probe: res.Target.Probe, Type: res.Target.Type, Target: res.Target.Name,
		Start: res.Start.UTC(), Duration: res.Duration.Seconds(), Outcome: res.Outcome,
		ErrorType: res.ErrorType, OnDemand: res.OnDemand, Values: res.Values, Logs: res.Logs,
	}
	if rec.Values == nil {
		rec.Values = map[string]float64{}
	}
	if res.Err != nil {
		rec.Error = res.Err.Error()
		if len(rec.Error) > maxErrorText {
			rec.Error = rec.Error[:maxErrorText] + "…"
		}
	}
	if res.TraceID.IsValid() {
		rec.TraceID = res.TraceID.String()
	}
	return rec
}

// RenderConfig returns a probe configuration as the debug view shows it:
// secrets redacted, the configuration file's field names.
func RenderConfig(cfg any) any {
	var out any
	if err := yaml.Unmarshal(redactedYAML(cfg), &out); err != nil {
		return nil
	}
	return out
}
