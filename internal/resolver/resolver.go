// Package resolver builds the DNS resolver probes use to resolve targets on
// every run: the system's, or a configured DNS server.
package resolver

import (
	"context"
	"net"
)

// New returns the system resolver when server is empty, otherwise a pure-Go
// resolver that sends every query to server (host:port).
func New(server string) *net.Resolver {
	if server == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		},
	}
}
