package e2e

import (
	"fmt"
	"testing"

	"github.com/netpulse/netpulse/internal/testutil"
)

// TestUnprivilegedPing runs the agent with privileged: "false": ICMP
// datagram sockets (net.ipv4.ping_group_range) to 127.0.0.1 and ::1, end to
// end: runs succeed and the echo spans say the burst was unprivileged.
func TestUnprivilegedPing(t *testing.T) {
	t.Parallel()
	testutil.Need(t, testutil.DatagramICMPAllowed(),
		`ICMP datagram sockets for this group: sysctl -w net.ipv4.ping_group_range="0 2147483647"`)
	col := testutil.StartCollector(t)
	a := testutil.StartAgent(t, otlpBlock(col.GRPCEndpoint, "grpc")+`
probes:
  - name: unpriv
    type: ping
    interval: 1s
    timeout: 800ms
    targets:
      - {host: 127.0.0.1, name: v4}
      - {host: "::1", name: v6}
    ping: {count: 3, packet_interval: 50ms, privileged: "false"}
`)
	for _, target := range []string{"v4", "v6"} {
		waitRuns(t, a, map[string]string{"probe_name": "unpriv", "target_name": target, "outcome": "success"}, 2)
	}
	fams, err := a.Families()
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := fams.Sum("netpulse_probe_runs_total", map[string]string{"probe_name": "unpriv", "outcome": "failure"}); v != 0 {
		t.Errorf("%v failed unprivileged runs", v)
	}

	testutil.Eventually(t, wait, func() error {
		r, err := col.Read()
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, run := range r.SpansNamed("ping unpriv") {
			for _, echo := range r.SpansNamed("echo") {
				if echo.ParentSpanID == run.SpanID && echo.Attributes.Has(map[string]string{"ping.privileged": "false"}) {
					name, _ := run.Attributes.Get("target.name")
					seen[name] = true
				}
			}
		}
		if !seen["v4"] || !seen["v6"] {
			return fmt.Errorf("unprivileged echo spans seen for %v, want v4 and v6", seen)
		}
		return nil
	})
}
