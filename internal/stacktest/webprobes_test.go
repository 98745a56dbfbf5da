package stacktest

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/probe/tlsinfo/tlstest"
)

// webProbes are the live agent's tcp and http probes, against an HTTPS
// server on loopback whose certificate (from a test CA) expires in ten
// days, with a path that answers 503: with fireThresholds, the
// certificate and status alerts return data.
func webProbes(t *testing.T) []map[string]any {
	t.Helper()
	ca := tlstest.NewCA(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/down" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, time.Now().Add(10*24*time.Hour), "127.0.0.1")}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tlsConfig := map[string]any{"ca_file": ca.File}
	return []map[string]any{{
		"name": "tls", "type": "tcp", "interval": "1s", "timeout": "900ms",
		"targets": []map[string]any{{"name": "web", "host": srv.Listener.Addr().String()}},
		"tcp":     map[string]any{"tls": true, "tls_config": tlsConfig},
	}, {
		"name": "site", "type": "http", "interval": "1s", "timeout": "900ms",
		"targets": []map[string]any{{"name": "web", "host": srv.URL + "/"}, {"name": "down", "host": srv.URL + "/down"}},
		"http":    map[string]any{"tls_config": tlsConfig},
	}}
}
