package speedtest

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// tcpHeaderBytes is what IP and TCP headers add to each segment on the
// wire: 20 (IPv4) + 20 (TCP) + 12 (timestamps, on by default on Linux);
// IPv6 adds 20 more. Link-layer framing is not counted: it differs per link
// and is not what an ISP's data cap counts either.
const (
	tcpHeaderBytes4 = 52
	tcpHeaderBytes6 = 72
)

// tcpStats reads the connection's TCP_INFO (Linux 4.19+ for bytes_sent):
// the bytes that crossed the link each way as the kernel saw them, not when
// the application got around to them, and the smoothed RTT.
func tcpStats(c net.Conn) (tcpStat, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return tcpStat{}, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return tcpStat{}, false
	}
	var info *unix.TCPInfo
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || gerr != nil {
		return tcpStat{}, false
	}
	hdr := int64(tcpHeaderBytes4)
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok && a.IP.To4() == nil {
		hdr = tcpHeaderBytes6
	}
	return tcpStat{
		acked:    int64(info.Bytes_acked),
		received: int64(info.Bytes_received),
		wireOut:  int64(info.Bytes_sent) + int64(info.Segs_out)*hdr,
		wireIn:   int64(info.Bytes_received) + int64(info.Segs_in)*hdr,
		pending:  pendingWire(int64(info.Notsent_bytes), int64(info.Snd_mss), hdr),
		rtt:      time.Duration(info.Rtt) * time.Microsecond,
		rcvRTT:   time.Duration(info.Rcv_rtt) * time.Microsecond,
	}, true
}

// pendingWire is what n bytes still in the send queue will take on the
// wire: closing the socket does not discard them, the kernel sends them.
func pendingWire(n, mss, hdr int64) int64 {
	if n <= 0 {
		return 0
	}
	if mss <= 0 {
		mss = 1448
	}
	return n + (n+mss-1)/mss*hdr
}
