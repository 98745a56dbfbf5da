package speedtest

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// bytesAcked returns tcpi_bytes_acked (Linux 4.1+): the bytes of this
// connection the peer has acknowledged, i.e. that crossed the link.
func bytesAcked(c net.Conn) (int64, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info *unix.TCPInfo
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || gerr != nil {
		return 0, false
	}
	return int64(info.Bytes_acked), true
}
