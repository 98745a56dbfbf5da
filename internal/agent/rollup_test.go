package agent

import (
	"slices"
	"testing"

	"github.com/netpulse/netpulse/internal/probes"
)

// TestRollupSpecs: history roll-ups keep each latency type's headline
// latency distribution and the values its views and alerts use; a type
// without a headline latency (speed tests) keeps every value.
func TestRollupSpecs(t *testing.T) {
	specs := rollupSpecs(probes.Registry.Types())
	ping, ok := specs["ping"]
	if !ok || ping.Distribution != "rtt_avg_seconds" {
		t.Fatalf("ping spec %+v", ping)
	}
	for _, v := range []string{"rtt_min_seconds", "rtt_max_seconds", "jitter_seconds", "loss_ratio", "packets_sent", "packets_received"} {
		if !slices.Contains(ping.Values, v) {
			t.Errorf("ping roll-ups drop %s: %v", v, ping.Values)
		}
	}
	if slices.Contains(ping.Values, "rtt_p10_seconds") {
		t.Errorf("ping roll-ups keep the per-run quantiles, which the distribution replaces: %v", ping.Values)
	}
	if http, ok := specs["http"]; !ok || http.Distribution != "duration_seconds" || !slices.Contains(http.Values, "connect_seconds") {
		t.Errorf("http spec %+v", http)
	}
	if sp, ok := specs["speedtest"]; ok {
		t.Errorf("speedtest has a spec (%+v); it should keep every value", sp)
	}
}
