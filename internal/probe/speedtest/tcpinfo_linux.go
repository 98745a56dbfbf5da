package speedtest

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// tcpBytes returns tcpi_bytes_acked and tcpi_bytes_received (Linux 4.1+):
// the bytes of this connection that crossed the link each way, as the
// kernel saw them, not when the application got around to them.
func tcpBytes(c net.Conn) (acked, received int64, ok bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, 0, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, 0, false
	}
	var info *unix.TCPInfo
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || gerr != nil {
		return 0, 0, false
	}
	return int64(info.Bytes_acked), int64(info.Bytes_received), true
}
