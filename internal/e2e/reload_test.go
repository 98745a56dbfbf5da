package e2e

import (
	"errors"
	"fmt"
	"net/http"
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
// running, the unchanged one's counters continue); an invalid file is refused with its problems in the log, and the
// agent keeps running the last good configuration on the same address.
func TestReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	a := testutil.StartAgent(t, reloadBefore)
	first := waitRuns(t, a, map[string]string{"target_name": "first", "outcome": "success"}, 2)

	if err := os.WriteFile(a.ConfigFile, []byte(reloadAfter), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitRuns(t, a, map[string]string{"target_name": "second", "outcome": "success"}, 1)
	// Reloaded by difference: the unchanged target's counter went on, from
	// where it was (a replaced agent would have started it from zero).
	if n, err := runs(a, map[string]string{"target_name": "first", "outcome": "success"}); err != nil || n < first {
		t.Errorf("runs of the unchanged target after the reload: %v (%v), %v before: reset", n, err, first)
	}

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

// TestReloadEndpoint: with --web.enable-lifecycle, POST /-/reload reloads as
// SIGHUP does, and netpulse_config_last_reload_successful says how the last
// load went (0 after an invalid file, 1 again after a good one), with the
// time of the last success. Without the flag there is no such endpoint.
func TestReloadEndpoint(t *testing.T) {
	t.Parallel()
	a := testutil.StartAgent(t, reloadBefore, testutil.AgentArgs("--web.enable-lifecycle"))
	lastReload := func(want float64) {
		t.Helper()
		testutil.Eventually(t, wait, func() error {
			fams, err := a.Families()
			if err != nil {
				return err
			}
			ok, found := fams.Sum("netpulse_config_last_reload_successful", nil)
			at, _ := fams.Sum("netpulse_config_last_reload_success_timestamp_seconds", nil)
			if !found || ok != want || at <= 0 {
				return fmt.Errorf("netpulse_config_last_reload_successful = %v (present %v), success at %v; want %v", ok, found, at, want)
			}
			return nil
		})
	}
	post := func() {
		t.Helper()
		resp, err := http.Post(a.URL+"/-/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /-/reload: %s", resp.Status)
		}
	}
	lastReload(1)
	bad := strings.Replace(reloadAfter, "count: 2", "count: 5000", 1)
	if err := os.WriteFile(a.ConfigFile, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	post()
	lastReload(0)
	if err := os.WriteFile(a.ConfigFile, []byte(reloadAfter), 0o600); err != nil {
		t.Fatal(err)
	}
	post()
	lastReload(1)
	waitRuns(t, a, map[string]string{"target_name": "second", "outcome": "success"}, 1)

	plain := testutil.StartAgent(t, reloadBefore)
	resp, err := http.Post(plain.URL+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusAccepted {
		t.Error("POST /-/reload accepted without --web.enable-lifecycle")
	}
}
