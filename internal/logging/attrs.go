package logging

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"time"
)

// Values reach the log as attributes a log pipeline can read, whatever
// the caller passed: a map becomes a group (values.rtt_avg_seconds=0.0071,
// not values=map[rtt_avg_seconds:0.0071]), a slice or struct becomes JSON
// in text, a nil (error=<nil>, "error":null) is left out, and a duration is
// a number of seconds in JSON (Loki, Elasticsearch and jq compare numbers;
// slog's default is nanoseconds) and Go's 1.5s in text, for people.

// replaceAttr is the handlers' ReplaceAttr: json says which format.
func replaceAttr(json bool) func([]string, slog.Attr) slog.Attr {
	return func(_ []string, a slog.Attr) slog.Attr {
		return normalize(a, json)
	}
}

// normalize rewrites one attribute as described above; an empty Attr is
// dropped by slog's handlers.
func normalize(a slog.Attr, asJSON bool) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindDuration:
		if asJSON {
			return slog.Float64(a.Key, v.Duration().Seconds())
		}
		return a
	case slog.KindAny:
	default:
		return a
	}
	x := v.Any()
	if isNil(x) {
		return slog.Attr{}
	}
	switch x.(type) {
	case error, fmt.Stringer, json.Marshaler, time.Time:
		return a // they say how they are written
	}
	rv := reflect.ValueOf(x)
	for rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		keys := make([]string, 0, rv.Len())
		for _, k := range rv.MapKeys() {
			keys = append(keys, k.String())
		}
		slices.Sort(keys)
		attrs := make([]slog.Attr, 0, len(keys))
		for _, k := range keys {
			attrs = append(attrs, normalize(slog.Any(k, rv.MapIndex(reflect.ValueOf(k).Convert(rv.Type().Key())).Interface()), asJSON))
		}
		if len(attrs) == 0 {
			return slog.Attr{}
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(attrs...)}
	case reflect.Slice, reflect.Array, reflect.Struct:
	default:
		return a
	}
	if asJSON {
		return a // the JSON handler marshals them
	}
	b, err := json.Marshal(x)
	if err != nil {
		return a
	}
	return slog.String(a.Key, string(b))
}

// isNil reports a nil interface, or a nil pointer, map, slice, func or
// channel inside one (a typed nil error writes as <nil> or panics).
func isNil(x any) bool {
	if x == nil {
		return true
	}
	switch rv := reflect.ValueOf(x); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return rv.IsNil()
	}
	return false
}
