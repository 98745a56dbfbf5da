//go:build linux

package faults

import (
	"context"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

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

// WatchRoutes reports a change of the default route, once settled, and
// not a change of another route.
func TestWatchRoutes(t *testing.T) {
	ns := testutil.NewNetNS(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	changes := make(chan struct{}, 8)
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		done <- testutil.InNetNS(ns.Name, func() error {
			close(started)
			return WatchRoutes(ctx, func() { changes <- struct{}{} }, quietLog)
		})
	}()
	<-started
	ipNS := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", append([]string{"-n", ns.Name}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	// The watch subscribes right after it starts: add routes until it has
	// seen one (a route added before the subscription is not seen).
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		ipNS("route", "replace", "default", "via", ns.HostAddr, "metric", strconv.Itoa(100+i))
		select {
		case <-changes:
		case <-time.After(3 * routeSettle):
			if time.Now().Before(deadline) {
				continue
			}
			t.Fatal("no change reported after adding a default route")
		}
		break
	}
	ipNS("route", "add", "198.51.100.0/24", "via", ns.HostAddr)
	ipNS("route", "del", "default", "via", ns.HostAddr)
	select {
	case <-changes:
	case <-time.After(10 * time.Second):
		t.Fatal("no change reported after deleting the default route")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(changes) != 0 {
		t.Errorf("%d more changes reported: the other route, or an unsettled burst", len(changes))
	}
}
