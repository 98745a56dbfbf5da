package stacktest

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/netpulse/netpulse/internal/testutil"
)

// rttBatch is what a target of the native-histogram test adds to its RTT
// histogram at every scrape: count replies of each RTT (seconds). Every
// window of the 5-minute rates then holds whole batches, so the quantiles
// and the mean are those of one batch, however the scrapes fall.
type rttBatch map[float64]int

// mean is the batch's mean RTT.
func (b rttBatch) mean() float64 {
	var sum float64
	var n int
	for rtt, count := range b {
		sum += rtt * float64(count)
		n += count
	}
	return sum / float64(n)
}

// TestRulesReadNativeHistograms runs the shipped rules in Prometheus on the
// RTT histogram of both profiles: classic buckets (default) and a native
// histogram (telemetry.profile: lean), as Prometheus stores them when it
// scrapes (here) or receives them by remote write (the fleet). promtool
// 2.42 cannot write native histograms in a test's input series, so this
// test takes the real route: client_golang histograms with the agent's
// metric name and labels, scraped in protobuf by Prometheus with native
// histograms enabled. It checks that the RTT recordings hold one series per
// target of either kind, that the native quantiles land in the bucket of
// the true value and the mean is exact, and that NetpulseHighLatency, built
// on the p95, goes pending for the slow targets only.
func TestRulesReadNativeHistograms(t *testing.T) {
	testutil.NeedPrometheus(t)
	labels := []string{"probe_name", "probe_type", "target_name"}
	// Factor 1.09: schema 3, bucket bounds 2^(i/8) (schema3Bucket).
	native := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "netpulse_ping_rtt_seconds",
		Help: "RTT of echo replies.", NativeHistogramBucketFactor: 1.09}, labels)
	classic := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "netpulse_ping_rtt_seconds",
		Help: "RTT of echo replies.", Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}}, labels)
	fast := rttBatch{0.010: 90, 0.050: 10} // p50 10 ms, p95 and p99 50 ms
	slow := rttBatch{0.020: 90, 0.300: 10} // p50 20 ms, p95 and p99 300 ms: above the 100 ms threshold
	batches := map[*prometheus.HistogramVec]map[string]rttBatch{
		native:  {"native-fast": fast, "native-slow": slow},
		classic: {"classic-fast": fast, "classic-slow": slow},
	}
	serve := func(h *prometheus.HistogramVec) string {
		reg := prometheus.NewRegistry()
		reg.MustRegister(h)
		metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for target, batch := range batches[h] {
				o := h.WithLabelValues("internet", "ping", target)
				for rtt, count := range batch {
					for range count {
						o.Observe(rtt)
					}
				}
			}
			metrics.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		return strings.TrimPrefix(srv.URL, "http://")
	}
	prom := startNativePrometheus(t, map[string]string{"lean": serve(native), "default": serve(classic)})

	// Every recording of the RTT, one series per target, of either kind.
	quantiles := map[string]map[string]float64{
		"target:netpulse_ping_rtt_seconds:p50_5m": {"native-fast": 0.010, "native-slow": 0.020},
		"target:netpulse_ping_rtt_seconds:p95_5m": {"native-fast": 0.050, "native-slow": 0.300},
		"target:netpulse_ping_rtt_seconds:p99_5m": {"native-fast": 0.050, "native-slow": 0.300},
	}
	testutil.Eventually(t, 60*time.Second, func() error {
		for _, name := range []string{"target:netpulse_ping_rtt_seconds:p50_5m", "target:netpulse_ping_rtt_seconds:p95_5m",
			"target:netpulse_ping_rtt_seconds:p99_5m", "target:netpulse_ping_rtt_seconds:avg5m"} {
			v, err := prom.Query(fmt.Sprintf("count by (target_name) (%s)", name))
			if err != nil || len(v) != 4 {
				return fmt.Errorf("%s: %d targets, want 4 (%v): %v", name, len(v), err, v)
			}
			for _, s := range v {
				if s.Value != 1 {
					return fmt.Errorf("%s: %v series for %s, want 1", name, s.Value, s.Metric["target_name"])
				}
			}
		}
		return nil
	})
	for name, want := range quantiles {
		for target, rtt := range want {
			got := queryValue(t, prom, fmt.Sprintf("%s{target_name=%q}", name, target))
			lower, upper := schema3Bucket(rtt)
			if got <= lower || got > upper {
				t.Errorf("%s for %s = %g, want within (%g, %g], the native bucket of %g", name, target, got, lower, upper, rtt)
			}
		}
	}
	for target, batch := range map[string]rttBatch{"native-fast": fast, "native-slow": slow, "classic-fast": fast, "classic-slow": slow} {
		got := queryValue(t, prom, fmt.Sprintf("target:netpulse_ping_rtt_seconds:avg5m{target_name=%q}", target))
		if math.Abs(got-batch.mean()) > 1e-9 {
			t.Errorf("avg5m for %s = %g, want %g", target, got, batch.mean())
		}
	}

	// The latency alert reads the p95 of either kind.
	testutil.Eventually(t, 30*time.Second, func() error {
		v, err := prom.Query(`count by (target_name) (ALERTS{alertname="NetpulseHighLatency"})`)
		if err != nil {
			return err
		}
		var got []string
		for _, s := range v {
			got = append(got, string(s.Metric["target_name"]))
		}
		if len(got) != 2 || !strings.Contains(strings.Join(got, ","), "native-slow") ||
			!strings.Contains(strings.Join(got, ","), "classic-slow") {
			return fmt.Errorf("NetpulseHighLatency pending or firing for %v, want the two slow targets", got)
		}
		return nil
	})
}

