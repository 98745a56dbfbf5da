package network

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
)

// Error types of network failures: part of the bounded error.type
// vocabulary (the probe package lists all of it). Never error text.
const (
	ErrResolve     = "resolve"      // the host name did not resolve, or not to an allowed family
	ErrNoReply     = "no_reply"     // the target did not answer in time
	ErrPermission  = "permission"   // the OS refused the socket, the bind or the send
	ErrNetwork     = "network"      // sending failed locally: no route, interface down, address not available
	ErrRefused     = "refused"      // the target answered with a TCP reset (nothing listens)
	ErrUnreachable = "unreachable"  // an ICMP destination unreachable answered
	ErrTTLExceeded = "ttl_exceeded" // an ICMP time exceeded answered: a routing loop or a TTL too small
	ErrInternal    = "internal"     // anything unexpected: a bug or an unknown OS error
)

// Error is a failure with its error type. Any error with an ErrorType
// method is classified by it (probe.ErrorType).
type Error struct {
	Type string
	Err  error
}

func (e *Error) Error() string     { return e.Err.Error() }
func (e *Error) Unwrap() error     { return e.Err }
func (e *Error) ErrorType() string { return e.Type }

// Fail wraps err as a failure of the given type.
func Fail(errType string, err error) error { return &Error{Type: errType, Err: err} }

// Classify maps an OS or network error to an error type: the one mapping
// every probe type uses, so "refused" or "unreachable" means the same in a
// ping, a speed test and a TCP probe. An error that already carries a type
// keeps it. Context errors are left to the caller (timeout or canceled).
func Classify(err error) string {
	if err == nil {
		return ""
	}
	if te, ok := errors.AsType[typedError](err); ok {
		return te.ErrorType()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return ErrNoReply
	case errors.As(err, new(*net.DNSError)):
		return ErrResolve
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrRefused
	case errors.Is(err, syscall.EHOSTUNREACH):
		return ErrUnreachable
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EPROTONOSUPPORT):
		return ErrPermission
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.ENETDOWN),
		errors.Is(err, syscall.EHOSTDOWN), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, io.ErrUnexpectedEOF):
		return ErrNetwork
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return ErrNoReply
	}
	if errors.As(err, new(*net.OpError)) {
		return ErrNetwork
	}
	return ErrInternal
}

// typedError is an error that knows its error type.
type typedError interface {
	error
	ErrorType() string
}
