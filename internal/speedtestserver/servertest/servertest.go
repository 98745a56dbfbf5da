// Package servertest starts the built-in speed-test server for tests, as
// net/http/httptest does for HTTP servers.
package servertest

import (
	"context"
	"testing"

	"github.com/netpulse/netpulse/internal/speedtestserver"
)

// Start runs a speed-test server on a free loopback port until the test
// ends; its URL method gives the address for clients.
func Start(t testing.TB) *speedtestserver.Server {
	t.Helper()
	srv, err := speedtestserver.Listen("127.0.0.1:0", speedtestserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { _ = srv.Serve(ctx); close(served) }()
	t.Cleanup(func() { stop(); <-served })
	return srv
}
