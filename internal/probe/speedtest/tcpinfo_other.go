//go:build !linux

package speedtest

import "net"

// tcpStats is unavailable here: rates count bytes written (which overstates
// the start of an upload by up to the socket buffer's size) and read, and
// the budget counts application bytes.
func tcpStats(net.Conn) (tcpStat, bool) { return tcpStat{}, false }
