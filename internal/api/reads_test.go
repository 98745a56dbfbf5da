package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestTokenProtectsReads: with api.token_protects_reads every read needs
// the bearer token (401 without it or with a wrong one, 200 with it),
// except the index and the OpenAPI document; without the option reads
// stay open.
func TestTokenProtectsReads(t *testing.T) {
	protected := bareAPI(false)
	protected.opts.Token, protected.opts.ProtectReads = "s3cret", true
	open := bareAPI(false)
	open.opts.Token = "s3cret"
	reads := []string{"/api/v1/info", "/api/v1/probes", "/api/v1/probes/lan",
		"/api/v1/probes/lan/targets/gw/results", "/api/v1/probes/lan/targets/gw/aggregate",
		"/api/v1/runs/0000000000000000-0000000000000000", "/api/v1/events", "/api/v1/nothing"}
	do := func(a *API, method, path, auth string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "http://192.0.2.1:9517"+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, req)
		return rec
	}
	for _, path := range reads {
		for _, auth := range []string{"", "Bearer wrong", "Basic czNjcmV0"} {
			for _, method := range []string{"GET", "HEAD"} {
				if rec := do(protected, method, path, auth); rec.Code != http.StatusUnauthorized ||
					rec.Header().Get("WWW-Authenticate") == "" {
					t.Errorf("%s %s with %q: status %d, want 401 with WWW-Authenticate", method, path, auth, rec.Code)
				}
			}
		}
		if path == "/api/v1/events" {
			continue // a stream: it would not end
		}
		if rec := do(protected, "GET", path, "Bearer s3cret"); rec.Code == http.StatusUnauthorized {
			t.Errorf("GET %s with the token: 401", path)
		}
		if rec := do(open, "GET", path, ""); rec.Code == http.StatusUnauthorized {
			t.Errorf("GET %s without token_protects_reads: 401", path)
		}
	}
	for _, path := range []string{"/api/v1/", "/api/v1/openapi.json"} {
		if rec := do(protected, "GET", path, ""); rec.Code != http.StatusOK {
			t.Errorf("GET %s without a token: status %d, want 200 (it stays open)", path, rec.Code)
		}
	}
	// The status page's hook: the open index says whether to ask for the
	// token before reading.
	for a, want := range map[*API]string{protected: `"reads_need_token":true`, open: `"reads_need_token":false`} {
		if body := do(a, "GET", "/api/v1/", "").Body.String(); !strings.Contains(body, want) {
			t.Errorf("index %s, want %s", body, want)
		}
	}
}

// TestReadsRefuseRebindingHost: on a loopback listener, a read addressed
// to another name (DNS rebinding: attacker.example now resolving to
// 127.0.0.1) is refused, as run now is; reads addressed to localhost or a
// loopback address are served, and an agent listening beyond loopback
// (reached by any name) or protecting reads with its token does not check.
func TestReadsRefuseRebindingHost(t *testing.T) {
	get := func(a *API, host string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, httptest.NewRequest("GET", "http://"+host+"/api/v1/probes", nil))
		return rec
	}
	loopback := bareAPI(true)
	for _, host := range []string{"attacker.example:9517", "attacker.example", "192.0.2.1:9517", "localhost.attacker.example"} {
		rec := get(loopback, host)
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), host) {
			t.Errorf("read for host %q on a loopback listener: %d %s, want 403 naming the host", host, rec.Code, rec.Body)
		}
	}
	for _, host := range []string{"localhost:9517", "127.0.0.1:9517", "[::1]:9517", "LOCALHOST"} {
		if rec := get(loopback, host); rec.Code != http.StatusOK {
			t.Errorf("read for host %q on a loopback listener: %d, want 200", host, rec.Code)
		}
	}
	if rec := get(bareAPI(false), "netpulse.example:9517"); rec.Code != http.StatusOK {
		t.Errorf("read by name on an agent listening beyond loopback: %d, want 200", rec.Code)
	}
	protected := bareAPI(true)
	protected.opts.Token, protected.opts.ProtectReads = "s3cret", true
	req := httptest.NewRequest("GET", "http://netpulse.internal:9517/api/v1/probes", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	rec := httptest.NewRecorder()
	protected.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("read with the token by name on a loopback listener (a proxy): %d, want 200", rec.Code)
	}
}
