package speedtest

import (
	"context"
	"net"
	"time"
)

// dialFunc opens a connection, as net.Dialer.DialContext does.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// dialer returns the dial function of every connection of a run: the
// shared network plumbing (the agent's resolver, ip_version and source),
// each attempt bounded by preflightTimeout.
func (p *Prober) dialer() dialFunc {
	d := p.net.Dialer(p.cfg.Settings)
	d.Timeout, d.KeepAlive = preflightTimeout, 30*time.Second
	return d.DialContext
}
