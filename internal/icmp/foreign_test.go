//go:build linux

package icmp

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/testutil"
)

// TestForeignReplies: two engines and iputils ping ping the same host at the
// same time. Raw sockets see each other's replies; neither engine may take
// the other's (or ping's) replies for its own, nor count them as duplicates.
func TestForeignReplies(t *testing.T) {
	for _, mode := range []Mode{ModeRaw, ModeDatagram} {
		t.Run(mode.String(), func(t *testing.T) {
			a, b := openEngine(t, mode), openEngine(t, mode)
			dst := netip.MustParseAddr("127.0.0.1")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if p := testutil.LookPath("ping"); p != "" {
				cmd := exec.CommandContext(ctx, p, "-n", "-q", "-c", "100", "-i", "0.005", "127.0.0.1")
				testutil.StartProcess(t, "iputils-ping", cmd)
			}
			var wg sync.WaitGroup
			var ra, rb Result
			var ea, eb error
			req := Request{Dst: dst, Count: 50, Interval: 5 * time.Millisecond, Timeout: 3 * time.Second}
			wg.Go(func() { ra, ea = a.Ping(ctx, req) })
			wg.Go(func() { rb, eb = b.Ping(ctx, req) })
			wg.Wait()
			for name, c := range map[string]struct {
				res Result
				err error
				e   *Engine
			}{"a": {ra, ea, a}, "b": {rb, eb, b}} {
				if c.err != nil {
					t.Fatalf("engine %s: %v", name, c.err)
				}
				for _, ec := range c.res.Echoes {
					if ec.Fate != Replied || ec.Duplicates != 0 {
						t.Errorf("engine %s: echo %+v", name, ec)
					}
				}
				st := c.e.Stats()
				if st.Received != 50 || st.Duplicates != 0 || st.Late != 0 {
					t.Errorf("engine %s: stats %+v", name, st)
				}
				t.Logf("engine %s (%v): %d foreign messages ignored", name, mode, st.Foreign)
				if mode == ModeRaw && st.Foreign == 0 {
					t.Errorf("engine %s: a raw socket saw none of the other engine's replies", name)
				}
			}
		})
	}
}

// childEnv tells a re-executed test binary which check to run as nobody.
const childEnv = "NETPULSE_ICMP_UNPRIVILEGED_CHILD"

// TestUnprivileged re-runs this test binary as user nobody inside a fresh
// network namespace, whose net.ipv4.ping_group_range is its own: allowing
// every group, auto mode must use datagram sockets (IPv4 and IPv6) and raw
// mode must fail saying how to fix it; allowing none, every mode must fail
// saying how to fix it.
func TestUnprivileged(t *testing.T) {
	testutil.Need(t, testutil.LookPath("setpriv") != "", "setpriv (util-linux) to drop privileges")
	ns := testutil.NewNetNS(t)
	for _, c := range []struct{ groupRange, expect string }{
		{"0 2147483647", "allowed"},
		{"1 0", "denied"},
	} {
		if _, err := ns.Exec("sysctl", "-qw", "net.ipv4.ping_group_range="+c.groupRange); err != nil {
			t.Fatal(err)
		}
		out, err := ns.Exec("env", childEnv+"="+c.expect, "setpriv", "--reuid=65534", "--regid=65534",
			"--clear-groups", "--inh-caps=-all", os.Args[0], "-test.run=^TestUnprivilegedChild$", "-test.v")
		if err != nil || !strings.Contains(out, "--- PASS: TestUnprivilegedChild") {
			t.Errorf("ping_group_range %q, as nobody: %v\n%s", c.groupRange, err, out)
		}
	}
}

// TestUnprivilegedChild is the re-executed half of TestUnprivileged.
func TestUnprivilegedChild(t *testing.T) {
	expect := os.Getenv(childEnv)
	if expect == "" {
		t.Skip("runs only when re-executed by TestUnprivileged")
	}
	if os.Geteuid() == 0 {
		t.Fatal("child must not run as root")
	}
	if _, err := Open(Options{Mode: ModeRaw}); err == nil || !strings.Contains(err.Error(), "setcap cap_net_raw") {
		t.Errorf("raw mode as nobody: error %v, want one saying to setcap cap_net_raw", err)
	}
	switch expect {
	case "allowed":
		e, err := Open(Options{Mode: ModeAuto})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		for _, dst := range []string{"127.0.0.1", "::1"} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			res, err := e.Ping(ctx, Request{Dst: netip.MustParseAddr(dst), Count: 3, Interval: 10 * time.Millisecond})
			cancel()
			if err != nil {
				t.Fatalf("%s: %v", dst, err)
			}
			if res.Privileged {
				t.Errorf("%s: raw socket as nobody?", dst)
			}
			for _, ec := range res.Echoes {
				if ec.Fate != Replied || ec.RTT <= 0 {
					t.Errorf("%s: echo %+v", dst, ec)
				}
			}
		}
	case "denied":
		for _, mode := range []Mode{ModeAuto, ModeDatagram} {
			_, err := Open(Options{Mode: mode})
			if err == nil || !strings.Contains(err.Error(), "net.ipv4.ping_group_range") {
				t.Errorf("%v mode, datagram sockets denied: error %v, want one naming net.ipv4.ping_group_range", mode, err)
			}
		}
	}
}
