package testutil

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FreeAddr returns a loopback address "127.0.0.1:port" whose port was free a
// moment ago. Another process may take it before the caller binds it; that
// race is accepted in tests (the bind then fails loudly, it never misroutes).
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(FreeAddr(t))
	n, _ := strconv.Atoi(port)
	return n
}

// Process is a child process started by StartProcess: its output goes to the
// test log (line by line, prefixed with its name) and to a buffer the test
// can inspect; it is killed at cleanup if still running.
type Process struct {
	Name string
	Cmd  *exec.Cmd

	out     *lineLogger
	done    chan struct{}
	waitErr error
}

// StartProcess starts cmd (its Stdout and Stderr must be unset) and registers
// a cleanup that kills it and waits for it.
func StartProcess(t testing.TB, name string, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Name: name, Cmd: cmd, out: &lineLogger{t: t, prefix: name}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s (%s): %v", name, cmd.Path, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		p.out.flush()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		p.out.stop()
	})
	return p
}

// Done is closed when the process has exited (and its output was read).
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Wait waits up to timeout for the process to exit and returns its exit code
// (-1 if a signal killed it) or an error saying it is still running.
func (p *Process) Wait(timeout time.Duration) (int, error) {
	select {
	case <-p.done:
	case <-time.After(timeout):
		return 0, fmt.Errorf("%s (pid %d) still running after %v", p.Name, p.Cmd.Process.Pid, timeout)
	}
	if ee, ok := errors.AsType[*exec.ExitError](p.waitErr); ok {
		return ee.ExitCode(), nil
	}
	if p.waitErr != nil {
		return 0, fmt.Errorf("%s: %w", p.Name, p.waitErr)
	}
	return 0, nil
}

// Stop sends SIGTERM and waits up to timeout for the exit code.
func (p *Process) Stop(timeout time.Duration) (int, error) {
	if err := p.Signal(syscall.SIGTERM); err != nil && !p.Exited() {
		return 0, fmt.Errorf("%s: SIGTERM: %w", p.Name, err)
	}
	return p.Wait(timeout)
}

// Output returns everything the process wrote to stdout and stderr so far.
func (p *Process) Output() string { return p.out.String() }

// lineLogger sends complete lines to t.Log and keeps a copy. It stops logging
// once the test has finished, when t.Log would panic.
type lineLogger struct {
	t      testing.TB
	prefix string

	mu      sync.Mutex
	all     bytes.Buffer
	partial []byte
	stopped bool
}

func (l *lineLogger) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(b)
	l.partial = append(l.partial, b...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		if !l.stopped {
			l.t.Logf("%s: %s", l.prefix, l.partial[:i])
		}
		l.partial = l.partial[i+1:]
	}
	return len(b), nil
}

func (l *lineLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 && !l.stopped {
		l.t.Logf("%s: %s", l.prefix, l.partial)
	}
	l.partial = nil
}

func (l *lineLogger) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
}

func (l *lineLogger) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// Eventually calls f every 100 ms until it returns nil, and fails the test
// with f's last error if that does not happen within timeout.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	if err := Poll(timeout, f); err != nil {
		t.Fatal(err)
	}
}

// Poll calls f every 100 ms until it returns nil or timeout passes, and
// returns f's last error, wrapped with how long it tried. An error wrapped
// with Permanent stops the polling at once.
func Poll(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if pe, ok := errors.AsType[*permanentError](err); ok {
			return pe.err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not true after %v: %w", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Permanent marks an error that polling cannot outwait (a process exited),
// so Poll and Eventually give up at once.
func Permanent(err error) error { return &permanentError{err} }

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// ModuleRoot returns the directory of the netpulse module (where go.mod is),
// found by walking up from the test's working directory.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("module root: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("module root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// LookPath reports the path of an executable on PATH, or "".
func LookPath(name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	return p
}

// IsRoot reports whether the tests run as root (network namespaces, sysctls).
func IsRoot() bool { return os.Geteuid() == 0 }

// hermeticEnv returns the current environment without OTEL_* variables, so
// that a developer's own OpenTelemetry settings do not leak into a process
// under test, plus extra.
func hermeticEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}
