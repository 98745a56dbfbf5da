package agent

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe/path"
	"github.com/netpulse/netpulse/internal/probe/tlsinfo/tlstest"
	"github.com/netpulse/netpulse/internal/probes"
	"github.com/netpulse/netpulse/internal/scheduler"
	"github.com/netpulse/netpulse/internal/speedtestserver/servertest"
	"github.com/netpulse/netpulse/internal/testutil"
	"github.com/netpulse/netpulse/internal/version"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current metric surface")

// surfaceConfig exercises every series netpulse exports: a target that
// answers, one that fails, labels on both levels.
const surfaceConfig = `
global:
  labels: {site: lab}
  resolver: %s
probes:
  - name: lan
    type: ping
    interval: 1m
    timeout: 2s
    targets:
      - {name: loopback, host: 127.0.0.1, labels: {role: self}}
      - {name: missing, host: missing.test}
    ping: {count: 3, packet_interval: 10ms}
    thresholds: {latency: 100ms, jitter: 30ms, loss: 0.02}
  - name: dual
    type: ping
    interval: 1m
    timeout: 2s
    targets: [{name: loopback, host: 127.0.0.1, labels: {role: self}}]
    ping: {count: 3, packet_interval: 10ms, ip_version: both}
  - name: resolver
    type: dns
    interval: 1m
    timeout: 2s
    targets:
      - {name: lab, host: "%[1]s", labels: {role: lan}}
      - {name: missing, host: missing.test}
    dns: {query_name: missing.test, valid_rcodes: [NOERROR, NXDOMAIN]}
  - name: speed
    type: speedtest
    interval: 1h
    timeout: 20s
    targets:
      - {name: lan, host: "%s", labels: {role: lan}}
    speedtest: {duration: 1s, max_bytes: 100GB, budget: {daily: 200GB, monthly: 2TB}}
    thresholds: {download: 100Mbit/s, upload: 20Mbit/s}
  - name: tls
    type: tcp
    interval: 1m
    timeout: 2s
    targets:
      - {name: web, host: "%[4]s", labels: {role: web}}
      - {name: missing, host: "missing.test:443"}
    tcp: {tls: true, tls_config: {ca_file: "%[5]s"}}
  - name: site
    type: http
    interval: 1m
    timeout: 2s
    targets:
      - {name: web, host: "%[6]s", labels: {role: web}}
      - {name: missing, host: "http://missing.test/"}
    http: {tls_config: {ca_file: "%[5]s"}}
  - name: route
    type: path
    interval: 1m
    timeout: 2s
    targets:
      - {name: loopback, host: 127.0.0.1, labels: {role: self}, tier: internet}
    path: {max_hops: 3, rounds: 2, round_interval: 10ms, hop_timeout: 500ms}
storage: {path: "%[3]s"}
`

// TestMetricSurface pins the names, types and label names of every netpulse
// series (not their values), so a rename that would break dashboards and
// alert rules fails here first. Run with -update after an intended change.
func TestMetricSurface(t *testing.T) {
	testutil.NeedICMP(t)
	dns := testutil.DNSServer(t, map[string]netip.Addr{})
	web, caFile := surfaceTLSServer(t)
	cfg, err := config.Parse(fmt.Appendf(nil, surfaceConfig, dns, servertest.Start(t).URL(), t.TempDir(),
		web.Listener.Addr().String(), caFile, web.URL), probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	a := newTestAgent(t, cfg)
	jobs := jobsOf(a)
	for _, j := range jobs {
		j.Run(t.Context())
		j.Skipped(t.Context(), "overdue", 1)
	}

	families, err := a.telemetry.Gatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	// One golden per probe type (the series its targets carry, by their
	// probe_type label) and one for the agent's own series.
	lines := map[string][]string{}
	for _, mf := range families {
		name := mf.GetName()
		if !strings.HasPrefix(name, "netpulse_") && name != "target_info" {
			continue // go_* and process_* belong to client_golang
		}
		seen := map[string]bool{}
		for _, m := range mf.GetMetric() {
			var names []string
			owner := "agent" // the agent's own series
			for _, l := range m.GetLabel() {
				names = append(names, l.GetName())
				if l.GetName() == "probe_type" {
					owner = l.GetValue()
				}
			}
			slices.Sort(names)
			line := fmt.Sprintf("%s %s {%s}", name, strings.ToLower(mf.GetType().String()), strings.Join(names, ","))
			if !seen[owner+line] {
				seen[owner+line] = true
				lines[owner] = append(lines[owner], line)
			}
		}
	}
	for _, typ := range probes.Registry.Types() {
		if len(lines[typ.Name]) == 0 {
			t.Errorf("no series of probe type %s: add a probe of that type to surfaceConfig", typ.Name)
		}
	}
	for owner, ls := range lines {
		slices.Sort(ls)
		got := strings.Join(ls, "\n") + "\n"
		golden := filepath.Join("testdata", owner+".golden")
		if *update {
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test ./internal/agent -run TestMetricSurface -update)", err)
		}
		if got != string(want) {
			t.Errorf("metric surface of %s changed; if intended, run with -update and update dashboards, rules and README.\n--- want\n%s--- got\n%s",
				owner, want, got)
		}
	}
}

