package stacktest

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/speedtestserver"
	"github.com/netpulse/netpulse/internal/testutil"
)

// fireThresholds are the values the live test gives the alert thresholds
// (prometheus/rules/alerts.yml, group netpulse.thresholds) so that every
// alert's condition holds on a healthy loopback agent: the alert
// expressions then return data, which proves their joins and labels work.
// A new threshold needs an entry here.
var fireThresholds = map[string]string{
	"netpulse:threshold:ping_rtt_p95_seconds": "-1",
	"netpulse:threshold:ping_jitter_seconds":  "-1",
	"netpulse:threshold:ping_loss_ratio":      "-1",
	"netpulse:threshold:probe_failed_ratio":   "-1",
	"netpulse:threshold:stale_intervals":      "-1",
	"netpulse:threshold:speed_plan_ratio":     "1e12", // an upper bound: throughput below it
	"netpulse:threshold:bufferbloat_seconds":  "-1",
	"netpulse:threshold:budget_used_ratio":    "-1",
	"netpulse:threshold:cert_expiry_seconds":  "1e12", // an upper bound: expiring sooner
	"netpulse:threshold:fault_domain_ratio":   "-1",
}

// stack is the compose stack on loopback: agents, the collector (with a
// test collector standing in for Tempo), Prometheus with the shipped rules.
type stack struct {
	prom   *testutil.Prometheus
	col    *collector
	tempo  *testutil.Collector
	agent  *testutil.Agent // configured from compose/netpulse.yml
	broken *testutil.Agent // exports to a closed port
	dead   string          // a scrape target where nothing listens
}

