package ping

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/testutil"
)

// childEnv tells a re-executed test binary which outcome to check.
const childEnv = "NETPULSE_PING_MODE_CHILD"

// TestAutoModeWithoutRoot re-runs this test binary as an unprivileged user
// inside a fresh network namespace, where net.ipv4.ping_group_range is the
// namespace's own: allowing every group, "auto" must fall back to ICMP
// datagram sockets and succeed; allowing none, the run must fail with
// error.type "permission" and a message that says how to fix it.
func TestAutoModeWithoutRoot(t *testing.T) {
	testutil.Need(t, testutil.LookPath("setpriv") != "", "setpriv (util-linux) to drop privileges")
	ns := testutil.NewNetNS(t)
	for _, c := range []struct{ groupRange, expect string }{
		{"0 2147483647", "ok"},
		{"1 0", "permission"},
	} {
		if _, err := ns.Exec("sysctl", "-qw", "net.ipv4.ping_group_range="+c.groupRange); err != nil {
			t.Fatal(err)
		}
		out, err := ns.Exec("env", childEnv+"="+c.expect, "setpriv", "--reuid=65534", "--regid=65534",
			"--clear-groups", "--inh-caps=-all", os.Args[0], "-test.run=^TestAutoModeChild$", "-test.v")
		if err != nil || !strings.Contains(out, "--- PASS: TestAutoModeChild") {
			t.Errorf("ping_group_range %q, as nobody: %v\n%s", c.groupRange, err, out)
		}
	}
}

// TestAutoModeChild is the re-executed half of TestAutoModeWithoutRoot.
func TestAutoModeChild(t *testing.T) {
	expect := os.Getenv(childEnv)
	if expect == "" {
		t.Skip("runs only when re-executed by TestAutoModeWithoutRoot")
	}
	if os.Geteuid() == 0 {
		t.Fatal("child must not run as root")
	}
	p, _ := newTestProber(t, pingConfig("auto"), "")
	target := probe.NewTarget(config.Probe{Name: "lo", Type: "ping"}, config.Target{Name: "lo", Host: "127.0.0.1"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	v, err := p.Probe(ctx, target)
	switch expect {
	case "ok":
		if err != nil || v["packets_received"] != 5 {
			t.Fatalf("auto mode without root: %v, values %v", err, v)
		}
	case "permission":
		if got := probe.ErrorType(ctx, err); got != probe.ErrPermission {
			t.Fatalf("error type %q (%v), want permission", got, err)
		}
		for _, hint := range []string{"CAP_NET_RAW", "net.ipv4.ping_group_range"} {
			if !strings.Contains(err.Error(), hint) {
				t.Errorf("error %q does not mention %s", err, hint)
			}
		}
	}
}
