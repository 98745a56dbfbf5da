package stacktest

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/netpulse/netpulse/internal/testutil"
)

// fleetLabels are every label a pushed netpulse series may carry in the
// fleet: the gateway's choice (job, instance, site), the data point
// attributes of the loopback probes (no target labels here) and the
// histogram's le. Anything else (a host or OS attribute, a scope label)
// is clutter a fleet multiplies.
var fleetLabels = []string{"__name__", "error_type", "instance", "job", "le", "outcome", "probe_name", "probe_type",
	"site", "target_name",
	"goversion", "revision", "version", // netpulse_build_info
	"reason", // netpulse_history_dropped_total
}

// TestFleet runs the fleet natively: the agents of compose.fleet.yaml as
// processes (their config, their OTEL_RESOURCE_ATTRIBUTES; loopback targets)
// push to otel-collector/gateway.yaml, which writes to Prometheus's
// remote-write receiver. Every series is ingested once (one series per
// target and instance, no failed points at the gateway), the labels are
// the bounded list above, and an agent that restarts continues its series:
// no new series appear.
func TestFleet(t *testing.T) {
	testutil.NeedICMP(t)
	testutil.NeedPrometheus(t)
	project := fleetProject(t)
	agents := fleetAgents(t, project)
	gwSelf := testutil.FreeAddr(t)
	prom := startFleetPrometheus(t, gwSelf)
	tempo := testutil.StartCollector(t)
	gw := startGateway(t, prom.URL, tempo.GRPCEndpoint, gwSelf)

	configs := map[string]string{}
	running := map[string]*testutil.Agent{}
	env := map[string]string{}
	for _, a := range agents {
		configs[a.instance] = fleetAgentConfig(t, gw.GRPC)
		env[a.instance] = "OTEL_RESOURCE_ATTRIBUTES=" + *project.Services[a.service].Environment["OTEL_RESOURCE_ATTRIBUTES"]
		running[a.instance] = testutil.StartAgent(t, configs[a.instance], testutil.AgentEnv(env[a.instance]))
	}
	// Each agent's two targets have reported, twice.
	testutil.Eventually(t, 60*time.Second, func() error {
		for _, a := range agents {
			n, err := queryCount(prom, fmt.Sprintf(`netpulse_probe_runs_total{instance=%q, site=%q, outcome="success"} > 1`, a.instance, a.site))
			if err != nil || n != 2 {
				return fmt.Errorf("%s: %d targets with two runs in Prometheus (%v)", a.instance, n, err)
			}
		}
		return nil
	})

	// Ingested once: one series per agent and target, whatever the path.
	dup, err := prom.Query(`count by (probe_name, target_name, instance) (netpulse_probe_success) > 1`)
	if err != nil || len(dup) > 0 {
		t.Errorf("series ingested more than once: %v (%v)", dup, err)
	}
	if jobs, _ := prom.Query(`count by (job) (netpulse_probe_success)`); len(jobs) != 1 || jobs[0].Metric["job"] != "netpulse-otlp" {
		t.Errorf("pushed series' jobs: %v, want only netpulse-otlp", jobs)
	}

	// Labels bounded.
	var names []string
	if err := prom.API("/api/v1/labels", url.Values{"match[]": {`{__name__=~"netpulse_.+|target_info", job="netpulse-otlp"}`}}, &names); err != nil {
		t.Fatal(err)
	}
	if extra := without(names, fleetLabels); len(extra) > 0 {
		t.Errorf("pushed series carry labels %v beyond %v", extra, fleetLabels)
	}

	// The lean profile's cost, as the store counts it (native histograms
	// written through the gateway: one series each).
	perTarget, err := queryCount(prom, fmt.Sprintf(`{__name__=~"netpulse_.+", instance=%q, target_name="loopback"}`, agents[0].instance))
	if err != nil || perTarget == 0 || perTarget > 15 {
		t.Errorf("%d series for one healthy ping target of a lean agent, want 1-15 (%v)", perTarget, err)
	}
	if n, err := queryCount(prom, `netpulse_ping_rtt_seconds`); err != nil || n != 2*len(agents) {
		t.Errorf("%d RTT histograms in Prometheus, want one per agent and target (%v)", n, err)
	}

	// The dashboards work on a lean fleet: the fleet overview, and the RTT
	// quantiles from native histograms.
	checkFleetDashboards(t, prom)

	// The recording rules read the native histograms too: an RTT quantile
	// and mean per agent and target.
	testutil.Eventually(t, 60*time.Second, func() error {
		for _, rec := range []string{"target:netpulse_ping_rtt_seconds:p95_5m", "target:netpulse_ping_rtt_seconds:avg5m"} {
			if n, err := queryCount(prom, rec+" > 0"); err != nil || n != 2*len(agents) {
				return fmt.Errorf("%s: %d series, want one per agent and target (%v)", rec, n, err)
			}
		}
		return nil
	})

	// A restart continues the agent's series: none is new.
	before := fleetSeries(t, prom)
	restarted := agents[0]
	if _, err := running[restarted.instance].Process.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	restart := time.Now()
	testutil.StartAgent(t, configs[restarted.instance], testutil.AgentEnv(env[restarted.instance]))
	testutil.Eventually(t, 60*time.Second, func() error {
		q := fmt.Sprintf(`netpulse_config_last_reload_success_timestamp_seconds{instance=%q} > %d`, restarted.instance, restart.Unix())
		if n, err := queryCount(prom, q); err != nil || n != 1 {
			return fmt.Errorf("no push from the restarted agent yet (%v)", err)
		}
		q = fmt.Sprintf(`netpulse_probe_runs_total{instance=%q, outcome="success"} and changes(netpulse_probe_runs_total[1h]) > 0 `+
			`and timestamp(netpulse_probe_runs_total) > %d`, restarted.instance, restart.Unix()+2)
		if n, err := queryCount(prom, q); err != nil || n != 2 {
			return fmt.Errorf("%d targets of the restarted agent ran again (%v)", n, err)
		}
		return nil
	})
	after := fleetSeries(t, prom)
	if added := without(after, before); len(added) > 0 {
		t.Errorf("%d new series after %s restarted: %v", len(added), restarted.instance, added)
	}
	t.Logf("fleet: %d agents, %d netpulse series, %d new after a restart, %d per healthy ping target; labels %v",
		len(agents), len(after), len(without(after, before)), perTarget, names)

	// The gateway lost nothing on the way.
	sent, ok := gatewayMetric(t, gw, "otelcol_exporter_sent_metric_points_total")
	failed, _ := gatewayMetric(t, gw, "otelcol_exporter_send_failed_metric_points_total")
	if !ok || sent == 0 || failed != 0 {
		t.Errorf("the gateway wrote %v metric points and failed %v (series found: %v)", sent, failed, ok)
	}
}