// agentConfig derives the live agent's config from compose/netpulse.yml:
// the same telemetry with the collector's address, loopback probes (and a
// name that does not resolve) instead of public hosts.
func agentConfig(t *testing.T, otlpEndpoint string, push bool, resolver, speedtestURL string) string {
	t.Helper()
	var cfg map[string]any
	loadYAML(t, "compose/netpulse.yml", &cfg)
	otlp, _ := dig(cfg, "telemetry", "otlp").(map[string]any)
	if otlp == nil || otlp["endpoint"] == nil {
		t.Fatal("compose/netpulse.yml: no telemetry.otlp.endpoint: update agentConfig")
	}
	otlp["endpoint"] = otlpEndpoint
	otlp["metrics_interval"] = "1s"
	if push {
		otlp["signals"] = []string{"metrics", "traces"}
	}
	// Two on-demand speed tests in a row (startStack).
	cfg["api"] = map[string]any{"speedtest_min_interval": "1ms"}
	if st, ok := cfg["storage"].(map[string]any); ok {
		st["path"] = t.TempDir()
	}
	global, _ := cfg["global"].(map[string]any)
	if global == nil {
		global = map[string]any{}
		cfg["global"] = global
	}
	global["labels"] = map[string]string{"site": "lab"}
	global["resolver"] = resolver
	cfg["probes"] = []map[string]any{{
		"name": "lo", "type": "ping", "interval": "1s", "timeout": "900ms",
		"targets": []map[string]any{{"name": "loopback", "host": "127.0.0.1"}, {"name": "missing", "host": "missing.test"}},
		"ping":    map[string]any{"count": 3, "packet_interval": "50ms", "privileged": "auto"},
		// Thresholds give the netpulse_threshold_* series the alerts read.
		"thresholds": map[string]any{"latency": "100ms", "jitter": "30ms", "loss": "2%"},
	}, {
		// Hourly: the test starts its one run on demand (runSpeedtest).
		// A second per direction moves gigabytes on loopback, long
		// enough for loaded-latency samples.
		"name": "speed", "type": "speedtest", "interval": "1h", "timeout": "40s",
		"targets": []map[string]any{{"name": "local", "host": speedtestURL}},
		"speedtest": map[string]any{"duration": "1s", "max_bytes": "4GB", "connections": 2,
			"budget": map[string]any{"daily": "1TB"}},
		"thresholds": map[string]any{"download": "100Mbit/s", "upload": "20Mbit/s"},
	}, {
		// The test's DNS server answers NXDOMAIN: an answer, with every dns
		// series; expected by the first probe, a failure (rcode) of the second.
		"name": "resolver", "type": "dns", "interval": "1s", "timeout": "900ms",
		"targets": []map[string]any{{"name": "lab", "host": resolver}},
		"dns":     map[string]any{"query_name": "missing.test", "valid_rcodes": []string{"NOERROR", "NXDOMAIN"}},
	}, {
		"name": "resolver-strict", "type": "dns", "interval": "1s", "timeout": "900ms",
		"targets": []map[string]any{{"name": "lab", "host": resolver}},
		"dns":     map[string]any{"query_name": "missing.test"},
	}, {
		// A tier gives the fault-domain verdict its series too.
		"name": "route", "type": "path", "interval": "1s", "timeout": "900ms",
		"targets": []map[string]any{{"name": "loopback-path", "host": "127.0.0.1", "tier": "internet"}},
		"path":    map[string]any{"max_hops": 2, "rounds": 2, "round_interval": "50ms", "hop_timeout": "300ms"},
	}}
	cfg["probes"] = append(cfg["probes"].([]map[string]any), webProbes(t)...)
	b := writeYAML(t, t.TempDir(), "netpulse.yml", cfg)
	data, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// brokenAgentConfig exports to a closed port, so its telemetry errors count.
func brokenAgentConfig(t *testing.T) string {
	return fmt.Sprintf(`
global: {labels: {site: lab}}
telemetry:
  otlp: {endpoint: %q, protocol: grpc, insecure: true, timeout: 1s, metrics_interval: 1s}
storage: {path: %q}
probes:
  - name: lo-b
    type: ping
    interval: 1s
    timeout: 900ms
    targets: [{name: loopback-b, host: 127.0.0.2}]
    ping: {count: 2, packet_interval: 50ms, privileged: auto}
`, testutil.FreeAddr(t), t.TempDir())
}

// startPrometheus runs Prometheus with a loopback variant of
// prometheus/prometheus.yml: one-second intervals, the shipped rule files
// (thresholds from fireThresholds when fire is set), no Alertmanager, and the
// given targets per job; jobs of the shipped file without targets here
// (Tempo, Grafana, Alertmanager: not runnable on CI) are dropped.
func startPrometheus(t *testing.T, jobs map[string][]string, fire bool) *testutil.Prometheus {
	t.Helper()
	testutil.NeedPrometheus(t)
	dir := t.TempDir()
	addr := testutil.FreeAddr(t)
	jobs = maps.Clone(jobs)
	jobs["prometheus"] = []string{addr}

	var cfg map[string]any
	loadYAML(t, "prometheus/prometheus.yml", &cfg)
	global, _ := cfg["global"].(map[string]any)
	global["scrape_interval"], global["scrape_timeout"], global["evaluation_interval"] = "1s", "1s", "1s"
	delete(cfg, "alerting")
	var rules []string
	for rel, rf := range ruleFiles(t) {
		if fire {
			rf = withThresholds(t, rel, rf)
		}
		rules = append(rules, writeYAML(t, dir, filepath.Base(rel), rf))
	}
	cfg["rule_files"] = rules
	scs, _ := cfg["scrape_configs"].([]any)
	var kept []any
	seen := map[string]bool{}
	for _, sc := range scs {
		m, _ := sc.(map[string]any)
		name, _ := m["job_name"].(string)
		targets, ok := jobs[name]
		if !ok {
			continue
		}
		seen[name] = true
		m["static_configs"] = []map[string]any{{"targets": targets}}
		kept = append(kept, m)
	}
	for job := range jobs {
		if !seen[job] {
			t.Fatalf("prometheus/prometheus.yml has no job %q", job)
		}
	}
	cfg["scrape_configs"] = kept
	file := writeYAML(t, dir, "prometheus.yml", cfg)
	if out, err := exec.Command("promtool", "check", "config", file).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config (loopback variant): %v\n%s", err, out)
	}
	cmd := exec.Command(testutil.LookPath("prometheus"), "--config.file="+file,
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr,
		"--enable-feature=exemplar-storage", "--log.level=warn")
	cmd.Dir = dir
	p := &testutil.Prometheus{URL: "http://" + addr, Process: testutil.StartProcess(t, "prometheus", cmd)}
	testutil.Eventually(t, 30*time.Second, func() error {
		if p.Process.Exited() {
			return fmt.Errorf("prometheus exited")
		}
		_, err := p.Query("vector(1)")
		return err
	})
	return p
}

// withThresholds replaces the expressions of the threshold series.
func withThresholds(t *testing.T, rel string, rf ruleFile) ruleFile {
	t.Helper()
	for gi, g := range rf.Groups {
		for ri, r := range g.Rules {
			if !strings.HasPrefix(r.Record, "netpulse:threshold:") {
				continue
			}
			v, ok := fireThresholds[r.Record]
			if !ok {
				t.Fatalf("%s: threshold %s has no entry in fireThresholds (a value that makes its alert fire on a loopback agent)", rel, r.Record)
			}
			rf.Groups[gi].Rules[ri].Expr = "vector(" + v + ")"
		}
	}
	return rf
}

