// Package probes is the registry of probe types: the one place a type is
// added. Each type declares everything else about itself in its own
// package (probe.Type); configuration, the agent, the API, the history and
// the status page read this list.
package probes

import (
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probe/dns"
	"github.com/netpulse/netpulse/internal/probe/http"
	"github.com/netpulse/netpulse/internal/probe/path"
	"github.com/netpulse/netpulse/internal/probe/ping"
	"github.com/netpulse/netpulse/internal/probe/speedtest"
	"github.com/netpulse/netpulse/internal/probe/tcp"
)

// Registry lists every probe type.
var Registry = probe.NewRegistry(
	ping.Type,
	speedtest.Type,
	tcp.Type,
	http.Type,
	dns.Type,
	path.Type,
)
