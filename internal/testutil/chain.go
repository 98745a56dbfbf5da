package testutil

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Chain is a line of network namespaces behind the host, the way a home
// connection reaches a server:
//
//	host (client) ── Home ── ISP ── Inet ── Dst
//	          link 0    link 1  link 2  link 3
//
// Each link is a veth pair on a /30 of one /24 inside 198.18.0.0/15 and a
// /64 of one unique-local /48, the routers forward both families and
// answer with ICMP errors without rate limit, and the host routes the /24
// and the /48 through Home. Seen from the host, a path to Target
// answers from HomeAddr (TTL 1), ISPAddr (2), InetAddr (3) and Target (4).
type Chain struct {
	Home, ISP, Inet, Dst *NetNS
	// The address each hop answers from (its side of the link towards the
	// host), and the target's.
	HomeAddr, ISPAddr, InetAddr, Target netip.Addr
	// The same in IPv6: each link is also a /64 of one random unique-local
	// /48 (fd00::/8), routed from the host through Home.
	HomeAddr6, ISPAddr6, InetAddr6, Target6 netip.Addr
	// Links[i] names the veth ends of link i, with the namespace each is
	// in.
	Links  [4]ChainLink
	routes [][]string
}

// ChainLink is one veth pair of a Chain.
type ChainLink struct {
	Near, Far     string // interface names
	NearNS, FarNS *NetNS // nil: the host
}

