package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/agent"
	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probes"
	"github.com/netpulse/netpulse/internal/server"
	"github.com/netpulse/netpulse/internal/testutil"
	"github.com/netpulse/netpulse/internal/version"
)

// A reloaded configuration that validates but cannot start (here: its
// start fails on purpose, as a storage path that cannot be created would)
// gives way to the previous configuration, so the agent keeps serving; and
// the socket stays bound throughout, so no other process can take the port
// between the old agent's stop and the next start.
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
	// global labels cannot change in place: the reload restarts the agent.
	broken.Global.Labels = map[string]string{"site": "elsewhere"}
	handoff, err := server.ListenHandoff("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer handoff.Close()
	addr := handoff.Listener().Addr().String()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var starts atomic.Int32
	var stolen atomic.Bool
	start := func(ctx context.Context, cfg *config.Config) (*agent.Agent, error) {
		starts.Add(1)
		if cfg == &broken {
			// The old agent has stopped: the port must still be ours.
			if l, err := net.Listen("tcp", addr); err == nil {
				stolen.Store(true)
				l.Close()
			}
			return nil, errors.New("cannot start")
		}
		return agent.New(ctx, agent.Options{Config: cfg, Listener: handoff.Listener(), Logger: logger, Build: version.Get()})
	}
	ctx, cancel := context.WithCancel(context.Background())
	reload := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() {
		done <- runWithReload(ctx, good, func() (*config.Config, error) { return &broken, nil }, start, reload, &agent.ReloadStatus{}, logger)
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
	if stolen.Load() {
		t.Error("another listener could bind the agent's port during the reload")
	}
}

// The token file is read when the configuration is loaded: a configuration
// restored after a failed reload does not need the file any more.
func TestLoadForRunReadsTheTokenFile(t *testing.T) {
	dir := t.TempDir()
	tokenFile, configFile := dir+"/token", dir+"/netpulse.yml"
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(configFile, []byte(`
api: {token_file: `+tokenFile+`}
probes: [{name: lan, type: ping, targets: [{host: 127.0.0.1}]}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := (&cli{ConfigFile: configFile}).loadForRun()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(tokenFile); err != nil {
		t.Fatal(err)
	}
	if tok, err := cfg.API.ResolveToken(); err != nil || tok != "s3cret" {
		t.Errorf("token after the file is gone: %q, %v; want the token read at load", tok, err)
	}
}
