package e2e

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/netpulse/netpulse/internal/testutil"
)

const reloadBefore = `
probes:
  - name: lan
    type: ping
    interval: 1s
    timeout: 500ms
    targets: [{name: first, host: 127.0.0.1}]
    ping: {count: 2, packet_interval: 10ms}
`

const reloadAfter = `
probes:
  - name: lan
    type: ping
    interval: 1s
    timeout: 500ms
    targets: [{name: first, host: 127.0.0.1}, {name: second, host: "::1"}]
    ping: {count: 2, packet_interval: 10ms}
`

// TestReloadOnSIGHUP: SIGHUP applies a changed file (a new target starts
// running); an invalid file is refused with its problems in the log, and the
// agent keeps running the last good configuration on the same address.
func TestReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	a := testutil.StartAgent(t, reloadBefore)
	waitRuns(t, a, map[string]string{"target_name": "first", "outcome": "success"}, 1)

	if err := os.WriteFile(a.ConfigFile, []byte(reloadAfter), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitRuns(t, a, map[string]string{"target_name": "second", "outcome": "success"}, 1)
	waitRuns(t, a, map[string]string{"target_name": "first", "outcome": "success"}, 1)

	bad := strings.Replace(reloadAfter, "count: 2", "count: 5000", 1)
	if err := os.WriteFile(a.ConfigFile, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, wait, func() error {
		if !strings.Contains(a.Process.Output(), "probes[0].ping.count: must be between 1 and 1000, not 5000") {
			return errors.New("the log does not show the rejected reload's problem yet")
		}
		return nil
	})
	// Still the last good configuration: both targets keep running.
	before, err := runs(a, map[string]string{"target_name": "second", "outcome": "success"})
	if err != nil {
		t.Fatal(err)
	}
	waitRuns(t, a, map[string]string{"target_name": "second", "outcome": "success"}, before+1)
	if a.Process.Exited() {
		t.Fatal("agent exited after an invalid reload")
	}
}
