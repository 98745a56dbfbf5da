package api

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/logging"
)

// TestResultJSONMatchesEncodingJSON: the hand-written encoder writes what
// the struct tags describe.
func TestResultJSONMatchesEncodingJSON(t *testing.T) {
	for _, res := range []resultJSON{
		{RunID: "ab", Probe: "p", Type: "ping", Target: "t \"quoted\" <x>", Start: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
			Duration: 1.5, Outcome: "failure", ErrorType: "no_reply", Error: "ünïcode\n", TraceID: "0102", OnDemand: true,
			Values: map[string]float64{"b": 2, "a": 0.001, "big": 1e21}, Logs: []logging.Line{{Level: "INFO", Message: "m"}}},
		{RunID: "cd", Probe: "p", Type: "ping", Target: "t", Outcome: "success", Values: map[string]float64{}},
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
