//go:build linux

package faults

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// routeSettle is how long the default routes must stay unchanged before a
// change is reported: a link that comes back replaces several routes at
// once, and one reload is enough.
const routeSettle = time.Second

// WatchRoutes calls onChange when a default route of the main table is
// added or removed (a new gateway, a link down or up, a VPN), once the
// routes have settled, until ctx ends: tiers: auto then finds the
// gateways and ISP hops again (the agent reloads). It subscribes to the
// kernel's route notifications (netlink) in the network namespace of the
// calling thread.
func WatchRoutes(ctx context.Context, onChange func(), logger *slog.Logger) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("route notifications: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK,
		Groups: unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE}); err != nil {
		return fmt.Errorf("route notifications: %w", err)
	}
	// Reads wake up every 200 ms to see whether ctx ended or a change settled.
	tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("route notifications: %w", err)
	}
	buf := make([]byte, 1<<16)
	var changed time.Time // the last default-route change not yet reported
	for ctx.Err() == nil {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		switch {
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
		case errors.Is(err, unix.ENOBUFS):
			// Notifications were lost: assume the worst.
			changed = time.Now()
		case err != nil:
			return fmt.Errorf("route notifications: %w", err)
		default:
			msgs, perr := syscall.ParseNetlinkMessage(buf[:n])
			if perr != nil {
				continue
			}
			for i := range msgs {
				if defaultRouteChange(&msgs[i]) {
					changed = time.Now()
				}
			}
		}
		if !changed.IsZero() && time.Since(changed) >= routeSettle {
			changed = time.Time{}
			logger.Info("tiers: auto: the default route changed: discovering the tiers again")
			onChange()
		}
	}
	return nil
}

// defaultRouteChange reports whether m adds or removes a default route of
// the main table.
func defaultRouteChange(m *syscall.NetlinkMessage) bool {
	if (m.Header.Type != unix.RTM_NEWROUTE && m.Header.Type != unix.RTM_DELROUTE) || len(m.Data) < syscall.SizeofRtMsg {
		return false
	}
	rtm := (*syscall.RtMsg)(unsafe.Pointer(&m.Data[0]))
	if rtm.Dst_len != 0 {
		return false
	}
	table := uint32(rtm.Table)
	if attrs, err := syscall.ParseNetlinkRouteAttr(m); err == nil {
		for _, a := range attrs {
			if a.Attr.Type == unix.RTA_TABLE && len(a.Value) >= 4 {
				table = binary.NativeEndian.Uint32(a.Value)
			}
		}
	}
	return table == unix.RT_TABLE_MAIN
}
