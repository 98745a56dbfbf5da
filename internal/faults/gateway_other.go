//go:build !linux

package faults

import (
	"context"
	"errors"
	"log/slog"
)

// DefaultGateways is implemented on Linux only.
func DefaultGateways() ([]Gateway, error) {
	return nil, errors.New("default gateways: not supported on this operating system")
}

// WatchRoutes is implemented on Linux only.
func WatchRoutes(context.Context, func(), *slog.Logger) error {
	return errors.New("route notifications: not supported on this operating system")
}
