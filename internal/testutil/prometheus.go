package testutil

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// Prometheus is a running Prometheus server (the Debian package's binary)
// started by StartPrometheus, scraping its targets every second with
// exemplar storage enabled. Its HTTP API is queried with plain net/http:
// client_golang's API client would add json-iterator to go.mod.
type Prometheus struct {
	URL     string
	Process *Process
}

// ScrapeInterval is how often the test Prometheus scrapes its targets.
const ScrapeInterval = time.Second

// NeedPrometheus skips (or fails under NETPULSE_REQUIRE_REAL=1) without the
// prometheus and promtool binaries.
func NeedPrometheus(t testing.TB) {
	t.Helper()
	Need(t, LookPath("prometheus") != "" && LookPath("promtool") != "",
		"prometheus and promtool on PATH: apt-get install -y --no-install-recommends prometheus")
}

// StartPrometheus runs Prometheus on a free loopback port with its own
// storage, scraping targets (host:port, /metrics) as job "netpulse", and
// waits until it is ready. Its first scrape comes a little later: poll
// queries with Eventually.
func StartPrometheus(t testing.TB, targets ...string) *Prometheus {
	t.Helper()
	NeedPrometheus(t)
	dir := t.TempDir()
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = fmt.Sprintf("%q", tg)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: %s
  scrape_timeout: %s
  evaluation_interval: %s
scrape_configs:
  - job_name: netpulse
    static_configs:
      - targets: [%s]
`, ScrapeInterval, ScrapeInterval, ScrapeInterval, strings.Join(quoted, ", "))
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatalf("write prometheus config: %v", err)
	}
	addr := FreeAddr(t)
	cmd := exec.Command(LookPath("prometheus"),
		"--config.file="+cfgFile,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--enable-feature=exemplar-storage",
		"--log.level=warn")
	cmd.Dir = dir
	cmd.Env = hermeticEnv()
	p := &Prometheus{URL: "http://" + addr}
	p.Process = StartProcess(t, "prometheus", cmd)
	err := Poll(30*time.Second, func() error {
		if p.Process.Exited() {
			return Permanent(fmt.Errorf("prometheus exited; its output:\n%s", p.Process.Output()))
		}
		status, body, err := get(p.URL+"/-/ready", "")
		if err != nil {
			return err
		}
		if status != 200 {
			return fmt.Errorf("/-/ready: %d %s", status, strings.TrimSpace(body))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	return p
}

// Query evaluates an instant PromQL query now and returns its vector.
func (p *Prometheus) Query(expr string) (model.Vector, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.API("/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: got a %s, want a vector", expr, data.ResultType)
	}
	var vec model.Vector
	if err := json.Unmarshal(data.Result, &vec); err != nil {
		return nil, fmt.Errorf("query %s: %w", expr, err)
	}
	return vec, nil
}

// ExemplarSeries is one series of an exemplar query: its labels and its
// exemplars (labels such as trace_id, the value, the time).
type ExemplarSeries struct {
	SeriesLabels model.LabelSet `json:"seriesLabels"`
	Exemplars    []struct {
		Labels    model.LabelSet `json:"labels"`
		Value     string         `json:"value"`
		Timestamp float64        `json:"timestamp"`
	} `json:"exemplars"`
}

// QueryExemplars returns the exemplars of the series selected by expr over
// the last five minutes.
func (p *Prometheus) QueryExemplars(expr string) ([]ExemplarSeries, error) {
	now := time.Now()
	var res []ExemplarSeries
	err := p.API("/api/v1/query_exemplars", url.Values{"query": {expr},
		"start": {formatTime(now.Add(-5 * time.Minute))}, "end": {formatTime(now)}}, &res)
	return res, err
}

// API GETs a Prometheus HTTP API path with params and decodes the data of a
// success response into data; an error response becomes the error.
func (p *Prometheus) API(path string, params url.Values, data any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+path+"?"+params.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Warnings  []string        `json:"warnings"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("%s %v: HTTP %d: %w", path, params, resp.StatusCode, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("%s %v: %s: %s", path, params, body.ErrorType, body.Error)
	}
	if len(body.Warnings) > 0 {
		return fmt.Errorf("%s %v: warnings %v", path, params, body.Warnings)
	}
	return json.Unmarshal(body.Data, data)
}

func formatTime(t time.Time) string {
	return fmt.Sprintf("%.3f", float64(t.UnixMilli())/1e3)
}

// PromtoolCheckMetrics runs `promtool check metrics` on a text exposition
// and returns what it reported (empty when it found nothing) and whether it
// exited 0.
func PromtoolCheckMetrics(t testing.TB, exposition string) (string, bool) {
	t.Helper()
	NeedPrometheus(t)
	cmd := exec.Command(LookPath("promtool"), "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("promtool: %v", err)
		}
	}
	return strings.TrimSpace(string(out)), err == nil
}
