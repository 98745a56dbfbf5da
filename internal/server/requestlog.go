package server

import (
	"log/slog"
	"net/http"
	"time"
)

// logRequests logs every request once it is answered: method, path,
// status, bytes, duration and client. Reads that succeed (scrapes, page
// loads, API reads) log at debug, so a scraped agent stays quiet at info;
// writes and client errors at info; server errors at warn.
func logRequests(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rw, r)
		level := slog.LevelDebug
		switch {
		case rw.status >= 500:
			level = slog.LevelWarn
		case rw.status >= 400 || (r.Method != http.MethodGet && r.Method != http.MethodHead):
			level = slog.LevelInfo
		}
		logger.LogAttrs(r.Context(), level, "http request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", rw.status),
			slog.Int64("bytes", rw.bytes), slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr), slog.String("user_agent", r.UserAgent()))
	})
}

// statusWriter records the status and size of a response. Unwrap lets
// http.ResponseController reach the connection (flushing event streams).
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
