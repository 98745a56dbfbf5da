//go:build !linux

package tcpcc

import (
	"errors"
	"syscall"
)

// Set is Linux-only: elsewhere a configured algorithm is an error.
func Set(_ syscall.Conn, name string) error {
	if name == "" {
		return nil
	}
	return errors.New("tcp_congestion is supported on Linux only")
}

// SetRaw is Set for a Control function.
func SetRaw(_ syscall.RawConn, name string) error { return Set(nil, name) }

// Get returns "" where the OS does not say.
func Get(syscall.Conn) string { return "" }