// newTestAgent builds an agent on a free loopback port; tests run its jobs
// directly instead of through the scheduler.
func newTestAgent(t *testing.T, cfg *config.Config) *Agent {
	t.Helper()
	a, err := New(t.Context(), Options{Config: cfg, ListenAddress: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Build: version.Get(), Reload: reloaded()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.telemetry.Shutdown(context.Background()) })
	return a
}

// reloaded is the status of a configuration loaded successfully just now.
func reloaded() *ReloadStatus {
	s := &ReloadStatus{}
	s.Record(true, time.Now())
	return s
}

func TestPageURL(t *testing.T) {
	for addr, want := range map[string]string{
		"[::]:9517":      "http://localhost:9517/",
		"0.0.0.0:9517":   "http://localhost:9517/",
		"127.0.0.1:9517": "http://127.0.0.1:9517/",
		"[::1]:9517":     "http://[::1]:9517/",
	} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := pageURL(a); got != want {
			t.Errorf("pageURL(%s) = %s, want %s", addr, got, want)
		}
	}
}

// The series limit grows with the configuration: 10,000 targets with mixed
// outcomes must not be merged into one overflow series (as the SDK's
// default of 2,000 per instrument did).
func TestCardinalityLimitFitsTheConfiguration(t *testing.T) {
	cfg := &config.Config{Probes: []config.Probe{{Targets: make([]config.Target, 10000)}}}
	if got := cardinalityLimit(cfg); got < 10000*seriesPerTarget {
		t.Errorf("limit %d for 10,000 targets, want at least %d", got, 10000*seriesPerTarget)
	}
	if got := cardinalityLimit(&config.Config{Probes: []config.Probe{{Targets: make([]config.Target, 3)}}}); got != 2000 {
		t.Errorf("limit %d for 3 targets, want the SDK's default 2000", got)
	}
	// A path probe has a series per hop in its per-hop instruments.
	paths := config.Probe{Targets: make([]config.Target, 100), Settings: &path.Config{MaxHops: 64}}
	if got := cardinalityLimit(&config.Config{Probes: []config.Probe{paths}}); got < 100*64 {
		t.Errorf("limit %d for 100 path targets of 64 hops, want at least 6400", got)
	}
}

// surfaceTLSServer is an HTTPS server on loopback with a certificate from
// a test CA, for the tcp and http probes; it returns the CA's file.
func surfaceTLSServer(t *testing.T) (*httptest.Server, string) {
	ca := tlstest.NewCA(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, time.Now().Add(24*time.Hour), "127.0.0.1")}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, ca.File
}

// jobsOf is the agent's scheduler jobs, in configuration order.
func jobsOf(a *Agent) []scheduler.Job {
	a.mu.Lock()
	defer a.mu.Unlock()
	var jobs []scheduler.Job
	for _, t := range a.targets {
		jobs = append(jobs, a.job(a.probes[t.Probe], t))
	}
	return jobs
}
