// Command agentbench runs a built netpulse agent with many loopback ping
// targets (127.1.0.0/16, inside 127.0.0.0/8) and measures it from outside,
// as an operator would, through /metrics and /proc:
//
//	agentbench reload --agent ./netpulse --targets 1000 --reloads 4
//	agentbench soak   --agent ./netpulse --targets 1000 --duration 1h
//
// reload: after every target has run, POST /-/reload alternates two
// configurations that differ in 30 targets (10 changed, 10 removed or
// re-added, 10 added or removed) and keep the other 980 as they are. Per
// reload it prints how long the agent took to apply it (as it logs it) and
// from the POST to its "configuration reloaded" log line, how many of the
// kept targets kept their state (netpulse_probe_runs_total not reset and
// netpulse_probe_success present just after), and, from history, the runs
// of the kept targets from the one in flight at the reload to one interval
// later: those cut short (successful with fewer echoes than configured: a
// distorted sample) and the false loss points (not successful; every target
// is 127.x, which always answers). Then goroutines, open fds and RSS before
// the first reload and after the last (the same configuration again after
// an even number).
//
// soak: prints resident memory, goroutines and open file descriptors at
// the start, the middle and the end, and the runs that failed meanwhile.
// Both use the default ping settings (every 30 s, 10 echoes 250 ms apart),
// the ones issue 12 measured ~8 % false loss points per reload with.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		log.Fatal("usage: agentbench reload|soak [flags]")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	bin := fs.String("agent", "", "netpulse binary")
	targets := fs.Int("targets", 1000, "loopback ping targets")
	reloads := fs.Int("reloads", 4, "reloads (reload)")
	duration := fs.Duration("duration", time.Hour, "how long to run (soak)")
	_ = fs.Parse(os.Args[2:])
	if *bin == "" {
		log.Fatal("--agent is required")
	}
	a, err := start(*bin, *targets)
	if err != nil {
		log.Fatal(err)
	}
	defer a.stop()
	switch os.Args[1] {
	case "reload":
		err = benchReload(a, *targets, *reloads)
	case "soak":
		err = soak(a, *targets, *duration)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		a.stop()
		log.Fatalf("%v\nagent log tail:\n%s", err, a.tail())
	}
}

// interval is the ping probes' interval (the default).
const interval = 30 * time.Second

// configYAML is n targets t0000… on 127.1.x.y; with variant, targets 0-9
// move to 127.2.0.x, 10-19 are left out and 10 more (t9000…) are added.
func configYAML(dir string, n int, variant bool) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "storage: {path: %s}\nprobes:\n  - name: lan\n    type: ping\n    targets:\n", dir)
	for i := range n {
		host := fmt.Sprintf("127.1.%d.%d", i/250, i%250+1)
		switch {
		case variant && i < 10:
			host = fmt.Sprintf("127.2.0.%d", i+1)
		case variant && i < 20:
			continue
		}
		fmt.Fprintf(&b, "      - {name: t%04d, host: %s}\n", i, host)
	}
	if variant {
		for i := range 10 {
			fmt.Fprintf(&b, "      - {name: t9%03d, host: 127.3.0.%d}\n", i, i+1)
		}
	}
	return b.Bytes()
}

// kept tells whether target name is in both configurations unchanged.
func kept(name string, n int) bool {
	var i int
	if _, err := fmt.Sscanf(name, "t%04d", &i); err != nil {
		return false
	}
	return i >= 20 && i < n
}

type agent struct {
	cmd  *exec.Cmd
	url  string
	dir  string
	log  *syncBuffer
	done chan struct{}
}

// syncBuffer is the agent's output, written by exec's copying goroutine
// while the bench reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(bin string, n int) (*agent, error) {
	dir, err := os.MkdirTemp("", "agentbench-")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "netpulse.yml"), configYAML(dir, n, false), 0o600); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	a := &agent{url: "http://" + addr, dir: dir, log: &syncBuffer{}, done: make(chan struct{})}
	a.cmd = exec.Command(bin, "--config.file", filepath.Join(dir, "netpulse.yml"), "--web.listen-address", addr,
		"--web.enable-lifecycle")
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	if err := a.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = a.cmd.Wait(); close(a.done) }()
	return a, poll(30*time.Second, func() error {
		select {
		case <-a.done:
			return errors.New("agent exited")
		default:
		}
		resp, err := http.Get(a.url + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
}

// halt stops the agent (SIGINT: it flushes its history) and keeps its
// directory.
func (a *agent) halt() error {
	select {
	case <-a.done:
		return nil
	default:
	}
	_ = a.cmd.Process.Signal(os.Interrupt)
	select {
	case <-a.done:
		return nil
	case <-time.After(15 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
		return fmt.Errorf("the agent did not stop within 15 s")
	}
}

func (a *agent) stop() {
	if a.cmd.Process != nil {
		_ = a.halt()
	}
	_ = os.RemoveAll(a.dir)
}

// appliedIn is the duration the agent logged for its last reload by
// difference ("configuration reloaded ... duration=…"), or "-".
func (a *agent) appliedIn() string {
	lines := strings.Split(a.log.String(), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "configuration reloaded") {
			if _, d, ok := strings.Cut(lines[i], " duration="); ok {
				d, _, _ = strings.Cut(d, " ")
				return d
			}
			return "-"
		}
	}
	return "-"
}

func (a *agent) tail() string {
	s := a.log.String()
	return s[max(0, len(s)-3000):]
}

// families scrapes /metrics.
func (a *agent) families() (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(a.url + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(bytes.NewReader(body))
}

// byTarget sums a family's values per target_name, over series whose
// labels match where (nil: all).
func byTarget(f map[string]*dto.MetricFamily, name string, where func(map[string]string) bool) map[string]float64 {
	out := map[string]float64{}
	mf := f[name]
	if mf == nil {
		return out
	}
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if where != nil && !where(labels) {
			continue
		}
		v := m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
		out[labels["target_name"]] += v
	}
	return out
}

func scalar(f map[string]*dto.MetricFamily, name string) float64 {
	var v float64
	if mf := f[name]; mf != nil {
		for _, m := range mf.GetMetric() {
			v += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
		}
	}
	return v
}

func notSuccess(l map[string]string) bool { return l["outcome"] != "success" }

// waitAllRan waits until every target has a success series.
func (a *agent) waitAllRan(n int) error {
	return poll(2*interval, func() error {
		f, err := a.families()
		if err != nil {
			return err
		}
		if got := len(byTarget(f, "netpulse_probe_success", nil)); got < n {
			return fmt.Errorf("%d of %d targets have run", got, n)
		}
		return nil
	})
}

// poll calls f until it succeeds or timeout passes, 100 ms apart (a
// scrape of 1,000 targets is not free).
func poll(timeout time.Duration, f func() error) error {
	return pollEvery(100*time.Millisecond, timeout, f)
}

func pollEvery(every, timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", timeout, err)
		}
		time.Sleep(every)
	}
}
