package speedtest

import (
	"context"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/tcpcc"
)

// dialFunc opens a connection, as net.Dialer.DialContext does.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// dialer returns the dial function of every connection of a run: the
// shared network plumbing (the agent's resolver, ip_version and source),
// each attempt bounded by preflightTimeout, then tcp_congestion.
func (p *Prober) dialer() dialFunc {
	d := p.net.Dialer(p.cfg.Settings)
	d.Timeout, d.KeepAlive = preflightTimeout, 30*time.Second
	cc := p.cfg.TCPCongestion
	if cc == "" {
		return d.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if sc, ok := c.(syscall.Conn); ok && strings.HasPrefix(network, "tcp") {
			if err := tcpcc.Set(sc, cc); err != nil {
				_ = c.Close()
				return nil, probe.Fail(probe.ErrInternal, err)
			}
		}
		return c, nil
	}
}
