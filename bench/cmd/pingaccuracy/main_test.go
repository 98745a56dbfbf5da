package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/netpulse/netpulse/internal/testutil"
	"github.com/netpulse/netpulse/internal/testutil/icmplab"
)

// TestMain lets the test binary serve as the child that runs Go pingers
// inside the lab.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == childFlag {
		if err := runChild(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRun runs a short comparison end to end: it keeps the netpulse adapter
// and the child process working as the probe changes. (Figures come from
// bench/ping-accuracy.sh.)
func TestRun(t *testing.T) {
	icmplab.NeedLab(t)
	testutil.Need(t, testutil.LookPath("ping") != "", "iputils ping (apt-get install iputils-ping)")
	var out bytes.Buffer
	err := run([]string{"-count", "20", "-interval", "10ms", "-paths", "5ms/1ms", "-loss", "0.2", "-family", "46",
		"-tools", "iputils-ping,icmp-engine-dgram,netpulse-shared-raw,netpulse-pro-bing-dgram"}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	var rows int
	for line := range strings.Lines(out.String()) {
		f := strings.Fields(line)
		if len(f) < 6 || !strings.HasPrefix(f[0], "5ms") {
			continue
		}
		rows++
		// ping sees exactly the lab's drops, whatever the load. (Whether
		// netpulse does is what the benchmark measures.)
		if f[2] == "iputils-ping" && f[6] != "true" {
			t.Errorf("%s over %s: loss not exact: %s", f[2], f[1], line)
		}
	}
	if rows != 8 {
		t.Errorf("%d result rows, want 4 pingers × 2 families:\n%s", rows, out.String())
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, c := range []struct{ args, want string }{
		{"-paths 10ms/20ms", "Schedule.Jitter"},
		{"-paths x", `-paths: "x": base`},
		{"-family 5", "-family"},
		{"-count 1", "-count"},
		{"-loss 2", "Schedule.Loss"},
	} {
		err := run(strings.Fields(c.args), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("run(%s) = %v, want an error naming %s", c.args, err, c.want)
		}
	}
}

// TestScriptParses has bash read bench/ping-accuracy.sh (it needs root and
// minutes to run).
func TestScriptParses(t *testing.T) {
	if out, err := exec.Command("bash", "-n", "../../ping-accuracy.sh").CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v: %s", err, out)
	}
}
