package icmp

import (
	"io"
	"log/slog"
	"sync"
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

// Handle is a prober's way to the engine: the agent's shared one (through
// s), opened by the first run that needs it and asked again after a
// failure, so fixing the sysctl or the capability needs no restart. With no
// sharer (a prober outside an agent) the engine is the handle's own, and
// Close closes it.
type Handle struct {
	sharer Sharer
	mode   Mode
	logger *slog.Logger

	mu     sync.Mutex
	engine *Engine
	own    bool
}

// NewHandle returns a handle on the engine of mode; s may be nil.
func NewHandle(s Sharer, mode Mode, logger *slog.Logger) *Handle {
	return &Handle{sharer: s, mode: mode, logger: logger}
}

// Engine returns the engine, opening it if it is not open.
func (h *Handle) Engine() (*Engine, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.engine != nil {
		return h.engine, nil
	}
	var e *Engine
	var err error
	if h.sharer == nil {
		e, err = Open(Options{Mode: h.mode, Logger: h.logger})
	} else {
		e, err = Shared(h.sharer, h.mode, h.logger)
	}
	if err != nil {
		return nil, err
	}
	h.engine, h.own = e, h.sharer == nil
	return e, nil
}

// Close closes the engine if it is the handle's own (an agent closes the
// shared one).
func (h *Handle) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.own && h.engine != nil {
		return h.engine.Close()
	}
	return nil
}
