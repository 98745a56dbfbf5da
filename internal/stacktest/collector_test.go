package stacktest

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/testutil"
)

const collectorRel = "otel-collector/config.yaml"

func needCollector(t *testing.T) string {
	t.Helper()
	bin := testutil.CollectorBinary(t)
	testutil.Need(t, bin != "", "the OpenTelemetry Collector: run otel-collector/build.sh and set NETPULSE_OTELCOL to the path it prints")
	return bin
}

// validateCollector runs the collector's own validation on a config file.
func validateCollector(t *testing.T, bin, file string) {
	t.Helper()
	out, err := exec.Command(bin, "validate", "--config=file:"+file).CombinedOutput()
	if err != nil {
		t.Errorf("otelcol-netpulse validate %s: %v\n%s", file, err, out)
	}
}

// TestCollectorConfig validates the shipped collector config with the real
// collector and checks its shape: OTLP in over gRPC and HTTP,
// memory_limiter first and batch last in every pipeline, traces to Tempo,
// metrics to the Prometheus exporter.
func TestCollectorConfig(t *testing.T) {
	var cfg map[string]any
	loadYAML(t, collectorRel, &cfg)
	for _, proto := range []string{"grpc", "http"} {
		if dig(cfg, "receivers", "otlp", "protocols", proto) == nil {
			t.Errorf("%s: the otlp receiver does not accept %s", collectorRel, proto)
		}
	}
	pipelines, _ := dig(cfg, "service", "pipelines").(map[string]any)
	for _, name := range []string{"traces", "metrics"} {
		if pipelines[name] == nil {
			t.Errorf("%s: no %s pipeline", collectorRel, name)
		}
	}
	for name, p := range pipelines {
		procs := strList(dig(p, "processors"))
		if len(procs) < 2 || procs[0] != "memory_limiter" || procs[len(procs)-1] != "batch" {
			t.Errorf("%s: pipeline %s processors %v: memory_limiter must come first, batch last", collectorRel, name, procs)
		}
	}
	if exp := strList(dig(pipelines, "traces", "exporters")); !slices.Contains(exp, "otlp_grpc/tempo") {
		t.Errorf("%s: traces go to %v, not to Tempo (otlp_grpc/tempo)", collectorRel, exp)
	}
	if exp := strList(dig(pipelines, "metrics", "exporters")); !slices.Contains(exp, "prometheus") {
		t.Errorf("%s: metrics go to %v, not to the prometheus exporter Prometheus scrapes", collectorRel, exp)
	}
	bin := needCollector(t)
	validateCollector(t, bin, repoPath(t, collectorRel))
}

func strList(v any) []string {
	items, _ := v.([]any)
	var out []string
	for _, it := range items {
		s, _ := it.(string)
		out = append(out, s)
	}
	return out
}

// collector is the shipped collector config running on loopback.
type collector struct {
	GRPC, HTTP, Metrics, Health string // host:port
	Self                        string // host:port of its own metrics
	Process                     *testutil.Process
}

// collectorSelfMetricsReader returns the settings of the Prometheus pull
// reader that serves the collector's own metrics (service.telemetry).
func collectorSelfMetricsReader(t testing.TB, cfg map[string]any) map[string]any {
	t.Helper()
	readers, _ := dig(cfg, "service", "telemetry", "metrics", "readers").([]any)
	for _, r := range readers {
		if prom, ok := dig(r, "pull", "exporter", "prometheus").(map[string]any); ok {
			return prom
		}
	}
	t.Fatalf("%s: no service.telemetry.metrics.readers[].pull.exporter.prometheus: the collector's own metrics are not served", collectorRel)
	return nil
}

// collectorSelfMetricsAddr returns where the collector serves its own metrics.
func collectorSelfMetricsAddr(t testing.TB, cfg map[string]any) (host, port string) {
	t.Helper()
	prom := collectorSelfMetricsReader(t, cfg)
	return fmt.Sprint(prom["host"]), fmt.Sprint(prom["port"])
}

// startCollector runs otel-collector/config.yaml with every listener moved
// to a free loopback port and Tempo replaced by tempo (an OTLP/gRPC
// host:port), and waits until its health check says it is available.
func startCollector(t *testing.T, tempo string) *collector {
	t.Helper()
	bin := needCollector(t)
	c := &collector{GRPC: testutil.FreeAddr(t), HTTP: testutil.FreeAddr(t), Metrics: testutil.FreeAddr(t),
		Health: testutil.FreeAddr(t), Self: testutil.FreeAddr(t)}
	var cfg map[string]any
	loadYAML(t, collectorRel, &cfg)
	set := setter(t, cfg, collectorRel, "startCollector")
	set(c.GRPC, "receivers", "otlp", "protocols", "grpc", "endpoint")
	set(c.HTTP, "receivers", "otlp", "protocols", "http", "endpoint")
	set(c.Metrics, "exporters", "prometheus", "endpoint")
	set(tempo, "exporters", "otlp_grpc/tempo", "endpoint")
	set(c.Health, "extensions", "health_check", "endpoint")
	self := collectorSelfMetricsReader(t, cfg)
	host, port, _ := net.SplitHostPort(c.Self)
	self["host"] = host
	self["port"], _ = strconv.Atoi(port)
	// Nothing of the compose network may remain.
	if leftover := nonLoopback(cfg); len(leftover) > 0 {
		t.Fatalf("%s: the loopback variant still listens on or sends to %v", collectorRel, leftover)
	}
	c.run(t, bin, "otelcol", writeYAML(t, t.TempDir(), "collector.yaml", cfg))
	return c
}

// nonLoopback lists the endpoints (host:port, or host) of a config that are
// not on 127.0.0.1.
func nonLoopback(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "endpoint" {
				if s, ok := e.(string); ok && !strings.HasPrefix(s, "127.0.0.1:") {
					out = append(out, s)
				}
				continue
			}
			if k == "host" { // the self-metrics reader: host and port
				if s, ok := e.(string); ok && s != "127.0.0.1" {
					out = append(out, s)
				}
				continue
			}
			out = append(out, nonLoopback(e)...)
		}
	case []any:
		for _, e := range x {
			out = append(out, nonLoopback(e)...)
		}
	}
	return out
}

// setter returns a function that sets the value at keys in cfg (a
// collector configuration read from rel), failing when the file has no
// such key: the loopback variant made by fn could not be derived then.
func setter(t *testing.T, cfg map[string]any, rel, fn string) func(v string, keys ...string) {
	return func(v string, keys ...string) {
		parent, _ := dig(cfg, keys[:len(keys)-1]...).(map[string]any)
		if parent == nil || parent[keys[len(keys)-1]] == nil {
			t.Fatalf("%s: no %s: the loopback variant cannot be derived, update %s", rel, strings.Join(keys, "."), fn)
		}
		parent[keys[len(keys)-1]] = v
	}
}

// run validates file, starts the collector binary bin on it, and waits
// until its health check says it is available.
func (c *collector) run(t *testing.T, bin, name, file string) {
	t.Helper()
	validateCollector(t, bin, file)
	c.Process = testutil.StartProcess(t, name, exec.Command(bin, "--config=file:"+file))
	testutil.Eventually(t, 30*time.Second, func() error {
		if c.Process.Exited() {
			return fmt.Errorf("%s exited", name)
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
}