// NewChain builds the chain; everything is removed at cleanup.
func NewChain(t testing.TB) *Chain {
	t.Helper()
	NeedNetNS(t)
	id := make([]byte, 3)
	_, _ = rand.Read(id)
	tag := hex.EncodeToString(id)
	var prefix string
	for range 20 {
		n, _ := rand.Int(rand.Reader, big.NewInt(512))
		v := int(n.Int64())
		p := fmt.Sprintf("198.%d.%d.", 18+v>>8, v&0xff)
		out, _ := exec.Command("ip", "-o", "addr", "show").CombinedOutput()
		routes, _ := exec.Command("ip", "route", "show", "match", p+"0/24").CombinedOutput()
		if !strings.Contains(string(out), " "+p) && !strings.Contains(string(routes), p) {
			prefix = p
			break
		}
	}
	if prefix == "" {
		t.Fatal("no free /24 in 198.18.0.0/15")
	}
	a := func(i int) string { return fmt.Sprintf("%s%d", prefix, i) }
	// A random ULA /48 (never fd00::/48, which hosts here use).
	g := make([]byte, 5)
	_, _ = rand.Read(g)
	g[0] |= 1
	p6 := fmt.Sprintf("fd%02x:%02x%02x:%02x%02x:", g[0], g[1], g[2], g[3], g[4])
	a6 := func(link, host int) string { return fmt.Sprintf("%s%x::%d", p6, link, host) }
	c := &Chain{}
	names := []string{"home", "isp", "inet", "dst"}
	nss := make([]*NetNS, 4)
	for i, role := range names {
		nss[i] = &NetNS{Name: fmt.Sprintf("np-faults-%d-%s-%s", os.Getpid(), tag, role)}
		if err := ip("netns", "add", nss[i].Name); err != nil {
			t.Fatal(err)
		}
		ns := nss[i]
		t.Cleanup(func() {
			if err := ip("netns", "del", ns.Name); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
		if err := ip("-n", ns.Name, "link", "set", "lo", "up"); err != nil {
			t.Fatal(err)
		}
	}
	c.Home, c.ISP, c.Inet, c.Dst = nss[0], nss[1], nss[2], nss[3]
	for i := range 4 {
		l := ChainLink{Near: fmt.Sprintf("npf%s%dn", tag, i), Far: fmt.Sprintf("npf%s%df", tag, i), FarNS: nss[i]}
		near, far := a(4*i+1), a(4*i+2)
		if i > 0 {
			l.NearNS = nss[i-1]
		}
		steps := [][]string{{"link", "add", l.Near, "type", "veth", "peer", "name", l.Far, "netns", l.FarNS.Name}}
		if l.NearNS != nil {
			steps = append(steps, []string{"link", "set", l.Near, "netns", l.NearNS.Name})
		} else {
			t.Cleanup(func() { _ = ip("link", "del", l.Near) })
		}
		for _, s := range steps {
			if err := ip(s...); err != nil {
				t.Fatal(err)
			}
		}
		steadyIPv6(t, l.NearNS, l.Near)
		steadyIPv6(t, l.FarNS, l.Far)
		steps = append(steps[:0],
			inNS(l.NearNS, "addr", "add", near+"/30", "dev", l.Near), inNS(l.NearNS, "link", "set", l.Near, "up"),
			inNS(l.FarNS, "addr", "add", far+"/30", "dev", l.Far), inNS(l.FarNS, "link", "set", l.Far, "up"),
			inNS(l.NearNS, "addr", "add", a6(i, 1)+"/64", "dev", l.Near, "nodad"),
			inNS(l.FarNS, "addr", "add", a6(i, 2)+"/64", "dev", l.Far, "nodad"))
		for _, s := range steps {
			if err := ip(s...); err != nil {
				t.Fatal(err)
			}
		}
		c.Links[i] = l
	}
	c.HomeAddr, c.ISPAddr, c.InetAddr, c.Target = netip.MustParseAddr(a(2)), netip.MustParseAddr(a(6)),
		netip.MustParseAddr(a(10)), netip.MustParseAddr(a(14))
	c.HomeAddr6, c.ISPAddr6, c.InetAddr6, c.Target6 = netip.MustParseAddr(a6(0, 2)), netip.MustParseAddr(a6(1, 2)),
		netip.MustParseAddr(a6(2, 2)), netip.MustParseAddr(a6(3, 2))
	c.routes = [][]string{
		{"route", "replace", prefix + "0/24", "via", a(2)},
		inNS(c.Home, "route", "replace", "default", "via", a(6)),
		inNS(c.ISP, "route", "replace", prefix+"0/30", "via", a(5)),
		inNS(c.ISP, "route", "replace", "default", "via", a(10)),
		inNS(c.Inet, "route", "replace", prefix+"0/29", "via", a(9)),
		inNS(c.Dst, "route", "replace", "default", "via", a(13)),
		{"-6", "route", "replace", p6 + ":/48", "via", a6(0, 2)},
		inNS(c.Home, "-6", "route", "replace", "default", "via", a6(1, 2)),
		inNS(c.ISP, "-6", "route", "replace", p6+"0::/64", "via", a6(1, 1)),
		inNS(c.ISP, "-6", "route", "replace", "default", "via", a6(2, 2)),
		inNS(c.Inet, "-6", "route", "replace", p6+"0::/63", "via", a6(2, 1)),
		inNS(c.Dst, "-6", "route", "replace", "default", "via", a6(3, 1)),
	}
	c.addRoutes(t)
	t.Cleanup(func() {
		_ = ip("route", "del", prefix+"0/24")
		_ = ip("-6", "route", "del", p6+":/48")
	})
	for _, r := range []*NetNS{c.Home, c.ISP, c.Inet} {
		r.Router(t)
	}
	return c
}

// steadyIPv6 sets an interface (before it is up) for a test's links: no
// duplicate address detection (a link-local address stays tentative for a
// second or two, and a router does not forward IPv6 over the link until it
// is not), and addresses kept while the link is down (LinkDown, LinkUp).
func steadyIPv6(t testing.TB, ns *NetNS, ifname string) {
	t.Helper()
	for _, kv := range []string{"net.ipv6.conf." + ifname + ".accept_dad=0", "net.ipv6.conf." + ifname + ".keep_addr_on_down=1"} {
		var err error
		if ns == nil {
			err = exec.Command("sysctl", "-qw", kv).Run()
		} else {
			_, err = ns.Exec("sysctl", "-qw", kv)
		}
		if err != nil {
			t.Fatalf("sysctl %s: %v", kv, err)
		}
	}
}

func inNS(ns *NetNS, args ...string) []string {
	if ns == nil {
		return args
	}
	return append([]string{"-n", ns.Name}, args...)
}

func (c *Chain) addRoutes(t testing.TB) {
	t.Helper()
	for _, r := range c.routes {
		if err := ip(r...); err != nil {
			t.Fatal(err)
		}
	}
}

// LinkDown takes link i down at its far end: the near end loses its
// carrier, and what its router sends into it is lost without an ICMP
// error (the near end's routes stay; the far end's go).
func (c *Chain) LinkDown(t testing.TB, i int) {
	t.Helper()
	l := c.Links[i]
	if err := ip(inNS(l.FarNS, "link", "set", l.Far, "down")...); err != nil {
		t.Fatal(err)
	}
}

// LinkUp undoes LinkDown, routes included.
func (c *Chain) LinkUp(t testing.TB, i int) {
	t.Helper()
	l := c.Links[i]
	if err := ip(inNS(l.FarNS, "link", "set", l.Far, "up")...); err != nil {
		t.Fatal(err)
	}
	c.addRoutes(t)
}

// Routers are the chain's routers in order from the host: Home, ISP, Inet.
func (c *Chain) Routers() []*NetNS { return []*NetNS{c.Home, c.ISP, c.Inet} }
