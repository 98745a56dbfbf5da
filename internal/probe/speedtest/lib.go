package speedtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	st "github.com/showwin/speedtest-go/speedtest"

	"github.com/netpulse/netpulse/internal/tcpcc"
)

// The speedtest-go client is process-wide, for two reasons found in its
// source (v1.7.11):
//   - speedtest.New points http.DefaultClient.Transport at the new client
//     (importing the package does it once more), so New is called once,
//     during package initialisation, and the global is then put back;
//   - its DataManager holds one test's state (handlers, totals, a shared
//     "running" flag), so two tests must never use it at once: every use
//     holds libSem.
//
// netpulse uses it for server selection and the idle latency test only
// (download.go and upload.go say why the load is netpulse's own). libCall
// returns when the caller's context ends while an abandoned call keeps
// libSem until it returns, so the next test waits for it instead of
// sharing the client's state.
var (
	libTransport = &switchTransport{}
	lib          = newLib()
	libSem       = make(chan struct{}, 1)
)

func newLib() *st.Speedtest {
	c := st.New(st.WithDoer(&http.Client{Transport: libTransport}))
	http.DefaultClient.Transport = nil // undo speedtest-go's side effect: nil is http.DefaultTransport
	return c
}

// libCall runs f (speedtest-go calls) as sess, holding libSem, and returns
// when f does or ctx ends, whichever comes first.
func libCall(ctx context.Context, sess *session, f func()) error {
	select {
	case libSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	libTransport.current.Store(sess)
	done := make(chan struct{})
	go func() {
		defer func() { <-libSem }()
		defer close(done)
		f()
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// switchTransport routes speedtest-go's requests to the session that holds
// libSem.
type switchTransport struct{ current atomic.Pointer[session] }

func (t *switchTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	s := t.current.Load()
	if s == nil {
		return nil, errors.New("speedtest-go used outside a netpulse session")
	}
	return s.RoundTrip(req)
}

// userAgent identifies the client to servers that log or filter it.
const userAgent = "showwin/speedtest-go 1.7.11 (netpulse)"

// session is one run's HTTP client side: metered connections for
// speedtest-go, and the first failure its requests met (speedtest-go counts
// failed requests but does not say why).
type session struct {
	meter     *meter
	transport *http.Transport

	mu       sync.Mutex
	firstErr error
	// serverCC is the congestion control a netpulse server named for its
	// last download (tcpcc.Header), "" from other servers.
	serverCC string
}

func newSession(m *meter) *session {
	return &session{meter: m, transport: &http.Transport{
		DialContext:         m.dial,
		ForceAttemptHTTP2:   false, // speedtest-go's load is one HTTP/1.1 request per connection at a time
		MaxIdleConnsPerHost: 32,
		// The default 4 KB buffers cost a system call per 4 KB.
		WriteBufferSize:       uploadWriteSize,
		ReadBufferSize:        64 << 10,
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
	}}
}

// failedRequestPause slows down a load worker whose request failed (a
// refusing server, or the phase's end), so it never spins.
const failedRequestPause = 20 * time.Millisecond

func (s *session) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		time.Sleep(failedRequestPause)
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := s.transport.RoundTrip(req)
	switch {
	case err != nil && req.Context().Err() == nil:
		s.note(err)
	case err == nil && (resp.StatusCode < 200 || resp.StatusCode > 299):
		s.note(&statusError{method: req.Method, url: req.URL.String(), status: resp.Status})
	case err == nil && req.Method == http.MethodGet:
		if cc := resp.Header.Get(tcpcc.Header); tcpcc.ValidName(cc) {
			s.mu.Lock()
			s.serverCC = cc
			s.mu.Unlock()
		}
	}
	return resp, err
}

func (s *session) note(err error) {
	s.mu.Lock()
	if s.firstErr == nil {
		s.firstErr = err
	}
	s.mu.Unlock()
}

// takeErr returns and clears the first failure since the last call.
func (s *session) takeErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.firstErr
	s.firstErr = nil
	return err
}

func (s *session) close() { s.transport.CloseIdleConnections() }

// statusError is a non-2xx answer: the server is not a speed test server,
// or not at that URL.
type statusError struct{ method, url, status string }

func (e *statusError) Error() string { return fmt.Sprintf("%s %s: %s", e.method, e.url, e.status) }
