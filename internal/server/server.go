// Package server is the agent's HTTP surface: /metrics for Prometheus,
// /healthz and /readyz for orchestrators, and a landing page.
package server

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"
	"golang.org/x/net/netutil"
)

// Server serves the agent's endpoints on one listener.
type Server struct {
	http      *http.Server
	listener  net.Listener
	ready     atomic.Bool
	logger    *slog.Logger
	webConfig string
}

// Options configures the server.
type Options struct {
	// Metrics serves /metrics (telemetry's handler); else Gatherer backs
	// it through promhttp; neither disables the endpoint.
	Metrics  http.Handler
	Gatherer prometheus.Gatherer
	Version  string
	Logger   *slog.Logger
	// API serves /api/ and Page serves / (the status page); a nil Page
	// keeps the plain landing page.
	API, Page http.Handler
	// OnShutdown runs when draining starts (ends long-lived event streams).
	OnShutdown func()
	// Limits bound what one client can hold; zero fields take the defaults.
	Limits Limits
	// Reload, when set, serves POST /-/reload (--web.enable-lifecycle): it
	// asks for a reload and answers at once; the outcome is in
	// netpulse_config_last_reload_successful and the log.
	Reload func()
	// WebConfigFile is an exporter-toolkit web configuration
	// (--web.config.file): TLS and basic auth for every endpoint, as
	// Prometheus and its exporters read it. Empty: plain HTTP, no auth.
	WebConfigFile string
}

// Listen binds addr (":9517", "127.0.0.1:0") so the caller knows the
// address before serving starts.
func Listen(addr string, opts Options) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on --web.listen-address %q: %w", addr, err)
	}
	return New(l, opts), nil
}

// New serves on l (a Handoff's listener keeps the socket across reloads).
func New(l net.Listener, opts Options) *Server {
	limits := opts.Limits.withDefaults()
	// Connections beyond the cap wait in the kernel's accept queue until
	// one closes, so idle or slow clients cannot take every file descriptor.
	s := &Server{listener: netutil.LimitListener(l, limits.MaxConns), logger: opts.Logger, webConfig: opts.WebConfigFile}
	mux := http.NewServeMux()
	if opts.Metrics != nil {
		mux.Handle("GET /metrics", opts.Metrics)
	} else if opts.Gatherer != nil {
		// OpenMetrics is negotiated so exemplars (trace ids) reach Prometheus.
		mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
			EnableOpenMetrics: true, ErrorLog: slog.NewLogLogger(opts.Logger.Handler(), slog.LevelError),
			Timeout: 30 * time.Second,
		}))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if opts.API != nil {
		mux.Handle("/api/", opts.API)
	}
	if opts.Reload != nil {
		mux.HandleFunc("POST /-/reload", func(w http.ResponseWriter, _ *http.Request) {
			opts.Reload()
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprintln(w, "reload requested; its outcome: netpulse_config_last_reload_successful, and the log")
		})
	}
	if opts.Page != nil {
		mux.Handle("/", opts.Page)
	} else {
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_ = landing.Execute(w, opts)
		})
	}
	s.http = &http.Server{
		Handler:           logRequests(opts.Logger, streamDeadlines(limits.WriteTimeout, mux)),
		ReadHeaderTimeout: limits.ReadHeaderTimeout,
		ReadTimeout:       limits.ReadTimeout,
		WriteTimeout:      limits.WriteTimeout,
		IdleTimeout:       limits.IdleTimeout,
		MaxHeaderBytes:    limits.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
	}
	if opts.OnShutdown != nil {
		s.http.RegisterOnShutdown(opts.OnShutdown)
	}
	return s
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.listener.Addr() }

// SetReady flips /readyz.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Serve serves until ctx ends, then drains connections for up to drain.
func (s *Server) Serve(ctx context.Context, drain time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- s.serve() }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	s.SetReady(false)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	err := s.http.Shutdown(shutdownCtx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}

// serve serves plain HTTP, or through exporter-toolkit when a web
// configuration is given: it re-reads the file for every request (users)
// and TLS handshake (certificates), so rotated certificates and changed
// passwords apply without a restart.
func (s *Server) serve() error {
	if s.webConfig == "" {
		return s.http.Serve(s.listener)
	}
	quiet := slog.New(levelAtLeast{s.logger.Handler(), slog.LevelWarn}) // it logs "Listening on" at every (re)start
	return web.Serve(s.listener, s.http, &web.FlagConfig{WebConfigFile: &s.webConfig}, quiet)
}

// ValidateWebConfig reads a web configuration file and the certificates it
// names, so that a bad file stops the agent at start with its reason
// instead of failing every request.
func ValidateWebConfig(path string) error {
	if path == "" {
		return nil
	}
	if err := web.Validate(path); err != nil {
		return fmt.Errorf("--web.config.file %s: %w", path, err)
	}
	return nil
}

// levelAtLeast drops records below a level.
type levelAtLeast struct {
	slog.Handler
	min slog.Level
}

func (h levelAtLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

var landing = template.Must(template.New("landing").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>netpulse</title></head>
<body><h1>netpulse {{.Version}}</h1>
<p>Network quality agent.</p>
<ul><li><a href="metrics">Metrics</a></li><li><a href="healthz">Health</a></li><li><a href="readyz">Readiness</a></li></ul>
</body></html>
`))
