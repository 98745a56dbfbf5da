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

// TestRunNowAuthRules: who may start a run, by token, listening address,
// Host and Origin; reads are open whatever the rules, but for the Host
// check of a loopback listener.
func TestRunNowAuthRules(t *testing.T) {
	for _, tc := range []struct {
		name     string
		token    string // api.token
		loopback bool   // the agent listens on loopback only
		host     string
		header   map[string]string
		status   int
		msg      string
	}{
		{"token: none sent", "s3cret", false, "", nil, 401, "missing bearer token: send Authorization: Bearer <api.token>"},
		{"token: empty", "s3cret", false, "", map[string]string{"Authorization": "Bearer "}, 401, "missing bearer token"},
		{"token: not bearer", "s3cret", false, "", map[string]string{"Authorization": "Basic czNjcmV0"}, 401, "missing bearer token"},
		{"token: wrong", "s3cret", false, "", map[string]string{"Authorization": "Bearer s3cret-not"}, 401, "invalid bearer token"},
		{"token: right", "s3cret", false, "", map[string]string{"Authorization": "Bearer s3cret"}, 202, ""},
		// With a token, the token alone decides: any Host, any Origin.
		{"token: right, any host", "s3cret", true, "netpulse.example:9517",
			map[string]string{"Authorization": "Bearer s3cret", "Origin": "https://dashboard.example"}, 202, ""},
		{"token: wrong on loopback", "s3cret", true, "", map[string]string{"Authorization": "Bearer nope"}, 401, "invalid bearer token"},
		{"no token, all interfaces", "", false, "", nil, 403, "run now is disabled: the agent listens beyond loopback and api.token is not set"},
		{"no token, loopback", "", true, "", nil, 202, ""},
		{"no token, localhost", "", true, "localhost:9517", map[string]string{"Origin": "http://localhost:9517"}, 202, ""},
		{"no token, ::1", "", true, "[::1]:9517", map[string]string{"Origin": "http://[::1]:9517"}, 202, ""},
		{"no token, rebinding", "", true, "attacker.example:9517", map[string]string{"Origin": "http://attacker.example:9517"}, 403,
			`request for host "attacker.example:9517" refused: without api.token, run now answers only requests addressed to localhost or a loopback address`},
		{"no token, cross-origin", "", true, "127.0.0.1:9517", map[string]string{"Origin": "https://evil.example"}, 403,
			`cross-origin request refused (Origin "https://evil.example", Host "127.0.0.1:9517")`},
		{"no token, other port", "", true, "127.0.0.1:9517", map[string]string{"Origin": "http://127.0.0.1:8080"}, 403, "cross-origin"},
		{"no token, bad origin", "", true, "127.0.0.1:9517", map[string]string{"Origin": "http://[::1"}, 403, "cross-origin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := newAPITest(t, 0)
			at.api.opts.Token, at.api.opts.Loopback = tc.token, tc.loopback
			a := serve(t, at.api, request{method: "POST", path: "/api/v1/probes/lan/runs", body: `{"target": "gw"}`,
				host: tc.host, header: tc.header})
			if a.status != tc.status {
				t.Fatalf("%d %s, want %d", a.status, a.body, tc.status)
			}
			if tc.status == 202 {
				return
			}
			if msg := a.errorText(t); msg != tc.msg && !strings.HasPrefix(msg, tc.msg) {
				t.Errorf("%q, want %q", msg, tc.msg)
			}
			if wa := a.header.Get("WWW-Authenticate"); (tc.status == 401) != strings.HasPrefix(wa, `Bearer realm="netpulse"`) {
				t.Errorf("WWW-Authenticate %q with %d", wa, tc.status)
			}
			if tc.msg == "invalid bearer token" && !strings.Contains(a.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("WWW-Authenticate %q lacks invalid_token", a.header.Get("WWW-Authenticate"))
			}
			// Reads need nothing, but on a loopback listener they must be
			// addressed to loopback (DNS rebinding, TestReadsRefuseRebindingHost).
			want := 200
			if tc.loopback && tc.host == "attacker.example:9517" {
				want = 403
			}
			if a := serve(t, at.api, request{path: "/api/v1/probes", host: tc.host, header: tc.header}); a.status != want {
				t.Errorf("a read under the same rules: %d, want %d", a.status, want)
			}
		})
	}
}
