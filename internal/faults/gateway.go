package faults

import "net/netip"

// Gateway is the next hop of a default route: the home router, for most
// hosts.
type Gateway struct {
	Addr netip.Addr // link-local IPv6 gateways carry their interface as zone
	// Interface is the name of the interface the route leaves by.
	Interface string
	// Metric is the route's priority: lower is preferred.
	Metric int
}
