// Package network is the plumbing every network probe type shares, so that
// each type resolves, chooses an address family, binds a source and
// classifies failures the same way (as blackbox_exporter's chooseProtocol
// does for all its probers):
//
//   - Settings: the ip_version and source keys a type's config block embeds;
//   - Resolver and Net.Resolve: names resolved on every run (they move),
//     with the family preference and fallback of ip_version;
//   - Net.Dialer: TCP/UDP dialers that honour the same settings, and TLS
//     client settings from prometheus/common/config;
//   - Classify: one mapping of OS and network errors to the bounded
//     error.type vocabulary.
package network

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/netpulse/netpulse/internal/config"
)

// IP versions of Settings.IPVersion.
const (
	IPAuto = "auto" // IPv4 when the name has an IPv4 address, else IPv6; a failed send falls back to the other
	IPv4   = "4"
	IPv6   = "6"
)

// Settings are the network keys of every network probe type's block:
//
//	ip_version: auto | 4 | 6
//	source: 192.0.2.10 | eth0
//
// A type embeds them inline (`yaml:",inline"`), as the collector's
// receivers embed confighttp.ClientConfig.
type Settings struct {
	// IPVersion picks the address family; "auto" prefers IPv4 and falls
	// back to IPv6 when the name has no IPv4 address or IPv4 cannot send.
	IPVersion string `yaml:"ip_version"`
	// Source is the local address to send from, or the name of an
	// interface whose address of the target's family is used; empty lets
	// the kernel choose.
	Source string `yaml:"source"`
}

// Defaults fills unset settings.
func (s *Settings) Defaults() {
	if s.IPVersion == "" {
		s.IPVersion = IPAuto
	}
}

// Validate reports settings that cannot work on this host: an unknown
// family, or a source that is neither one of its addresses nor one of its
// interfaces (a typo would otherwise fail every run with a bind error).
func (s Settings) Validate(p *config.Problems, path string) {
	if !slices.Contains([]string{IPAuto, IPv4, IPv6}, s.IPVersion) {
		p.Add(path+".ip_version", "must be auto, 4 or 6, not %q", s.IPVersion)
	}
	if s.Source == "" {
		return
	}
	if a, err := netip.ParseAddr(s.Source); err == nil {
		switch {
		case s.IPVersion == IPv4 && !a.Unmap().Is4(), s.IPVersion == IPv6 && a.Unmap().Is4():
			p.Add(path+".source", "%s is not an IPv%s address (ip_version is %s)", a, s.IPVersion, s.IPVersion)
		case !localAddr(a):
			p.Add(path+".source", "%s is not an address of this host", a)
		}
		return
	}
	if _, err := net.InterfaceByName(s.Source); err != nil {
		p.Add(path+".source", "must be an address or an interface of this host, not %q", s.Source)
	}
}

// localAddr reports whether a is assigned to one of this host's interfaces.
func localAddr(a netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return true // cannot tell: let the bind say
	}
	for _, ia := range addrs {
		if n, ok := ia.(*net.IPNet); ok {
			if b, ok := netip.AddrFromSlice(n.IP); ok && b.Unmap() == a.Unmap() {
				return true
			}
		}
	}
	return false
}

// SourceAddr is the address to send to dst from: the configured address, or
// the address of the configured interface in dst's family; invalid (the
// kernel chooses) when no source is set.
func (s Settings) SourceAddr(dst netip.Addr) (netip.Addr, error) {
	if s.Source == "" {
		return netip.Addr{}, nil
	}
	if a, err := netip.ParseAddr(s.Source); err == nil {
		if a.Unmap().Is4() != dst.Unmap().Is4() {
			return netip.Addr{}, fmt.Errorf("source %s and target %s are of different address families", a, dst)
		}
		return a, nil
	}
	ifc, err := net.InterfaceByName(s.Source)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("source interface %q: %w", s.Source, err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("source interface %q: %w", s.Source, err)
	}
	for _, ia := range addrs {
		if n, ok := ia.(*net.IPNet); ok {
			if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap().Is4() == dst.Unmap().Is4() && !a.IsLinkLocalUnicast() {
				return a.Unmap(), nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("source interface %q has no usable IPv%d address", s.Source, family(dst))
}

func family(a netip.Addr) int {
	if a.Unmap().Is4() {
		return 4
	}
	return 6
}
