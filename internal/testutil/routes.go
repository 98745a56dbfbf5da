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
	for _, kv := range []string{"net.ipv4.ip_forward=1", "net.ipv4.icmp_ratelimit=0", "net.ipv4.icmp_msgs_per_sec=100000",
		"net.ipv6.conf.all.forwarding=1", "net.ipv6.icmp.ratelimit=0"} {
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

// Router6 is the IPv6 side of a NetNS router (see NetNS.IPv6).
type Router6 struct {
	ns *NetNS
	// Host and NS are the veth ends' addresses in fd00::/8.
	Host, NS netip.Addr
}

// IPv6 gives the veth pair a random fd00::/64 (host ::1, namespace ::2,
// without duplicate address detection so they are usable at once), turns on
// IPv6 forwarding in the namespace and lifts its ICMPv6 rate limit.
func (ns *NetNS) IPv6(t testing.TB) *Router6 {
	t.Helper()
	var r [4]byte
	_, _ = rand.Read(r[:])
	prefix := fmt.Sprintf("fd00:%x:%x:%x", uint16(r[0])<<8|uint16(r[1]), r[2], r[3])
	for _, s := range [][]string{
		{"-6", "addr", "add", prefix + "::1/64", "dev", ns.HostIf, "nodad"},
		{"-n", ns.Name, "-6", "addr", "add", prefix + "::2/64", "dev", ns.NSIf, "nodad"},
	} {
		if err := ip(s...); err != nil {
			t.Fatal(err)
		}
	}
	for _, kv := range []string{"net.ipv6.conf.all.forwarding=1", "net.ipv6.icmp.ratelimit=0"} {
		if _, err := ns.Exec("sysctl", "-qw", kv); err != nil {
			t.Fatal(err)
		}
	}
	return &Router6{ns: ns, Host: netip.MustParseAddr(prefix + "::1"), NS: netip.MustParseAddr(prefix + "::2")}
}

// BehindRouter is NetNS.BehindRouter for IPv6: a fresh address in fd00::/8
// routed from the host through the namespace.
func (r *Router6) BehindRouter(t testing.TB) netip.Addr {
	t.Helper()
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[0] = 0xfd
	a := netip.AddrFrom16(b)
	if err := ip("-6", "route", "add", a.String()+"/128", "via", r.NS.String()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ip("-6", "route", "del", a.String()+"/128", "via", r.NS.String()) })
	return a
}

// Route adds an IPv6 route inside the namespace (ip -6 route add args...).
func (r *Router6) Route(t testing.TB, args ...string) {
	t.Helper()
	if err := ip(append([]string{"-n", r.ns.Name, "-6", "route", "add"}, args...)...); err != nil {
		t.Fatal(err)
	}
}

// ForwardBack is NetNS.ForwardBack for IPv6.
func (r *Router6) ForwardBack(t testing.TB, addr netip.Addr) {
	t.Helper()
	r.Route(t, addr.String()+"/128", "via", r.Host.String())
}
