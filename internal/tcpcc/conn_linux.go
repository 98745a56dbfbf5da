package tcpcc

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Set makes the socket of c (a *net.TCPConn or *net.TCPListener, or
// anything with SyscallConn) use name; a listener passes it on to the
// connections it accepts. "" leaves the system's default.
func Set(c syscall.Conn, name string) error {
	if name == "" {
		return nil
	}
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	return SetRaw(raw, name)
}

// SetRaw is Set for a net.ListenConfig or net.Dialer Control function.
func SetRaw(raw syscall.RawConn, name string) error {
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, name)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("cannot use TCP congestion control %s: %w (%v)", name, serr, Check(name))
	}
	return nil
}

// Get returns the algorithm c uses, or "" if it cannot be read.
func Get(c syscall.Conn) string {
	raw, err := c.SyscallConn()
	if err != nil {
		return ""
	}
	var name string
	_ = raw.Control(func(fd uintptr) {
		name, _ = unix.GetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION)
	})
	return name
}
