//go:build !linux

package icmp

import "context"

// Engine is unavailable on this operating system: Open returns
// ErrUnsupported and callers fall back to another pinger.
type Engine struct{}

// Open returns ErrUnsupported.
func Open(opts Options) (*Engine, error) { return nil, ErrUnsupported }

// Close does nothing.
func (e *Engine) Close() error { return nil }

// Ping returns ErrUnsupported.
func (e *Engine) Ping(ctx context.Context, req Request) (Result, error) {
	return Result{}, ErrUnsupported
}

// Stats returns zeros.
func (e *Engine) Stats() Stats { return Stats{} }