// fleetSeries lists the pushed netpulse series in Prometheus (label sets),
// but runs that did not succeed: an outcome such as a slot skipped on a
// loaded machine is a new series for a reason other than identity.
func fleetSeries(t *testing.T, prom *testutil.Prometheus) []string {
	t.Helper()
	var series []map[string]string
	match := `{__name__=~"netpulse_.+|target_info", __name__!="netpulse_probe_runs_total", job="netpulse-otlp"}`
	if err := prom.API("/api/v1/series", url.Values{"match[]": {match, `netpulse_probe_runs_total{outcome="success"}`}},
		&series); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range series {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(s)) {
			kv = append(kv, k+"="+s[k])
		}
		out = append(out, strings.Join(kv, ","))
	}
	slices.Sort(out)
	return out
}

// without returns the items of a that b does not hold.
func without(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// fleetAgentConfig derives a fleet agent's config from compose/fleet-agent.yml:
// the same telemetry with the gateway's address and a one-second push,
// loopback targets instead of public hosts.
func fleetAgentConfig(t *testing.T, gateway string) string {
	t.Helper()
	var cfg map[string]any
	loadYAML(t, fleetAgentRel, &cfg)
	otlp, _ := dig(cfg, "telemetry", "otlp").(map[string]any)
	if otlp == nil || otlp["endpoint"] == nil {
		t.Fatalf("%s: no telemetry.otlp.endpoint: update fleetAgentConfig", fleetAgentRel)
	}
	otlp["endpoint"] = gateway
	otlp["metrics_interval"] = "1s"
	if st, ok := cfg["storage"].(map[string]any); ok {
		st["path"] = t.TempDir()
	}
	cfg["probes"] = []map[string]any{{
		"name": "lo", "type": "ping", "interval": "1s", "timeout": "900ms",
		"targets": []map[string]any{{"name": "loopback", "host": "127.0.0.1"}, {"name": "loopback2", "host": "127.0.0.2"}},
		"ping":    map[string]any{"count": 2, "packet_interval": "50ms", "privileged": "auto"},
	}}
	data, err := os.ReadFile(writeYAML(t, t.TempDir(), "netpulse.yml", cfg))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// checkFleetDashboards waits until every expression of the fleet overview
// and every RTT quantile of the dashboards returns data, but those of
// failures the fleet has none of (refused or failed points).
func checkFleetDashboards(t *testing.T, prom *testutil.Prometheus) {
	t.Helper()
	exprs, errs := shippedExprs(t)
	for _, err := range errs {
		t.Error(err)
	}
	var want []promExpr
	for _, e := range exprs {
		fleet := strings.HasPrefix(e.where, "grafana/dashboards/fleet-overview.json") &&
			!strings.Contains(e.expr, "refused") && !strings.Contains(e.expr, "send_failed")
		rtt := strings.HasPrefix(e.where, "grafana/dashboards/") && strings.Contains(e.expr, "histogram_quantile") &&
			strings.Contains(e.expr, "netpulse_ping_rtt_seconds")
		if fleet || rtt {
			want = append(want, e)
		}
	}
	if len(want) < 10 {
		t.Fatalf("only %d fleet dashboard expressions found", len(want))
	}
	testutil.Eventually(t, 60*time.Second, func() error {
		for _, e := range want {
			if n, err := queryCount(prom, e.expr); err != nil || n == 0 {
				return fmt.Errorf("%s: no data (%v):\n%s", e.where, err, e.expr)
			}
		}
		return nil
	})
}

// startFleetPrometheus runs Prometheus with a loopback variant of
// prometheus/prometheus.fleet.yml (its own job and the gateway's, at
// gatewaySelf: the others are services CI cannot run; the shipped rules)
// and the flags
// compose.fleet.yaml gives it: the remote-write receiver and native
// histograms.
func startFleetPrometheus(t *testing.T, gatewaySelf string) *testutil.Prometheus {
	t.Helper()
	dir := t.TempDir()
	addr := testutil.FreeAddr(t)
	var cfg map[string]any
	loadYAML(t, fleetPrometheusRel, &cfg)
	global, _ := cfg["global"].(map[string]any)
	global["scrape_interval"], global["scrape_timeout"], global["evaluation_interval"] = "1s", "1s", "1s"
	cfg["rule_files"] = []string{repoPath(t, "prometheus/rules/*.yml")}
	targets := map[string]string{"prometheus": addr, "otelcol": gatewaySelf}
	scs, _ := cfg["scrape_configs"].([]any)
	var kept []any
	for _, sc := range scs {
		m, _ := sc.(map[string]any)
		name, _ := m["job_name"].(string)
		if tg, ok := targets[name]; ok {
			m["static_configs"] = []map[string]any{{"targets": []string{tg}}}
			kept = append(kept, m)
			delete(targets, name)
		}
	}
	if len(targets) > 0 {
		t.Fatalf("%s has no job %v", fleetPrometheusRel, slices.Collect(maps.Keys(targets)))
	}
	cfg["scrape_configs"] = kept
	file := writeYAML(t, dir, "prometheus.yml", cfg)
	cmd := exec.Command(testutil.LookPath("prometheus"), "--config.file="+file,
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr,
		"--web.enable-remote-write-receiver", "--enable-feature=native-histograms,exemplar-storage", "--log.level=warn")
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

// startGateway runs otel-collector/gateway.yaml with its listeners on free
// loopback ports, its own metrics on self, writing to prom and sending
// traces to tempo (host:port).
func startGateway(t *testing.T, prom, tempo, self string) *collector {
	t.Helper()
	bin := needCollector(t)
	c := &collector{GRPC: testutil.FreeAddr(t), HTTP: testutil.FreeAddr(t), Health: testutil.FreeAddr(t), Self: self}
	var cfg map[string]any
	loadYAML(t, gatewayRel, &cfg)
	set := func(v string, keys ...string) {
		parent, _ := dig(cfg, keys[:len(keys)-1]...).(map[string]any)
		if parent == nil || parent[keys[len(keys)-1]] == nil {
			t.Fatalf("%s: no %s: update startGateway", gatewayRel, strings.Join(keys, "."))
		}
		parent[keys[len(keys)-1]] = v
	}
	set(c.GRPC, "receivers", "otlp", "protocols", "grpc", "endpoint")
	set(c.HTTP, "receivers", "otlp", "protocols", "http", "endpoint")
	set(tempo, "exporters", "otlp_grpc/tempo", "endpoint")
	set(c.Health, "extensions", "health_check", "endpoint")
	set(prom+"/api/v1/write", "exporters", "prometheus_remote_write", "endpoint")
	readers, _ := dig(cfg, "service", "telemetry", "metrics", "readers").([]any)
	if len(readers) != 1 {
		t.Fatalf("%s: want one reader of the gateway's own metrics", gatewayRel)
	}
	reader, _ := dig(readers[0], "pull", "exporter", "prometheus").(map[string]any)
	host, port, _ := net.SplitHostPort(c.Self)
	reader["host"] = host
	reader["port"], _ = strconv.Atoi(port)
	file := writeYAML(t, t.TempDir(), "gateway.yaml", cfg)
	c.Process = testutil.StartProcess(t, "gateway", exec.Command(bin, "--config=file:"+file))
	testutil.Eventually(t, 30*time.Second, func() error {
		if c.Process.Exited() {
			return fmt.Errorf("gateway exited")
		}
		resp, err := http.Get("http://" + c.Health + "/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health check: %s", resp.Status)
		}
		return nil
	})
	return c
}

// gatewayMetric sums a metric of the gateway's own (every series) and
// reports whether it has any.
func gatewayMetric(t *testing.T, c *collector, name string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + c.Self + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return testutil.Families(fams).Sum(name, nil)
}
