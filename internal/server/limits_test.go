package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// startServer serves handler as the API on a loopback port with limits and
// returns the address; the server stops when the test ends.
func startServer(t *testing.T, limits Limits, api http.Handler) string {
	t.Helper()
	s, err := Listen("127.0.0.1:0", Options{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		API:    api, Limits: limits,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, time.Second) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return s.Addr().String()
}

// request sends one keep-alive GET on conn and reads its answer.
func request(t *testing.T, conn net.Conn, br *bufio.Reader, path string) (*http.Response, string) {
	t.Helper()
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", path, err)
	}
	return resp, string(body)
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, bufio.NewReader(conn)
}

// waitClosed reads from conn until the server closes it, failing after
// within; it returns how long that took.
func waitClosed(t *testing.T, conn net.Conn, br *bufio.Reader, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(within))
	_, err := br.ReadByte()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %s", within)
	}
	if err == nil {
		t.Fatal("server sent unexpected data on an idle connection")
	}
	return time.Since(start)
}

func TestIdleKeepAliveConnectionsAreClosed(t *testing.T) {
	const idle = 300 * time.Millisecond
	addr := startServer(t, Limits{IdleTimeout: idle}, nil)
	conn, br := dial(t, addr)
	if resp, _ := request(t, conn, br, "/healthz"); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if took := waitClosed(t, conn, br, 20*time.Second); took < idle/2 {
		t.Fatalf("closed after %s, before the idle timeout %s", took, idle)
	}
}

func TestConnectionsBeyondTheCapWait(t *testing.T) {
	addr := startServer(t, Limits{MaxConns: 2}, nil)
	var held []net.Conn
	for range 2 {
		conn, br := dial(t, addr)
		request(t, conn, br, "/healthz") // accepted, then idle on keep-alive
		held = append(held, conn)
	}
	third, br := dial(t, addr) // the kernel completes the handshake; the server does not accept
	if _, err := fmt.Fprintf(third, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = third.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("a connection beyond the cap of 2 was served")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("want the third connection to wait, got %v", err)
	}
	held[0].Close()
	_ = third.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("third connection after one closed: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestOversizedHeaderIsRefused(t *testing.T) {
	addr := startServer(t, Limits{MaxHeaderBytes: 4 << 10}, nil)
	conn, br := dial(t, addr)
	big := strings.Repeat("a", 64<<10)
	if _, err := fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", big); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
}

func TestSlowHeadersAreCut(t *testing.T) {
	addr := startServer(t, Limits{ReadHeaderTimeout: 300 * time.Millisecond}, nil)
	conn, br := dial(t, addr)
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err) // the blank line that ends the headers never comes
	}
	waitClosed(t, conn, br, 20*time.Second)
}

// TestWriteTimeout checks that the total write timeout cuts an ordinary
// answer that takes too long, but neither the event stream nor a ?wait=
// request, both of which outlive it (and the read timeout) by design.
func TestWriteTimeout(t *testing.T) {
	const writeTimeout = 300 * time.Millisecond
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * writeTimeout): // the work the answer waits for
		case <-r.Context().Done(): // as the API's waits do
			http.Error(w, "cancelled", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "late")
	})
	mux.HandleFunc("GET /api/v1/events", func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		tick := time.NewTicker(writeTimeout / 4)
		defer tick.Stop()
		for i := range 16 { // four write timeouts long
			select {
			case <-tick.C:
			case <-r.Context().Done(): // as the API's stream does
				return
			}
			if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	})
	// Long answers must outlive the read timeout too (net/http lifts the
	// read deadline once the request is read; this keeps it so).
	addr := startServer(t, Limits{WriteTimeout: writeTimeout, ReadTimeout: writeTimeout}, mux)

	t.Run("ordinary answers are cut", func(t *testing.T) {
		conn, br := dial(t, addr)
		if _, err := fmt.Fprintf(conn, "GET /api/v1/slow HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		if resp, err := http.ReadResponse(br, nil); err == nil {
			t.Fatalf("got status %d after the write timeout, want the connection cut", resp.StatusCode)
		}
	})
	t.Run("wait requests are not cut", func(t *testing.T) {
		conn, br := dial(t, addr)
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, body := request(t, conn, br, "/api/v1/slow?wait=10s")
		if resp.StatusCode != http.StatusOK || body != "late\n" {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
	})
	t.Run("event streams are not cut", func(t *testing.T) {
		conn, br := dial(t, addr)
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, body := request(t, conn, br, "/api/v1/events")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "data: 15\n") {
			t.Fatalf("status %d, stream ended early: %q", resp.StatusCode, body)
		}
	})
}