// startStack runs the stack. With push, the agent pushes its metrics through
// the collector and Prometheus scrapes only the collector.
func startStack(t *testing.T, push bool) *stack {
	t.Helper()
	testutil.NeedICMP(t)
	testutil.NeedPrometheus(t)
	needCollector(t)
	s := &stack{tempo: testutil.StartCollector(t), dead: testutil.FreeAddr(t)}
	s.col = startCollector(t, s.tempo.GRPCEndpoint)
	dns := testutil.DNSServer(t, map[string]netip.Addr{})
	srv, err := speedtestserver.Listen("127.0.0.1:0", speedtestserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(t.Context()) }()
	t.Cleanup(srv.Close)
	s.agent = testutil.StartAgent(t, agentConfig(t, s.col.GRPC, push, dns, srv.URL()))
	jobs := map[string][]string{"otel-collector": {s.col.Metrics}, "otelcol": {s.col.Self}}
	if !push {
		s.broken = testutil.StartAgent(t, brokenAgentConfig(t))
		jobs["netpulse"] = []string{s.agent.Addr, s.broken.Addr, s.dead}
	}
	s.prom = startPrometheus(t, jobs, !push)
	// The speed test holds the link: ping slots pass meanwhile and are
	// counted as skipped (exclusive). A counter's first value is not an
	// increase to rate(), so a second test, once Prometheus has seen the
	// first, makes the skips' rate visible.
	runSpeedtest(t, s.agent)
	if push {
		return s
	}
	testutil.Eventually(t, 30*time.Second, func() error {
		n, err := queryCount(s.prom, `netpulse_probe_runs_total{outcome="skipped", error_type="exclusive"}`)
		if err != nil || n == 0 {
			return fmt.Errorf("no exclusive skips in Prometheus yet (%v)", err)
		}
		return nil
	})
	runSpeedtest(t, s.agent)
	return s
}

