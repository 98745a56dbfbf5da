package testutil

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Helpers that make a NetNS a router: addresses behind it reached from the
// host, routes of every type inside it, nftables rules, sysctls. Everything
// stays inside 198.18.0.0/15 and is removed at cleanup.

// Router turns on forwarding in the namespace and lifts its ICMP error rate
// limit, so that it answers with ICMP errors (unreachable, prohibited, time
// exceeded) for every packet it cannot or may not forward.
func (ns *NetNS) Router(t testing.TB) {
	t.Helper()
	for _, kv := range []string{"net.ipv4.ip_forward=1", "net.ipv4.icmp_ratelimit=0", "net.ipv4.icmp_msgs_per_sec=100000"} {
		if _, err := ns.Exec("sysctl", "-qw", kv); err != nil {
			t.Fatal(err)
		}
	}
}

// BehindRouter returns a fresh address in 198.18.0.0/15, not assigned on the
// host, and routes it from the host through the namespace (via NSAddr). What
// the namespace does with it is up to the test: a route of a given type, a
// dummy device, an nftables rule.
func (ns *NetNS) BehindRouter(t testing.TB) netip.Addr {
	t.Helper()
	for range 20 {
		n, _ := rand.Int(rand.Reader, big.NewInt(1<<17))
		v := int(n.Int64())
		a := netip.AddrFrom4([4]byte{198, byte(18 + v>>16), byte(v >> 8), byte(v)})
		if v&0xff == 0 || v&0xff == 0xff || addrInUse(a) {
			continue
		}
		if err := ip("route", "add", a.String()+"/32", "via", ns.NSAddr); err != nil {
			continue // a route for it exists already (another test's)
		}
		t.Cleanup(func() { _ = ip("route", "del", a.String()+"/32", "via", ns.NSAddr) })
		return a
	}
	t.Fatal("no free address in 198.18.0.0/15 after 20 tries")
	return netip.Addr{}
}

func addrInUse(a netip.Addr) bool {
	out, _ := exec.Command("ip", "-o", "addr", "show").CombinedOutput()
	if strings.Contains(string(out), " "+a.String()+"/") {
		return true
	}
	out, _ = exec.Command("ip", "route", "show", a.String()+"/32").CombinedOutput()
	return strings.TrimSpace(string(out)) != ""
}

// Route adds a route inside the namespace, e.g. ns.Route(t, "unreachable",
// addr) or ns.Route(t, "prohibit", addr). The namespace's deletion removes it.
func (ns *NetNS) Route(t testing.TB, args ...string) {
	t.Helper()
	if err := ip(append([]string{"-n", ns.Name, "route", "add"}, args...)...); err != nil {
		t.Fatal(err)
	}
}

// ForwardBack routes addr inside the namespace back to the host (via
// HostAddr), so packets for addr take the namespace's forwarding path (TTL
// checks, nftables forward rules). Use it with TTL 1 or a forward rule that
// stops the packet: what gets through returns to the host. (This kernel has
// no dummy devices.)
func (ns *NetNS) ForwardBack(t testing.TB, addr netip.Addr) {
	t.Helper()
	ns.Route(t, addr.String()+"/32", "via", ns.HostAddr)
}

// NeedNft skips (fails in CI) without the nft command.
func NeedNft(t testing.TB) {
	t.Helper()
	Need(t, LookPath("nft") != "", "nftables (apt-get install nftables)")
}

// Nft loads an nftables script inside the namespace (nft -f), e.g.
//
//	table inet t { chain in { type filter hook input priority 0; icmp type echo-request drop; } }
//
// Rules vanish with the namespace.
func (ns *NetNS) Nft(t testing.TB, script string) {
	t.Helper()
	NeedNft(t)
	f := filepath.Join(t.TempDir(), "rules.nft")
	if err := os.WriteFile(f, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := ns.Exec("nft", "-f", f); err != nil {
		t.Fatalf("nft in %s: %v\n%s\nscript:\n%s", ns.Name, err, out, script)
	}
}

// String names the namespace in messages.
func (ns *NetNS) String() string { return fmt.Sprintf("netns %s (%s)", ns.Name, ns.NSAddr) }
