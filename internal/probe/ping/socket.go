package ping

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/net/icmp"

	"github.com/netpulse/netpulse/internal/probe"
)

// socketMode decides between raw ICMP sockets (privileged) and ICMP datagram
// sockets (unprivileged) for "privileged: auto", once per address family:
// the answer only changes when the process's capabilities or the sysctl do.
type socketMode struct {
	mu      sync.Mutex
	decided map[bool]bool // ipv4 → privileged
}

// privileged reports which socket kind works for the family, or an error
// that tells the user how to make one work.
func (m *socketMode) privileged(ipv4 bool) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.decided[ipv4]; ok {
		return p, nil
	}
	raw, dgram := "ip6:ipv6-icmp", "udp6"
	if ipv4 {
		raw, dgram = "ip4:icmp", "udp4"
	}
	var p bool
	if c, err := icmp.ListenPacket(raw, ""); err == nil {
		c.Close()
		p = true
	} else if c, err := icmp.ListenPacket(dgram, ""); err == nil {
		c.Close()
	} else {
		return false, probe.Fail(probe.ErrPermission, fmt.Errorf(
			"neither raw ICMP sockets (need root or CAP_NET_RAW: setcap cap_net_raw+ep on the binary) "+
				"nor ICMP datagram sockets (need group %d within sysctl net.ipv4.ping_group_range) are permitted: %w",
			os.Getgid(), err))
	}
	if m.decided == nil {
		m.decided = map[bool]bool{}
	}
	m.decided[ipv4] = p
	return p, nil
}
