package server

import (
	"net/http"
	"strings"
	"time"
)

// Limits bound the resources one client can hold on the agent's listener:
// without them, idle keep-alive connections and slow clients pile up until
// the agent runs out of file descriptors.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing an answer. Event streams and ?wait=
	// requests are exempt from the total: each of their writes gets
	// WriteTimeout instead (see streamDeadlines).
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections that send nothing.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header size.
	MaxHeaderBytes int
	// MaxConns caps open connections; more wait to be accepted.
	MaxConns int
}

// DefaultLimits are used for every zero field of Options.Limits. The write
// timeout leaves room for a /metrics scrape (its own timeout is 30 s).
var DefaultLimits = Limits{
	ReadHeaderTimeout: 10 * time.Second,
	ReadTimeout:       30 * time.Second,
	WriteTimeout:      60 * time.Second,
	IdleTimeout:       60 * time.Second,
	MaxHeaderBytes:    64 << 10,
	MaxConns:          512,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.ReadHeaderTimeout > 0 {
		d.ReadHeaderTimeout = l.ReadHeaderTimeout
	}
	if l.ReadTimeout > 0 {
		d.ReadTimeout = l.ReadTimeout
	}
	if l.WriteTimeout > 0 {
		d.WriteTimeout = l.WriteTimeout
	}
	if l.IdleTimeout > 0 {
		d.IdleTimeout = l.IdleTimeout
	}
	if l.MaxHeaderBytes > 0 {
		d.MaxHeaderBytes = l.MaxHeaderBytes
	}
	if l.MaxConns > 0 {
		d.MaxConns = l.MaxConns
	}
	return d
}

// eventsPath is the API's server-sent event stream, open for as long as a
// status page is.
const eventsPath = "/api/v1/events"

// streamDeadlines exempts long-lived answers from the server's total write
// timeout: the event stream, and API requests that wait (?wait=) for a run
// to finish before answering. Their connection's write deadline is lifted,
// and each write then gets writeTimeout of its own, so a client that stops
// reading is still cut while a healthy stream lasts as long as it likes.
func streamDeadlines(writeTimeout time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		long := r.URL.Path == eventsPath || (strings.HasPrefix(r.URL.Path, "/api/") && r.URL.Query().Has("wait"))
		if !long {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Time{}); err != nil {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&deadlineWriter{ResponseWriter: w, rc: rc, timeout: writeTimeout}, r)
	})
}

// deadlineWriter moves the connection's write deadline before every write
// and flush of a long-lived answer. The deadline also covers the final
// flush net/http makes after the handler returns.
type deadlineWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (w *deadlineWriter) extend() { _ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout)) }

func (w *deadlineWriter) WriteHeader(code int) {
	w.extend()
	w.ResponseWriter.WriteHeader(code)
}

func (w *deadlineWriter) Write(b []byte) (int, error) {
	w.extend()
	return w.ResponseWriter.Write(b)
}

// FlushError is what http.ResponseController.Flush calls first.
func (w *deadlineWriter) FlushError() error {
	w.extend()
	return w.rc.Flush()
}

func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
