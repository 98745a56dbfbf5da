package testutil

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// agentPkg is the command BuildAgent compiles.
const agentPkg = "github.com/netpulse/netpulse/cmd/netpulse"

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// BuildAgent compiles ./cmd/netpulse once per test binary and returns the
// executable's path. The binary lives in a temporary directory that Main
// removes when the tests end.
func BuildAgent(t testing.TB) string {
	t.Helper()
	root := ModuleRoot(t)
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "netpulse-test-bin-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "netpulse")
		cmd := exec.Command("go", "build", "-o", buildBin, agentPkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build %s: %v\n%s", agentPkg, err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// Main runs the tests of a package that uses BuildAgent and removes what was
// built afterwards: call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// Agent is a running netpulse started by StartAgent.
type Agent struct {
	// URL is the base URL of its HTTP server (http://127.0.0.1:port).
	URL        string
	Addr       string
	ConfigFile string
	Process    *Process
}

// AgentOption adjusts how StartAgent runs the agent.
type AgentOption func(*agentOptions)

type agentOptions struct {
	env      []string
	args     []string
	logLevel string
	allIPs   bool
}

// AgentOnAllAddresses makes the agent listen on every address (0.0.0.0),
// not loopback only, on the same free port: what an agent reachable from
// its network does (run now is off without a token). The test still
// reaches it on 127.0.0.1.
func AgentOnAllAddresses() AgentOption {
	return func(o *agentOptions) { o.allIPs = true }
}

// AgentEnv adds environment variables ("KEY=value"). The test's own OTEL_*
// variables are never passed on.
func AgentEnv(kv ...string) AgentOption {
	return func(o *agentOptions) { o.env = append(o.env, kv...) }
}

// AgentArgs adds command-line arguments after the ones StartAgent sets.
func AgentArgs(args ...string) AgentOption {
	return func(o *agentOptions) { o.args = append(o.args, args...) }
}

// AgentLogLevel sets --log.level (default info).
func AgentLogLevel(level string) AgentOption {
	return func(o *agentOptions) { o.logLevel = level }
}

// StartAgent writes configYAML to a file, runs the agent on a free loopback
// port and waits (up to 15 s) until /readyz answers 200. The agent is killed
// at cleanup if the test did not stop it.
func StartAgent(t testing.TB, configYAML string, opts ...AgentOption) *Agent {
	t.Helper()
	o := agentOptions{logLevel: "info"}
	for _, f := range opts {
		f(&o)
	}
	bin := BuildAgent(t)
	cfgFile := filepath.Join(t.TempDir(), "netpulse.yml")
	if err := os.WriteFile(cfgFile, []byte(configYAML), 0o600); err != nil {
		t.Fatalf("write agent config: %v", err)
	}
	addr := FreeAddr(t)
	listen := addr
	if o.allIPs {
		listen = "0.0.0.0" + strings.TrimPrefix(addr, "127.0.0.1")
	}
	args := append([]string{"--config.file", cfgFile, "--web.listen-address", listen, "--log.level", o.logLevel}, o.args...)
	cmd := exec.Command(bin, args...)
	// The default data directory is under XDG_STATE_HOME: keep each agent's
	// history in the test's temporary directory, never in the user's home.
	cmd.Env = hermeticEnv(append([]string{"XDG_STATE_HOME=" + t.TempDir()}, o.env...)...)
	a := &Agent{URL: "http://" + addr, Addr: addr, ConfigFile: cfgFile}
	a.Process = StartProcess(t, "netpulse", cmd)
	err := Poll(15*time.Second, func() error {
		if a.Process.Exited() {
			return Permanent(fmt.Errorf("agent exited before it was ready; its output:\n%s", a.Process.Output()))
		}
		status, _, err := a.Get("/readyz")
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("/readyz: status %d", status)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("start agent: %v", err)
	}
	return a
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// Get fetches a path of the agent and returns the status and body.
func (a *Agent) Get(path string) (int, string, error) {
	return get(a.URL+path, "")
}

// MetricsText fetches /metrics in the text format (0.0.4) or, with
// openMetrics, in OpenMetrics (the format that carries exemplars).
func (a *Agent) MetricsText(openMetrics bool) (string, error) {
	accept := ""
	if openMetrics {
		accept = "application/openmetrics-text;version=1.0.0"
	}
	status, body, err := get(a.URL+"/metrics", accept)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("/metrics: status %d: %s", status, body)
	}
	return body, nil
}

// Families scrapes /metrics and parses it, keyed by Prometheus family name
// (counters keep their _total suffix).
func (a *Agent) Families() (Families, error) {
	text, err := a.MetricsText(false)
	if err != nil {
		return nil, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("parse /metrics: %w", err)
	}
	return fams, nil
}

// Families is a parsed scrape.
type Families map[string]*dto.MetricFamily

// Sum adds up the values of the series of family name whose labels include
// all of labels (for histograms and summaries: their sample counts), and
// reports whether any series matched.
func (f Families) Sum(name string, labels map[string]string) (float64, bool) {
	fam, ok := f[name]
	if !ok {
		return 0, false
	}
	var sum float64
	found := false
	for _, m := range fam.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		case m.Summary != nil:
			sum += float64(m.Summary.GetSampleCount())
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		}
	}
	return sum, found
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	have := map[string]string{}
	for _, lp := range m.GetLabel() {
		have[lp.GetName()] = lp.GetValue()
	}
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

func get(url, accept string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}