// schema3Bucket returns the bounds of the native histogram bucket of
// schema 3 that holds v: (2^((i-1)/8), 2^(i/8)].
func schema3Bucket(v float64) (lower, upper float64) {
	i := math.Ceil(math.Log2(v) * 8)
	return math.Exp2((i - 1) / 8), math.Exp2(i / 8)
}

// queryValue returns the value of the one series an instant query returns.
func queryValue(t *testing.T, p *testutil.Prometheus, expr string) float64 {
	t.Helper()
	v, err := p.Query(expr)
	if err != nil || len(v) != 1 {
		t.Fatalf("%s: %d series, want 1 (%v)", expr, len(v), err)
	}
	return float64(v[0].Value)
}

// startNativePrometheus runs Prometheus with native histograms enabled (the
// flag compose.fleet.yaml gives it), one-second intervals, the shipped rule
// files, and a job per target (host:port).
func startNativePrometheus(t *testing.T, jobs map[string]string) *testutil.Prometheus {
	t.Helper()
	dir := t.TempDir()
	addr := testutil.FreeAddr(t)
	rules, err := filepath.Glob(repoPath(t, "prometheus/rules/*.yml"))
	if err != nil || len(rules) == 0 {
		t.Fatalf("no rule files: %v", err)
	}
	var scrape []map[string]any
	for job, target := range jobs {
		scrape = append(scrape, map[string]any{"job_name": job, "static_configs": []map[string]any{{"targets": []string{target}}}})
	}
	file := writeYAML(t, dir, "prometheus.yml", map[string]any{
		"global":         map[string]any{"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
		"rule_files":     rules,
		"scrape_configs": scrape,
	})
	cmd := exec.Command(testutil.LookPath("prometheus"), "--config.file="+file,
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr,
		"--enable-feature=native-histograms", "--log.level=warn")
	cmd.Dir = dir
	p := &testutil.Prometheus{URL: "http://" + addr, Process: testutil.StartProcess(t, "prometheus", cmd)}
	testutil.Eventually(t, 30*time.Second, func() error {
		if p.Process.Exited() {
			return fmt.Errorf("prometheus exited:\n%s", p.Process.Output())
		}
		_, err := p.Query("vector(1)")
		return err
	})
	return p
}
