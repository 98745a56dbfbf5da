package network

import (
	"context"
	"errors"
	"net"
)

// Resolver resolves target names.
type Resolver struct {
	r *net.Resolver
	// server is the configured DNS server, or empty for the system's.
	server string
}

// NewResolver returns the system resolver when server is empty, otherwise a pure-Go
// resolver that sends every query to server (host:port).
func NewResolver(server string) *Resolver {
	if server == "" {
		return &Resolver{r: net.DefaultResolver}
	}
	return &Resolver{server: server, r: &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		},
	}}
}

// LookupIPAddr resolves host. Go's error names the nameserver from
// /etc/resolv.conf even when Dial sent the query elsewhere; it is corrected
// to the configured server so the message points at the right place.
func (r *Resolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	addrs, err := r.r.LookupIPAddr(ctx, host)
	if dnsErr, ok := errors.AsType[*net.DNSError](err); ok && r.server != "" {
		dnsErr.Server = r.server
	}
	return addrs, err
}
