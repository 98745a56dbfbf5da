//go:build !linux

package speedtest

import "net"

// bytesAcked is unavailable here: upload rates count bytes written, which
// overstates the start of a transfer by up to the socket buffer's size.
func bytesAcked(net.Conn) (int64, bool) { return 0, false }
