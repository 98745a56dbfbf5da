// Package tcpcc selects and reports a TCP connection's congestion control
// algorithm (TCP_CONGESTION, Linux). Speed tests pin it so that a result
// says what it measured: CUBIC, what most clients use, fills a deep queue
// (~400 ms of bufferbloat on a 20 Mbit/s link with a 500 ms queue) where one
// BBR flow keeps it near empty (~4 ms); a host default hides that.
package tcpcc

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
)

// Header is the HTTP response header in which netpulse's speed test server
// names the algorithm of the connection that sends a download.
const Header = "X-Netpulse-Tcp-Congestion"

var nameRE = regexp.MustCompile(`^[a-z0-9_]{1,15}$`)

// ValidName reports whether name can be an algorithm's name (the kernel's
// are at most 15 characters: cubic, bbr, reno, ...).
func ValidName(name string) bool { return nameRE.MatchString(name) }

// Files the kernel lists algorithms in.
var (
	availablePath = "/proc/sys/net/ipv4/tcp_available_congestion_control"
	allowedPath   = "/proc/sys/net/ipv4/tcp_allowed_congestion_control"
)

// Check returns nil if connections of this process can use name, else an
// error that says why and what to do: not loaded (modprobe), or loaded
// but not allowed to unprivileged processes (root or CAP_NET_ADMIN, or the
// allowed list). "" (the system's default) is always usable.
func Check(name string) error {
	if name == "" {
		return nil
	}
	if !ValidName(name) {
		return fmt.Errorf("tcp_congestion %q is not an algorithm name (e.g. cubic, bbr, reno)", name)
	}
	available, err := list(availablePath)
	if err != nil {
		return fmt.Errorf("tcp_congestion %s: cannot tell which algorithms this system has: %w", name, err)
	}
	if !slices.Contains(available, name) {
		return fmt.Errorf("tcp_congestion %s is not available on this system (available: %s); load it with `modprobe tcp_%s`",
			name, strings.Join(available, " "), name)
	}
	if allowed, err := list(allowedPath); err == nil && !slices.Contains(allowed, name) && !privileged() {
		return fmt.Errorf("tcp_congestion %s needs root or CAP_NET_ADMIN: it is not in net.ipv4.tcp_allowed_congestion_control (%s)",
			name, strings.Join(allowed, " "))
	}
	return nil
}

func list(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b)), nil
}

// privileged is a cheap stand-in for CAP_NET_ADMIN: root has it.
func privileged() bool { return os.Geteuid() == 0 }
