package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/logging"
	"github.com/netpulse/netpulse/internal/probes"
	"github.com/netpulse/netpulse/internal/testutil"
	"github.com/netpulse/netpulse/internal/version"
)

// The agent's own log, in both formats, as a log pipeline reads it: run
// values are attributes (values.rtt_avg_seconds=..., not Go's map[...]
// text), a run without error has no error attribute (never error=<nil> or
// "error":null), and JSON durations are seconds, not nanoseconds.
func TestLogOutput(t *testing.T) {
	open, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	go func() {
		for {
			c, err := open.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	closed := closedPort(t)

	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			cfg, err := config.Parse(fmt.Appendf(nil, `
storage: {path: %s}
probes:
  - name: up
    type: tcp
    interval: 1s
    timeout: 500ms
    targets: [{host: "%s", labels: {role: lan}}]
  - name: down
    type: tcp
    interval: 1s
    timeout: 500ms
    targets: [{host: "%s"}]
`, t.TempDir(), open.Addr(), closed), probes.Registry)
			if err != nil {
				t.Fatal(err)
			}
			var out syncBuffer
			logger, err := logging.New(&out, "debug", format)
			if err != nil {
				t.Fatal(err)
			}
			a, err := New(t.Context(), Options{Config: cfg, ListenAddress: "127.0.0.1:0", Logger: logger,
				Build: version.Get(), Reload: reloaded()})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			// Two runs of each probe: a success and a failure (refused),
			// each logged as a debug "probe run", the failure also as a warning.
			testutil.Eventually(t, 20*time.Second, func() error {
				if n := strings.Count(out.String(), "probe run"); n < 4 {
					return fmt.Errorf("%d probe runs logged", n)
				}
				return nil
			})
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			log := out.String()
			for _, bad := range []string{"map[", "<nil>", `"error":null`, "%!"} {
				if strings.Contains(log, bad) {
					t.Errorf("log contains %q:\n%s", bad, log)
				}
			}
			switch format {
			case "text":
				for _, want := range []string{"values.resolve_seconds=", "duration=", "error="} {
					if !strings.Contains(log, want) {
						t.Errorf("text log lacks %q:\n%s", want, log)
					}
				}
			case "json":
				checkJSONLog(t, log)
			}
		})
	}
}

// checkJSONLog checks that every line is a JSON object, run values are an
// object of numbers, durations are seconds and a successful run has no
// error key.
func checkJSONLog(t *testing.T, log string) {
	t.Helper()
	var runs, successes int
	for line := range strings.Lines(log) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("not JSON: %v: %s", err, line)
			continue
		}
		if rec["msg"] != "probe run" {
			continue
		}
		runs++
		d, ok := rec["duration"].(float64)
		if !ok || d <= 0 || d > 5 {
			t.Errorf("duration %v: want seconds of a run bounded by 500ms: %s", rec["duration"], line)
		}
		if _, ok := rec["values"].(map[string]any); !ok {
			t.Errorf("values %v is not an object: %s", rec["values"], line)
		}
		if rec["outcome"] == "success" {
			successes++
			if _, has := rec["error"]; has {
				t.Errorf("a successful run has an error attribute: %s", line)
			}
		}
	}
	if runs < 4 || successes == 0 {
		t.Errorf("%d probe runs, %d successful, in:\n%s", runs, successes, log)
	}
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// syncBuffer is a bytes.Buffer safe for the agent's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
