package network

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"time"

	promconfig "github.com/prometheus/common/config"
)

// Dialer opens TCP and UDP connections the way every probe type should:
// the name resolved with the agent's resolver on every dial, the addresses
// tried in the order of ip_version (auto: IPv4, then IPv6), each bound to
// the configured source.
type Dialer struct {
	net      *Net
	settings Settings
	// Timeout bounds each connection attempt; 0: only the context.
	Timeout time.Duration
	// KeepAlive is the TCP keep-alive period; 0: Go's default.
	KeepAlive time.Duration
}

// Dialer returns a dialer for s.
func (n *Net) Dialer(s Settings) *Dialer { return &Dialer{net: n, settings: s} }

// DialContext has net.Dialer's signature, so it plugs into http.Transport
// and libraries that take a dial function.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, &net.AddrError{Err: "invalid port", Addr: addr}
	}
	addrs, err := d.net.lookup(ctx, host, d.settings)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, a := range addrs {
		c, err := d.dialAddr(ctx, network, a, uint16(port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func (d *Dialer) dialAddr(ctx context.Context, network string, a netip.Addr, port uint16) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.Timeout, KeepAlive: d.KeepAlive}
	src, err := d.settings.SourceAddr(a)
	if err != nil {
		return nil, Fail(ErrNetwork, err)
	}
	if src.IsValid() {
		switch network {
		case "udp", "udp4", "udp6":
			nd.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		default:
			nd.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		}
	}
	return nd.DialContext(ctx, network, netip.AddrPortFrom(a, port).String())
}

// TLSConfig builds a client TLS configuration from the settings users know
// from Prometheus (ca_file, cert_file, key_file, server_name,
// insecure_skip_verify, min_version), with prometheus/common's loader,
// as blackbox_exporter does, rather than by hand.
func TLSConfig(cfg promconfig.TLSConfig) (*tls.Config, error) {
	return promconfig.NewTLSConfig(&cfg)
}
