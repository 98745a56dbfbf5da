package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/testutil"
)

// Probe timing shared by the tests: a run every second, a short burst, so a
// test sees several runs within a few seconds.
const (
	interval = time.Second
	wait     = 20 * time.Second // deadline for anything that should happen within a few runs
)

// loopbackProbe is a ping probe named "loop" against 127.0.0.1 (target "v4")
// with a user label, plus extra YAML lines for the ping block.
func loopbackProbe(pingExtra ...string) string {
	return fmt.Sprintf(`
  - name: loop
    type: ping
    interval: 1s
    timeout: 800ms
    targets:
      - {host: 127.0.0.1, name: v4, labels: {link: lo}}
    ping:
      count: 3
      packet_interval: 50ms
%s`, indent(pingExtra, "      "))
}

func indent(lines []string, prefix string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(prefix + l + "\n")
	}
	return b.String()
}

// otlpBlock is the telemetry section for pushing to endpoint, with extra
// lines in the otlp block; metrics are pushed every second unless extra
// sets metrics_interval.
func otlpBlock(endpoint, protocol string, extra ...string) string {
	if !strings.Contains(strings.Join(extra, "\n"), "metrics_interval:") {
		extra = append(extra, "metrics_interval: 1s")
	}
	return fmt.Sprintf(`telemetry:
  otlp:
    endpoint: %q
    protocol: %s
    insecure: true
%s`, endpoint, protocol, indent(extra, "    "))
}

// runs returns the agent's netpulse_probe_runs_total for the series whose
// labels include labels (0 if there is none yet).
func runs(a *testutil.Agent, labels map[string]string) (float64, error) {
	fams, err := a.Families()
	if err != nil {
		return 0, err
	}
	v, _ := fams.Sum("netpulse_probe_runs_total", labels)
	return v, nil
}

// waitRuns waits until the runs counter for labels reaches at least n and
// returns its value.
func waitRuns(t *testing.T, a *testutil.Agent, labels map[string]string, n float64) float64 {
	t.Helper()
	var got float64
	testutil.Eventually(t, wait, func() error {
		v, err := runs(a, labels)
		if err != nil {
			return err
		}
		if got = v; v < n {
			return fmt.Errorf("netpulse_probe_runs_total%v = %v, want >= %v", labels, v, n)
		}
		return nil
	})
	return got
}

// gauge returns the value of a single-series gauge selected by labels.
func gauge(a *testutil.Agent, name string, labels map[string]string) (float64, bool, error) {
	fams, err := a.Families()
	if err != nil {
		return 0, false, err
	}
	v, ok := fams.Sum(name, labels)
	return v, ok, nil
}

var success = map[string]string{"probe_name": "loop", "target_name": "v4", "outcome": "success"}
