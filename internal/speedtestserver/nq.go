package speedtestserver

import (
	"encoding/json"
	"math"
	"net/http"
)

// The responsiveness test's endpoints (draft-ietf-ippm-responsiveness-09,
// "Server-side considerations"), so Apple's networkQuality,
// goresponsiveness and other RPM clients can test against this server:
//
//	GET  /.well-known/nq   the configuration: the three URLs below
//	GET  /api/v1/small     a tiny body, for latency probes
//	GET  /api/v1/large     NQLargeBytes, for load-generating downloads
//	POST /api/v1/upload    any body, read to nowhere (PUT too)
//
// Those clients load each connection for the whole test, so the large
// body is practically endless and an upload has no size limit: both are
// bounded by time instead (StallTimeout, MaxConnLifetime). The URLs use
// the scheme and host the configuration was asked with, so they point at
// this server however it is reached; clients that insist on HTTPS (and
// HTTP/2) need it behind a TLS front-end, whose X-Forwarded-Proto is
// honoured.
const (
	NQConfigPath = "/.well-known/nq"
	// NQLargeBytes is the large download's size: 8 GiB, as Apple's.
	NQLargeBytes = 8 << 30
)

// NQConfig is the configuration document of /.well-known/nq. URLs carries
// both the draft's key names and those of Apple's servers, which
// goresponsiveness and networkQuality read.
type NQConfig struct {
	Version      int               `json:"version"`
	URLs         map[string]string `json:"urls"`
	TestEndpoint string            `json:"test_endpoint,omitempty"`
}

func (s *Server) nqRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+NQConfigPath, s.nqConfig)
	mux.HandleFunc("GET /api/v1/small", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write([]byte{'x'})
	})
	mux.HandleFunc("GET /api/v1/large", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		s.stream(w, r, NQLargeBytes)
	})
	for _, m := range []string{"POST", "PUT"} {
		mux.HandleFunc(m+" /api/v1/upload", func(w http.ResponseWriter, r *http.Request) {
			s.discard(w, r, math.MaxInt64)
		})
	}
}

func (s *Server) nqConfig(w http.ResponseWriter, r *http.Request) {
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	base := scheme + "://" + r.Host
	small, large, upload := base+"/api/v1/small", base+"/api/v1/large", base+"/api/v1/upload"
	cfg := NQConfig{Version: 1, URLs: map[string]string{
		"small_download_url": small, "large_download_url": large, "upload_url": upload,
		"small_https_download_url": small, "large_https_download_url": large, "https_upload_url": upload,
	}}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(cfg)
}
