// Package tlsinfo is what the tcp and http probes share about TLS: the
// facts of a handshake (version, cipher, the chain's earliest expiry,
// whether it verified), a handshake that records them even when
// verification fails, and the netpulse.tls.* instruments both types feed.
//
// The handshake itself skips Go's verification and verifies the chain
// afterwards with the same roots and name, so that an expired or
// untrusted certificate still reports its expiry (what an alert needs to
// say how long ago it expired) and fails the run with error_type="tls"
// rather than leaving the certificate gauges empty.
package tlsinfo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/netpulse/netpulse/internal/network"
)

// ErrTLS is the error type of a failed handshake or an unverified chain.
const ErrTLS = "tls"

// Span attribute keys (semantic conventions where they exist).
const (
	KeyProtocolVersion = attribute.Key("tls.protocol.version") // 1.2, 1.3
	KeyCipher          = attribute.Key("tls.cipher")           // TLS_AES_128_GCM_SHA256
	KeyCertNotAfter    = attribute.Key("tls.server.not_after") // RFC 3339, earliest of the chain
	KeyVerified        = attribute.Key("tls.server.verified")
)

// Facts are what one handshake showed.
type Facts struct {
	// Version is the negotiated version as the semantic conventions
	// write it: "1.2", "1.3".
	Version string
	Cipher  string
	// Expiry is the earliest NotAfter of the certificates the server sent.
	Expiry time.Time
	// Verified tells whether the chain verified against the configured
	// roots for the server name, whatever insecure_skip_verify says.
	Verified bool
	// VerifyErr is why it did not.
	VerifyErr error
}

// Attributes are the facts as span attributes.
func (f Facts) Attributes() []attribute.KeyValue {
	kv := []attribute.KeyValue{KeyProtocolVersion.String(f.Version), KeyCipher.String(f.Cipher), KeyVerified.Bool(f.Verified)}
	if !f.Expiry.IsZero() {
		kv = append(kv, KeyCertNotAfter.String(f.Expiry.UTC().Format(time.RFC3339)))
	}
	return kv
}

// ClientConfig returns cfg prepared for Handshake: Go's verification off
// (Verify does it after the handshake), the server name defaulting to
// host when it is a name.
func ClientConfig(cfg *tls.Config, host string) *tls.Config {
	c := cfg.Clone()
	if c.ServerName == "" && net.ParseIP(host) == nil {
		c.ServerName = host
	}
	c.InsecureSkipVerify = true
	return c
}

// Handshake runs a TLS client handshake on conn with cfg (from
// network.TLSConfig), the server name defaulting to host. The returned
// facts are valid whenever the server sent a certificate; err is a
// failed handshake, or a chain that did not verify while verification
// was asked for (both error_type tls).
func Handshake(ctx context.Context, conn net.Conn, cfg *tls.Config, host string) (*tls.Conn, Facts, error) {
	tc := tls.Client(conn, ClientConfig(cfg, host))
	if err := tc.HandshakeContext(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, Facts{}, err
		}
		return nil, Facts{}, network.Fail(ErrTLS, fmt.Errorf("TLS handshake: %w", err))
	}
	f := Verify(tc.ConnectionState(), cfg, host)
	if !f.Verified && !cfg.InsecureSkipVerify {
		return tc, f, network.Fail(ErrTLS, f.VerifyErr)
	}
	return tc, f, nil
}

// Verify reads the facts of a completed handshake and verifies its chain
// against cfg's roots (the system's when none are set) for the server
// name (cfg's, else host).
func Verify(st tls.ConnectionState, cfg *tls.Config, host string) Facts {
	f := Facts{Version: Version(st.Version), Cipher: tls.CipherSuiteName(st.CipherSuite)}
	certs := st.PeerCertificates
	if len(certs) == 0 {
		f.VerifyErr = errors.New("the server sent no certificate")
		return f
	}
	for _, c := range certs {
		if f.Expiry.IsZero() || c.NotAfter.Before(f.Expiry) {
			f.Expiry = c.NotAfter
		}
	}
	name := cfg.ServerName
	if name == "" {
		name = host
	}
	opts := x509.VerifyOptions{Roots: cfg.RootCAs, DNSName: name, Intermediates: x509.NewCertPool()}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := certs[0].Verify(opts); err != nil {
		f.VerifyErr = fmt.Errorf("certificate of %s: %w", name, err)
		return f
	}
	f.Verified = true
	return f
}

// Version names a TLS version as the semantic conventions do ("1.3").
func Version(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "1.0"
	case tls.VersionTLS11:
		return "1.1"
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}
