package e2e

import (
	"fmt"
	"net/http"
	"net/netip"
	"testing"

	"github.com/netpulse/netpulse/internal/testutil"
)

// TestFailingTargets runs three targets side by side: a name the configured
// DNS server does not know, an address in a test network namespace that
// never answers ICMP echo, and a name that resolves to loopback. The failures
// are counted with their bounded error_type, the silent target reports loss 1
// and success 0, and the agent stays healthy while the good target keeps
// succeeding.
func TestFailingTargets(t *testing.T) {
	t.Parallel()
	ns := testutil.NewNetNS(t)
	// The namespace's kernel ignores echo requests: the packets arrive (the
	// veth link and ARP work) and nothing answers.
	if _, err := ns.Exec("sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1"); err != nil {
		t.Fatal(err)
	}
	dns := testutil.DNSServer(t, map[string]netip.Addr{"good.test": netip.MustParseAddr("127.0.0.1")})
	a := testutil.StartAgent(t, fmt.Sprintf(`
global: {resolver: %q}
probes:
  - name: fail
    type: ping
    interval: 1s
    timeout: 800ms
    targets:
      - {host: nowhere.test, name: unresolvable}
      - {host: %s, name: silent}
      - {host: good.test, name: good}
    ping: {count: 3, packet_interval: 50ms}
`, dns, ns.NSAddr))

	target := func(name string, kv ...string) map[string]string {
		m := map[string]string{"probe_name": "fail", "target_name": name}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	waitRuns(t, a, target("unresolvable", "outcome", "failure", "error_type", "resolve"), 2)
	waitRuns(t, a, target("silent", "outcome", "failure", "error_type", "no_reply"), 2)
	good := waitRuns(t, a, target("good", "outcome", "success"), 1)

	fams, err := a.Families()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"netpulse_ping_loss_ratio", target("silent"), 1},
		{"netpulse_probe_success", target("silent"), 0},
		{"netpulse_probe_success", target("unresolvable"), 0},
		{"netpulse_probe_success", target("good"), 1},
		{"netpulse_ping_loss_ratio", target("good"), 0},
		// Failures are classified, never timeouts: the burst ends before the run's deadline.
		{"netpulse_probe_runs_total", target("silent", "outcome", "timeout"), 0},
		{"netpulse_probe_runs_total", target("silent", "outcome", "success"), 0},
	} {
		if got, _ := fams.Sum(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// An unresolvable target sent nothing, so it measured no loss: its
	// failure is a resolve failure, not 100 % packet loss.
	if loss, ok := fams.Sum("netpulse_ping_loss_ratio", target("unresolvable")); ok {
		t.Errorf("netpulse_ping_loss_ratio of the unresolvable target = %v, want no series", loss)
	}
	// The silent target sent its packets and got nothing back.
	sent, _ := fams.Sum("netpulse_ping_packets_sent_total", target("silent"))
	received, _ := fams.Sum("netpulse_ping_packets_received_total", target("silent"))
	if sent < 3 || received != 0 {
		t.Errorf("silent target: %v packets sent, %v received; want >= 3 and 0", sent, received)
	}
	// No RTT gauge for a target without replies.
	if _, ok := fams.Sum("netpulse_ping_rtt_avg_seconds", target("silent")); ok {
		t.Errorf("netpulse_ping_rtt_avg_seconds is exported for the silent target")
	}

	// Still healthy, and the good target keeps succeeding.
	waitRuns(t, a, target("good", "outcome", "success"), good+2)
	if status, body, err := a.Get("/healthz"); err != nil || status != http.StatusOK {
		t.Errorf("/healthz: %d %q %v", status, body, err)
	}
	if a.Process.Exited() {
		t.Errorf("agent exited:\n%s", a.Process.Output())
	}
}
