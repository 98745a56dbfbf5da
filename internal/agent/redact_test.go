package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/api"
	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/history"
	"github.com/netpulse/netpulse/internal/logging"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probes"
	"github.com/netpulse/netpulse/internal/testutil"
	"github.com/netpulse/netpulse/internal/version"
)

// Credentials in target URLs (a password, a token as user name) and in
// secret-named headers show on no surface: not in the API (probes, the
// debug view of each run), the logs (at debug level, with the runs' captured
// lines), the spans the collector receives, the metrics, or the history
// file, byte for byte. The credentials are still used: the HTTP target
// answers only with them.
func TestCredentialsShownNowhere(t *testing.T) {
	col := testutil.StartCollector(t)
	const password, token, header = "pw-s3cret", "tok-s3cret", "hdr-s3cret"
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "user" || p != password || r.Header.Get("X-Api-Key") != header {
			http.Error(w, "who are you?", http.StatusUnauthorized)
		}
	}))
	defer web.Close()
	dead := testutil.FreeAddr(t) // nothing listens: the speed test fails, with its URL in the error
	dir := t.TempDir()
	cfg, err := config.Parse(fmt.Appendf(nil, `
storage: {path: %s}
telemetry:
  otlp: {endpoint: "http://%s", protocol: http}
probes:
  - name: web
    type: http
    interval: 1h
    targets: [{host: "http://user:%s@%s/"}]
    http: {headers: {X-Api-Key: %s}}
  - name: speed
    type: speedtest
    interval: 1h
    timeout: 15s
    targets: [{host: "http://%s@%s"}]
    speedtest: {duration: 1s, packet_loss: false}
`, dir, col.HTTPEndpoint, password, strings.TrimPrefix(web.URL, "http://"), header, token, dead), probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logger, err := logging.New(logs, "debug", "json")
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(t.Context(), Options{Config: cfg, ListenAddress: "127.0.0.1:0", Logger: logger, Build: version.Get(),
		Reload: reloaded()})
	if err != nil {
		t.Fatal(err)
	}
	var results []probe.Result
	next := a.runner.OnResult
	a.runner.OnResult = func(r probe.Result) {
		results = append(results, r) // runs below are one at a time
		next(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	for _, tg := range a.targets {
		var ran <-chan struct{}
		testutil.Eventually(t, 10*time.Second, func() (err error) {
			ran, err = a.scheduler.RunNow(t.Context(), api.JobKey(tg))
			return err // ErrNotRunning until Run has started the scheduler
		})
		<-ran
	}
	if len(results) != 2 || results[0].Outcome != probe.OutcomeSuccess || results[1].Outcome == probe.OutcomeSuccess {
		t.Fatalf("want the HTTP run to succeed (credentials used) and the speed test to fail: %+v", results)
	}

	surfaces := map[string]string{}
	get := func(path string) string {
		rec := httptest.NewRecorder()
		a.serveAPI(rec, httptest.NewRequest("GET", "http://127.0.0.1"+path, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		return rec.Body.String()
	}
	surfaces["API probes"] = get("/api/v1/probes")
	for _, r := range results {
		surfaces["debug view of "+r.Target.Probe] = get("/api/v1/runs/" + r.RunID.String())
		if !strings.Contains(surfaces["debug view of "+r.Target.Probe], "xxxxx@") {
			t.Errorf("the debug view of %s does not show the URL redacted: %s", r.Target.Probe,
				surfaces["debug view of "+r.Target.Probe])
		}
	}
	if text, err := a.telemetry.Gatherer.Gather(); err == nil {
		surfaces["metrics"] = fmt.Sprint(text)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	surfaces["logs"] = logs.String()
	if !strings.Contains(surfaces["logs"], "speed") {
		t.Error("the logs do not mention the failing speed test: nothing was checked")
	}
	col.Barrier(t)
	spans, err := os.ReadFile(col.OutputFile)
	if err != nil {
		t.Fatal(err)
	}
	surfaces["spans"] = string(spans)
	db, err := os.ReadFile(filepath.Join(dir, history.FileName))
	if err != nil {
		t.Fatal(err)
	}
	surfaces["history file"] = string(db)
	for name, text := range surfaces {
		for _, secret := range []string{password, token, header} {
			if i := strings.Index(text, secret); i >= 0 {
				t.Errorf("%s shows %q: …%s…", name, secret, text[max(0, i-200):min(len(text), i+50)])
			}
		}
	}
}
