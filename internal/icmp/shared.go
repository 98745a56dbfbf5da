package icmp

import (
	"io"
	"log/slog"
)

// Sharer holds resources shared by the probers of one agent
// (probe.Shared): the first caller of a key opens it, later ones get the
// same.
type Sharer interface {
	Get(key string, open func() (io.Closer, error)) (io.Closer, error)
}

// Shared returns the agent's engine for mode, opening it on first use, so
// that every probe type sending echoes (ping, path) shares one socket per
// address family and one receive loop per socket mode.
func Shared(s Sharer, mode Mode, logger *slog.Logger) (*Engine, error) {
	c, err := s.Get("icmp-engine/"+mode.String(), func() (io.Closer, error) {
		return Open(Options{Mode: mode, Logger: logger})
	})
	if err != nil {
		return nil, err
	}
	return c.(*Engine), nil
}

// ModeOf maps a probe's privileged setting to a socket mode: "true" raw,
// "false" datagram, anything else (auto) ModeAuto.
func ModeOf(privileged string) Mode {
	switch privileged {
	case "true":
		return ModeRaw
	case "false":
		return ModeDatagram
	}
	return ModeAuto
}
