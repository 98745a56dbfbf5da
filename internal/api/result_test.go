package api

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/history"
	"github.com/netpulse/netpulse/internal/logging"
)

// TestResultJSONMatchesEncodingJSON: the hand-written encoder writes what
// the struct tags describe.
func TestResultJSONMatchesEncodingJSON(t *testing.T) {
	for _, res := range []resultJSON{
		{RunID: "ab", Probe: "p", Type: "ping", Target: "t \"quoted\" <x>", Start: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
			Duration: 1.5, Outcome: "failure", ErrorType: "no_reply", Error: "ünïcode\n", TraceID: "0102", OnDemand: true,
			Values: map[string]float64{"b": 2, "a": 0.001, "big": 1e21},
			Logs: []logging.Line{{Level: "INFO", Message: "m"}, {Time: time.Date(2026, 1, 2, 3, 4, 5, 7, time.UTC),
				Level: "DEBUG", Message: "a <b>", Attrs: []logging.Attr{{Key: "k", Value: "v \"q\""}}}}},
		{RunID: "cd", Probe: "p", Type: "ping", Target: "t", Outcome: "success", Values: map[string]float64{}},
		{Probe: "p", Type: "ping", Target: "t", Outcome: "failure", Values: map[string]float64{"a": 1},
			Rollup: &rollupJSON{Period: 60, Runs: 60, Failures: 2, Quantiles: map[string]quantilesJSON{"a": {P10: 1, P25: 2, Median: 3, P75: 4, P90: 5}}}},
	} {
		type plain resultJSON // no MarshalJSON
		want, _ := json.Marshal(plain(res))
		got, _ := json.Marshal(res)
		var w, g any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("invalid JSON %s: %v", got, err)
		}
		_ = json.Unmarshal(want, &w)
		if !reflect.DeepEqual(w, g) {
			t.Errorf("fast JSON differs:\n got %s\nwant %s", got, want)
		}
	}
}

// TestBucketJSONMatchesEncodingJSON: the aggregate's encoder writes the
// bytes encoding/json writes for the documented shape (finite figures),
// keeps only the values asked for, and writes null where encoding/json
// fails.
func TestBucketJSONMatchesEncodingJSON(t *testing.T) {
	type stat struct {
		Min float64 `json:"min"`
		Avg float64 `json:"avg"`
		Max float64 `json:"max"`
	}
	type bucket struct { // the shape of bucketJSON, as encoding/json writes it
		Start    time.Time       `json:"start"`
		Runs     int             `json:"runs"`
		Failures int             `json:"failures"`
		Values   map[string]stat `json:"values"`
	}
	figures := []float64{0, math.Copysign(0, -1), 1, -2.5, 1e-7, 1e-6, 0.000123, 123456789.125, 1e20, 1e21, 1.5e300,
		0.1 + 0.2, 5e-324, math.MaxFloat64 / 4, -1e-9}
	in := history.Bucket{Start: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), Runs: 12, Failures: 3,
		Values: map[string]history.Stat{}}
	want := bucket{Start: in.Start, Runs: in.Runs, Failures: in.Failures, Values: map[string]stat{}}
	for i, f := range figures {
		name := fmt.Sprintf("v%02d <&>", len(figures)-i)
		in.Values[name] = history.Stat{Min: f, Avg: -f, Max: f * 3}
		want.Values[name] = stat{Min: f, Avg: -f, Max: f * 3}
	}
	wantJSON, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	out := fromBuckets([]history.Bucket{in, {Start: in.Start}}, nil)
	if got := out[0].appendJSON(nil); string(got) != string(wantJSON) {
		t.Errorf("fast JSON differs:\n got %s\nwant %s", got, wantJSON)
	}
	if got := string(out[1].appendJSON(nil)); got != `{"start":"2026-01-02T03:04:05.000006Z","runs":0,"failures":0,"values":{}}` {
		t.Errorf("an empty bucket: %s", got)
	}

	out = fromBuckets([]history.Bucket{in}, []string{"v01 <&>", "v03 <&>", "nope"})
	if got := string(out[0].appendJSON(nil)); !strings.HasSuffix(got,
		`"values":{"v01 \u003c\u0026\u003e":{"min":-1e-9,"avg":1e-9,"max":-3.0000000000000004e-9},"v03 \u003c\u0026\u003e":{"min":5e-324,"avg":-5e-324,"max":1.5e-323}}}`) {
		t.Errorf("two values kept: %s", got)
	}

	in.Values = map[string]history.Stat{"x": {Min: math.Inf(-1), Avg: math.NaN(), Max: math.Inf(1)}}
	out = fromBuckets([]history.Bucket{in}, nil)
	if got, want := string(out[0].appendJSON(nil)), `"values":{"x":{"min":null,"avg":null,"max":null}}}`; !strings.HasSuffix(got, want) {
		t.Errorf("non-finite figures: %s, want …%s", got, want)
	}

	// The headline latency's quantiles follow its min, mean and max.
	in.Values = map[string]history.Stat{"rtt": {Min: 1, Avg: 2, Max: 3}, "loss": {}}
	in.Quantiles = map[string]history.Quantiles{"rtt": {P10: 1.1, P25: 1.2, Median: 2, P75: 2.5, P90: 2.9}}
	out = fromBuckets([]history.Bucket{in}, nil)
	if got, want := string(out[0].appendJSON(nil)), `"values":{"loss":{"min":0,"avg":0,"max":0},`+
		`"rtt":{"min":1,"avg":2,"max":3,"p10":1.1,"p25":1.2,"median":2,"p75":2.5,"p90":2.9}}}`; !strings.HasSuffix(got, want) {
		t.Errorf("quantiles: %s, want …%s", got, want)
	}
}

// TestWriteJSONRefusal: a value encoding/json refuses is a 500 saying so,
// not a 200 with an empty body.
func TestWriteJSONRefusal(t *testing.T) {
	rec := httptest.NewRecorder()
	writeJSON(rec, http.StatusOK, map[string]any{"config": map[string]float64{"rate": math.Inf(1)}})
	var e apiError
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != 500 || e.Status != 500 ||
		e.Error != "cannot encode the answer: json: unsupported value: +Inf" {
		t.Errorf("%d %s (%v)", rec.Code, rec.Body, err)
	}
}
