package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe"
)

// The refusals below happen before any run starts, so a bare API (no
// scheduler, no store) is enough: this is pure request-handling logic.
func bareAPI(loopback bool) *API {
	p := config.Probe{Name: "lan", Type: "ping", Targets: []config.Target{{Name: "gw", Host: "127.0.0.1"}}}
	return New(Options{Probes: []config.Probe{p}, Targets: []*probe.Target{probe.NewTarget(p, p.Targets[0])},
		Feed: NewFeed(), Loopback: loopback, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

func TestRunNowRefusedBeyondLoopbackWithoutToken(t *testing.T) {
	rec := httptest.NewRecorder()
	bareAPI(false).ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/probes/lan/runs", nil))
	var e apiError
	_ = json.Unmarshal(rec.Body.Bytes(), &e)
	if rec.Code != http.StatusForbidden || !strings.Contains(e.Error, "api.token is not set") {
		t.Errorf("status %d, %+v; want 403 naming api.token", rec.Code, e)
	}
}

func TestRunNowRefusesCrossOrigin(t *testing.T) {
	req := httptest.NewRequest("POST", "http://127.0.0.1:9517/api/v1/probes/lan/runs", nil)
	req.Header.Set("Origin", "https://evil.example")
	rec := httptest.NewRecorder()
	bareAPI(true).ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "cross-origin") {
		t.Errorf("status %d %s; want 403 cross-origin", rec.Code, rec.Body)
	}
}

// DNS rebinding: an attacker's name resolving to 127.0.0.1 makes its page
// same-origin with itself; the Host header still gives it away.
func TestRunNowRefusesRebindingHost(t *testing.T) {
	req := httptest.NewRequest("POST", "http://attacker.example:9517/api/v1/probes/lan/runs", nil)
	req.Header.Set("Origin", "http://attacker.example:9517")
	rec := httptest.NewRecorder()
	bareAPI(true).ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "attacker.example") {
		t.Errorf("status %d %s; want 403 naming the host", rec.Code, rec.Body)
	}
}

func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{"localhost:9517": true, "LOCALHOST": true, "127.0.0.1:9517": true,
		"127.1.2.3": true, "[::1]:9517": true, "::1": true, "localhost.": true, "attacker.example:9517": false,
		"192.0.2.1:9517": false, "localhost.attacker.example": false, "": false} {
		if got := loopbackHost(host); got != want {
			t.Errorf("loopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:9517": true, "[::1]:9517": true, "0.0.0.0:9517": false,
		"[::]:9517": false, "192.0.2.1:9517": false} {
		a, _ := net.ResolveTCPAddr("tcp", addr)
		if got := IsLoopback(a); got != want {
			t.Errorf("IsLoopback(%s) = %v", addr, got)
		}
	}
}
