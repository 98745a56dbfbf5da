package testutil

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// DatagramICMPAllowed reports whether net.ipv4.ping_group_range admits this
// process's group, so unprivileged (datagram) ICMP sockets can be opened.
func DatagramICMPAllowed() bool {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
	if err != nil {
		return false
	}
	var lo, hi int
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &lo, &hi); err != nil {
		return false
	}
	gid := os.Getgid()
	return lo <= gid && gid <= hi
}

// NeedICMP requires some way to ping: root (raw sockets) or datagram sockets.
func NeedICMP(t testing.TB) {
	t.Helper()
	Need(t, IsRoot() || DatagramICMPAllowed(),
		`ICMP needs root or sysctl -w net.ipv4.ping_group_range="0 2147483647"`)
}
