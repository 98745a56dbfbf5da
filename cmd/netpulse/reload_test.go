package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/agent"
	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probes"
	"github.com/netpulse/netpulse/internal/testutil"
	"github.com/netpulse/netpulse/internal/version"
)

// A reloaded configuration that validates but cannot start (here: its
// start fails on purpose, as a storage path that cannot be created would)
// gives way to the previous configuration, so the agent keeps serving.
func TestReloadRestoresPreviousConfigWhenStartFails(t *testing.T) {
	dir := t.TempDir()
	good, err := config.Parse([]byte(`
storage: {path: `+dir+`}
probes: [{name: lan, type: ping, interval: 1m, targets: [{host: 127.0.0.1}], ping: {privileged: "false"}}]
`), probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	broken := *good
	addr := testutil.FreeAddr(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var starts atomic.Int32
	start := func(ctx context.Context, cfg *config.Config) (*agent.Agent, error) {
		starts.Add(1)
		if cfg == &broken {
			return nil, errors.New("cannot start")
		}
		return agent.New(ctx, agent.Options{Config: cfg, ListenAddress: addr, Logger: logger, Build: version.Get()})
	}
	ctx, cancel := context.WithCancel(context.Background())
	reload := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() {
		done <- runWithReload(ctx, good, func() (*config.Config, error) { return &broken, nil }, start, reload, logger)
	}()
	ready := func() error {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	}
	testutil.Eventually(t, 10*time.Second, ready)
	reload <- syscall.SIGHUP
	testutil.Eventually(t, 10*time.Second, func() error {
		if starts.Load() < 3 {
			return errors.New("reload not attempted yet")
		}
		return ready()
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("runWithReload: %v", err)
	}
	if n := starts.Load(); n != 3 {
		t.Errorf("%d starts, want 3: the first, the failed reload, the restored configuration", n)
	}
}
