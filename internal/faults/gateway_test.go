//go:build linux

package faults

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/netpulse/netpulse/internal/testutil"
)

func gatewaysIn(t *testing.T, ns *testutil.NetNS) []Gateway {
	t.Helper()
	var gws []Gateway
	ns.Do(t, func() {
		var err error
		if gws, err = DefaultGateways(); err != nil {
			t.Error(err)
		}
	})
	return gws
}

// The default gateways come from the routing table of the namespace the
// agent runs in: none without a default route; one per default route of
// each family, lowest metric first; every next hop of a multipath route;
// a link-local IPv6 gateway with its interface as zone.
func TestDefaultGateways(t *testing.T) {
	ns := testutil.NewNetNS(t)
	if gws := gatewaysIn(t, ns); len(gws) != 0 {
		t.Fatalf("no default route: got %v, want none", gws)
	}
	ns.Route(t, "default", "via", ns.HostAddr, "metric", "200")
	r6 := ns.IPv6(t)
	prefix := r6.Host.As16()
	second := prefix
	second[15] = 3
	hop2 := netip.AddrFrom16(second)
	r6.Route(t, "default", "metric", "100", "nexthop", "via", r6.Host.String(), "dev", ns.NSIf,
		"nexthop", "via", hop2.String(), "dev", ns.NSIf)
	r6.Route(t, "default", "via", "fe80::1", "dev", ns.NSIf, "metric", "50")
	// Another table's default route is not the host's.
	ns.Route(t, "default", "via", ns.HostAddr, "table", "100")

	got := gatewaysIn(t, ns)
	want := []Gateway{
		{Addr: netip.MustParseAddr(ns.HostAddr), Interface: ns.NSIf, Metric: 200},
		{Addr: netip.MustParseAddr("fe80::1").WithZone(ns.NSIf), Interface: ns.NSIf, Metric: 50},
		{Addr: r6.Host, Interface: ns.NSIf, Metric: 100},
		{Addr: hop2, Interface: ns.NSIf, Metric: 100},
	}
	if !slices.Equal(got, want) {
		t.Errorf("gateways\n got %v\nwant %v", got, want)
	}
}