// runSpeedtest starts the agent's speed test now (the on-demand API) and
// waits for it to finish, so that the speed-test series exist.
func runSpeedtest(t *testing.T, a *testutil.Agent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL+"/api/v1/probes/speed/runs?wait=50s",
		strings.NewReader(`{"target": "local"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("run the speed test: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("run the speed test: %s: %s", resp.Status, body)
	}
}

// queryCount returns the number of series an instant query returns.
func queryCount(p *testutil.Prometheus, expr string) (int, error) {
	v, err := p.Query(expr)
	return len(v), err
}

// TestStack runs the compose stack on loopback and checks what a user of it
// relies on: the agent's series in Prometheus, once each; its traces in
// "Tempo"; exemplars that name those traces; every rule healthy; and every
// PromQL expression of rules, dashboards and datasources answering.
func TestStack(t *testing.T) {
	s := startStack(t, false)
	p := s.prom
	a := fmt.Sprintf(`instance=%q`, s.agent.Addr)

	testutil.Eventually(t, 60*time.Second, func() error {
		for expr, want := range map[string]int{
			`up{job="netpulse"} == 1`: 2,
			`up{job="netpulse"} == 0`: 1, // the dead target
			`up{job="otelcol"} == 1`:  1, // the collector's own metrics
			`netpulse_probe_success{job="netpulse", target_name="loopback"} == 1`: 1,
			`netpulse_probe_success{job="netpulse", target_name="missing"} == 0`:  1,
		} {
			if n, err := queryCount(p, expr); err != nil || n != want {
				return fmt.Errorf("%s: %d series (%v), want %d", expr, n, err, want)
			}
		}
		return nil
	})

	// Scraped and not pushed: one series per target, none via the collector.
	for _, expr := range []string{
		`count by (probe_name, target_name) (netpulse_probe_success) > 1`,
		`{job="otel-collector", __name__=~"netpulse_.+"}`,
	} {
		if n, err := queryCount(p, expr); err != nil || n != 0 {
			t.Errorf("double ingestion: %s returned %d series (%v)", expr, n, err)
		}
	}

	// Traces reach the Tempo exporter, and exemplars name them.
	testutil.Eventually(t, 60*time.Second, func() error {
		ex, err := p.QueryExemplars(`netpulse_ping_rtt_seconds_bucket{` + a + `}`)
		if err != nil {
			return err
		}
		var ids []string
		for _, r := range ex {
			for _, e := range r.Exemplars {
				ids = append(ids, string(e.Labels["trace_id"]))
			}
		}
		if len(ids) == 0 {
			return fmt.Errorf("no exemplar with a trace_id on netpulse_ping_rtt_seconds_bucket yet")
		}
		got, err := s.tempo.Read()
		if err != nil {
			return err
		}
		if len(got.SpansNamed("ping lo")) == 0 {
			return fmt.Errorf("no span \"ping lo\" reached the Tempo exporter yet (%d spans)", len(got.Spans))
		}
		for _, id := range ids {
			if got.HasTrace(id) {
				return nil
			}
		}
		return fmt.Errorf("none of the %d exemplar trace ids reached the Tempo exporter yet", len(ids))
	})

	checkCollectorMetrics(t, p, "spans")
	checkRulesHealthy(t, p)
	checkExpressions(t, p)
}

// checkCollectorMetrics waits until the collector's own metrics for a signal
// (spans, metric_points) reach Prometheus under the names the dashboards
// query (collectorMetrics): the ones of a healthy pipeline, where nothing
// failed.
func checkCollectorMetrics(t *testing.T, p *testutil.Prometheus, signal string) {
	t.Helper()
	var want []string
	for name := range collectorMetrics {
		queue := strings.HasPrefix(name, "otelcol_exporter_queue_")
		if queue || strings.Contains(name, "_"+signal+"_") && !strings.Contains(name, "_send_failed_") {
			want = append(want, name)
		}
	}
	slices.Sort(want)
	testutil.Eventually(t, 60*time.Second, func() error {
		var missing []string
		for _, name := range want {
			if n, err := queryCount(p, name+`{job="otelcol"}`); err != nil || n == 0 {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("the collector's own metrics %v are not in Prometheus (job otelcol)", missing)
		}
		return nil
	})
}

// TestPushPipeline runs the agent in push mode: its metrics travel agent →
// collector → Prometheus, and arrive under the names and labels the
// dashboards and rules use.
func TestPushPipeline(t *testing.T) {
	s := startStack(t, true)
	p := s.prom
	testutil.Eventually(t, 60*time.Second, func() error {
		n, err := queryCount(p, `netpulse_probe_success{job="netpulse-otlp", target_name="loopback", probe_name="lo", probe_type="ping", site="lab"} == 1`)
		if err != nil || n != 1 {
			all, _ := p.Query(`netpulse_probe_success`)
			return fmt.Errorf("the agent's pushed netpulse_probe_success: %d series (%v), want 1; have %v", n, err, all)
		}
		return nil
	})
	// job="netpulse" is the scraped agents' job: pushed series must not
	// look like them.
	if n, err := queryCount(p, `{job="netpulse", __name__=~"netpulse_.+"}`); err != nil || n != 0 {
		t.Errorf("pushed series with job=\"netpulse\", the scrape job's name: %d (%v)", n, err)
	}
	checkPushedLabels(t, p)
	checkCollectorMetrics(t, p, "metric_points")
	// The on-demand runs (a speed test among them) end, are pushed on the
	// next export and scraped from the collector a little later: poll.
	want := golden(t)
	testutil.Eventually(t, 60*time.Second, func() error {
		var names []string
		if err := p.API("/api/v1/label/__name__/values", nil, &names); err != nil {
			return err
		}
		have := map[string]bool{}
		for _, n := range names {
			have[n] = true
		}
		var missing []string
		for name, m := range want {
			if m.typ == "histogram" {
				name += "_bucket"
			}
			if !have[name] {
				missing = append(missing, name)
			}
		}
		slices.Sort(missing)
		if len(missing) > 0 {
			return fmt.Errorf("pushed through the collector, these metrics do not arrive under their scraped names: %v", missing)
		}
		return nil
	})
}

// checkPushedLabels checks that pushed series carry the labels of the
// scraped agent (its golden label names, global ones included, job and
// instance) and none of the resource attributes the SDK adds (host, OS,
// process, SDK): no kernel string on every series.
func checkPushedLabels(t *testing.T, p *testutil.Prometheus) {
	t.Helper()
	g := golden(t)
	// The agent's series (not ALERTS, which rules derive from them).
	v, err := p.Query(`{job="netpulse-otlp", __name__=~"netpulse_.+|target_info"}`)
	if err != nil || len(v) == 0 {
		t.Fatalf("no pushed netpulse series (%v)", err)
	}
	extra := map[string]bool{}
	for _, s := range v {
		name := string(s.Metric["__name__"])
		m := g[name]
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if m == nil {
				m = g[strings.TrimSuffix(name, suffix)]
			}
		}
		if m == nil {
			t.Errorf("pushed series %s is not in the golden metric surface", name)
			continue
		}
		for l := range s.Metric {
			switch l := string(l); {
			case l == "__name__" || l == "job" || l == "instance" || l == "le" && m.typ == "histogram":
			case !m.labels[l]:
				extra[name+": "+l] = true
			}
		}
	}
	if len(extra) > 0 {
		t.Errorf("pushed series carry labels the scraped agent does not have (resource attributes?): %v", slices.Sorted(maps.Keys(extra)))
	}
}
