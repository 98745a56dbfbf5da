//go:build !linux

package faults

import "errors"

// DefaultGateways is implemented on Linux only.
func DefaultGateways() ([]Gateway, error) {
	return nil, errors.New("default gateways: not supported on this operating system")
}
