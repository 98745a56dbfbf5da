package web_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/netpulse/netpulse/internal/web"
)

func get(t *testing.T, h http.Handler, path string, gzip bool) *http.Response {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	if gzip {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// The first load (the page, every script and style it links, the chart
// library) transfers at most 60 KiB gzip, and every file the page links is
// served.
func TestFirstLoadBudget(t *testing.T) {
	h := web.Handler()
	resp := get(t, h, "/", false)
	page, _ := io.ReadAll(resp.Body)
	links := regexp.MustCompile(`(?:src|href)="(static/[^"]+)"`).FindAllStringSubmatch(string(page), -1)
	if len(links) < 6 {
		t.Fatalf("the page links %d files: %v", len(links), links)
	}
	total := 0
	for _, path := range append([]string{"/"}, func() (ps []string) {
		for _, l := range links {
			ps = append(ps, "/"+l[1])
		}
		return
	}()...) {
		r := get(t, h, path, true)
		body, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 || r.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("%s: %d %v", path, r.StatusCode, r.Header)
		}
		t.Logf("%-28s %6d bytes gzip", path, len(body))
		total += len(body)
	}
	t.Logf("first load: %d bytes gzip", total)
	if total > 60<<10 {
		t.Errorf("first load is %d bytes gzip; budget 60 KiB", total)
	}
}

// The embedded uPlot is the pinned npm release, served as a script with
// its license beside it.
func TestVendoredUPlot(t *testing.T) {
	h := web.Handler()
	for path, want := range map[string]string{
		"/static/uPlot.iife.min.js": web.UPlotJSSHA256,
		"/static/uPlot.min.css":     web.UPlotCSSSHA256,
	} {
		r := get(t, h, path, false)
		body, _ := io.ReadAll(r.Body)
		sum := sha256.Sum256(body)
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s: sha256 %s, want %s (uPlot %s from npm)", path, got, want, web.UPlotVersion)
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") && !strings.HasPrefix(ct, "text/css") {
			t.Errorf("%s: Content-Type %q", path, ct)
		}
		if path == "/static/uPlot.iife.min.js" && !bytes.HasPrefix(body, []byte("/*! https://github.com/leeoniya/uPlot (v"+web.UPlotVersion+") */")) {
			t.Errorf("%s does not start with uPlot %s's banner", path, web.UPlotVersion)
		}
	}
	r := get(t, h, "/static/uPlot.LICENSE", false)
	body, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 || !bytes.Contains(body, []byte("The MIT License")) {
		t.Errorf("uPlot's license: %d %.80q", r.StatusCode, body)
	}
}
