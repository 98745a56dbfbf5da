//go:build linux

package faults

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DefaultGateways reads the kernel's main routing table (a netlink route
// dump of each family, with the standard library's netlink helpers; no
// dependency) and returns the next hops of its default routes,
// IPv4 first, then by metric; every next hop of a multipath route. A host
// without a default route has none, and that is no error.
func DefaultGateways() ([]Gateway, error) {
	var out []Gateway
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		b, err := syscall.NetlinkRIB(unix.RTM_GETROUTE, fam)
		if err != nil {
			return nil, fmt.Errorf("default gateways: netlink route dump: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(b)
		if err != nil {
			return nil, fmt.Errorf("default gateways: netlink: %w", err)
		}
		var gws []Gateway
		for i := range msgs {
			gws = append(gws, defaultHops(&msgs[i])...)
		}
		slices.SortStableFunc(gws, func(a, b Gateway) int { return a.Metric - b.Metric })
		out = append(out, gws...)
	}
	return out, nil
}

// defaultHops returns the next hops of m if it is a unicast default route
// of the main table.
func defaultHops(m *syscall.NetlinkMessage) []Gateway {
	if m.Header.Type != unix.RTM_NEWROUTE || len(m.Data) < syscall.SizeofRtMsg {
		return nil
	}
	rtm := (*syscall.RtMsg)(unsafe.Pointer(&m.Data[0]))
	if rtm.Dst_len != 0 || rtm.Type != unix.RTN_UNICAST {
		return nil
	}
	attrs, err := syscall.ParseNetlinkRouteAttr(m)
	if err != nil {
		return nil
	}
	table, metric, oif := uint32(rtm.Table), 0, 0
	var gw netip.Addr
	var multipath []byte
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.RTA_TABLE:
			if len(a.Value) >= 4 {
				table = binary.NativeEndian.Uint32(a.Value)
			}
		case unix.RTA_PRIORITY:
			if len(a.Value) >= 4 {
				metric = int(binary.NativeEndian.Uint32(a.Value))
			}
		case unix.RTA_OIF:
			if len(a.Value) >= 4 {
				oif = int(binary.NativeEndian.Uint32(a.Value))
			}
		case unix.RTA_GATEWAY:
			gw, _ = netip.AddrFromSlice(a.Value)
		case unix.RTA_MULTIPATH:
			multipath = a.Value
		}
	}
	if table != unix.RT_TABLE_MAIN {
		return nil
	}
	if gw.IsValid() {
		return []Gateway{gateway(gw, oif, metric)}
	}
	var out []Gateway
	// RTA_MULTIPATH: struct rtnexthop {len u16; flags u8; hops u8; ifindex
	// i32} followed by its own attributes, each hop aligned to 4 bytes.
	for len(multipath) >= 8 {
		n := int(binary.NativeEndian.Uint16(multipath))
		if n < 8 || n > len(multipath) {
			break
		}
		ifindex := int(int32(binary.NativeEndian.Uint32(multipath[4:8])))
		for rest := multipath[8:n]; len(rest) >= 4; {
			l, typ := int(binary.NativeEndian.Uint16(rest)), binary.NativeEndian.Uint16(rest[2:])
			if l < 4 || l > len(rest) {
				break
			}
			if typ == unix.RTA_GATEWAY {
				if a, ok := netip.AddrFromSlice(rest[4:l]); ok {
					out = append(out, gateway(a, ifindex, metric))
				}
			}
			rest = rest[min(len(rest), (l+3)&^3):]
		}
		multipath = multipath[min(len(multipath), (n+3)&^3):]
	}
	return out
}

func gateway(a netip.Addr, ifindex, metric int) Gateway {
	g := Gateway{Addr: a.Unmap(), Metric: metric}
	if ifi, err := net.InterfaceByIndex(ifindex); err == nil {
		g.Interface = ifi.Name
		if a.Is6() && a.IsLinkLocalUnicast() {
			g.Addr = g.Addr.WithZone(ifi.Name)
		}
	}
	return g
}
