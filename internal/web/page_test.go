package web_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/history"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probe/ping"
	"github.com/netpulse/netpulse/internal/probes"
	"github.com/netpulse/netpulse/internal/speedtestserver/servertest"
	"github.com/netpulse/netpulse/internal/testutil"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write docs/status-page*.png from this run")

func TestMain(m *testing.M) { testutil.Main(m) }

const pageConfig = `
storage: {path: %q}
api: {trace_url: "http://localhost:16686/trace/{trace_id}", speedtest_min_interval: 1s}
probes:
  - name: lan
    type: ping
    interval: 1m
    timeout: 5s
    targets:
      - {name: loopback, host: 127.0.0.1}
      - {name: loopback6, host: "::1", thresholds: {latency: 1us}}
    ping: {count: 5, packet_interval: 20ms}
    thresholds: {latency: 100ms, loss: 0.05}
  - name: speed
    type: speedtest
    interval: 24h
    timeout: 30s
    targets: [{name: lan-server, host: %q}]
    speedtest: {duration: 2s, max_bytes: 2GB, packet_loss: false}
    thresholds: {download: 5Gbit/s, upload: 1Gbit/s}
  - name: web
    type: http
    interval: 1h
    timeout: 5s
    targets: [{name: loopback-http, host: %q}]
`

// seed writes an hour of ping history for both loopback targets and two
// weeks of daily speed tests into the agent's store, so the charts have a
// history to draw before the first live run. The figures are synthetic but
// of loopback's order (RTT 0.1-0.4 ms, 12-15 Gbit/s down); the runs the
// test triggers are real.
func seed(t *testing.T, dir, server, web string) {
	cfg, err := config.Parse(fmt.Appendf(nil, pageConfig, dir, server, web), probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	s, err := history.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	rnd := rand.New(rand.NewPCG(1, 2))
	var batch []probe.Result
	for i, p := range cfg.Probes {
		for j, tc := range p.Targets {
			tg := probe.NewTarget(p, tc)
			if p.Type == ping.TypeName {
				for k := 3600; k > 60; k -= 20 {
					start := now.Add(-time.Duration(k) * time.Second)
					base := 0.00022 + 0.00003*float64(j) + 0.00008*math.Sin(float64(k)/500)
					avg := base + rnd.Float64()*0.00006
					loss := 0.0
					if rnd.IntN(25) == 0 {
						loss = 0.2
					}
					batch = append(batch, probe.Result{Target: tg, Start: start, Duration: 150 * time.Millisecond,
						Outcome: probe.OutcomeSuccess, RunID: probe.NewRunID(tg, start), Values: probe.Values{
							"rtt_avg_seconds": avg, "rtt_min_seconds": avg * 0.8, "rtt_max_seconds": avg * 1.4,
							"rtt_p10_seconds": avg * 0.85, "rtt_p25_seconds": avg * 0.93, "rtt_median_seconds": avg * 0.98,
							"rtt_p75_seconds": avg * 1.05, "rtt_p90_seconds": avg * 1.2,
							"jitter_seconds": avg * 0.08, "loss_ratio": loss, "packets_sent": 5, "packets_received": 5 * (1 - loss)}})
				}
				continue
			}
			if p.Type != "speedtest" {
				continue // the web probe's card shows its live run only
			}
			for d := 14; d > 0; d-- {
				start := now.Add(-time.Duration(d)*24*time.Hour + time.Duration(rnd.IntN(3600))*time.Second)
				down := (12 + rnd.Float64()*3) * 1e9 / 8
				batch = append(batch, probe.Result{Target: tg, Start: start, Duration: 5 * time.Second,
					Outcome: probe.OutcomeSuccess, RunID: probe.NewRunID(tg, start), Values: probe.Values{
						"download_bytes_per_second": down, "upload_bytes_per_second": down * 0.27,
						"latency_idle_seconds": 0.0005 + rnd.Float64()*0.0003, "latency_download_seconds": 0.001 + rnd.Float64()*0.001,
						"latency_upload_seconds": 0.0015 + rnd.Float64()*0.001}})
			}
			_ = i
		}
	}
	if err := s.Put(batch); err != nil {
		t.Fatal(err)
	}
}

// browser starts headless Debian chromium, driven over the DevTools protocol.
func browser(t *testing.T) context.Context {
	bin := testutil.LookPath("chromium")
	testutil.Need(t, bin != "", "chromium: apt-get install chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.WindowSize(1280, 900),
		// No UserDataDir: chromedp gives each browser a fresh temporary
		// one and removes it once the browser has exited.
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// postRun starts a run on demand. A scheduled run of the same target may be
// in flight (the schedule's random first offset can put one anywhere), so a
// 409 is retried until the run is accepted.
func postRun(t *testing.T, base, probeName, target string) (runID, traceID string) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() error {
		resp, err := http.Post(base+"/api/v1/probes/"+probeName+"/runs", "application/json",
			strings.NewReader(fmt.Sprintf(`{"target": %q}`, target)))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var rn struct {
			Runs []struct {
				RunID   string `json:"run_id"`
				TraceID string `json:"trace_id"`
			} `json:"runs"`
		}
		err = json.NewDecoder(resp.Body).Decode(&rn)
		switch {
		case resp.StatusCode == http.StatusConflict:
			return fmt.Errorf("run now %s/%s: 409", probeName, target)
		case err != nil || resp.StatusCode != http.StatusAccepted || len(rn.Runs) != 1:
			return testutil.Permanent(fmt.Errorf("run now %s/%s: status %d, %v", probeName, target, resp.StatusCode, err))
		}
		runID, traceID = rn.Runs[0].RunID, rn.Runs[0].TraceID
		return nil
	})
	return runID, traceID
}

// TestStatusPage loads the page from a running agent in headless chromium
// and walks through it: the overview (counts, the degraded badge, the
// latency distribution drawn from seeded history, heartbeats), live
// updates, run now joining a speed test in flight with its live progress,
// the per-target page and the debug view of a run; at 390 px in light and
// dark nothing overflows sideways, and axe-core finds no serious or
// critical accessibility violation. It also measures what the first load
// transfers.
func TestStatusPage(t *testing.T) {
	testutil.NeedICMP(t)
	ctx := browser(t)
	dir := t.TempDir()
	server := servertest.Start(t).URL()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") }))
	t.Cleanup(web.Close)
	seed(t, dir, server, web.URL)
	// Trace links show only when traces are exported: they are, to a
	// loopback port where nothing listens (the spans are lost; the links
	// are what is tested).
	otlp := fmt.Sprintf("telemetry: {otlp: {endpoint: %q, insecure: true, signals: [traces]}}\n", testutil.FreeAddr(t))
	a := testutil.StartAgent(t, fmt.Sprintf(pageConfig, dir, server, web.URL)+otlp)

	// A real speed test first, so the speed-test card has a live result.
	resp, err := http.Post(a.URL+"/api/v1/probes/speed/runs?wait=40s", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("speed test: %d %s", resp.StatusCode, body)
	}

	// Bytes on the wire per request of the first load: the page's own files
	// (page, scripts, styles, chart library) and the API answers it fetched.
	var mu sync.Mutex
	urls := map[network.RequestID]string{}
	var static, apiBytes float64
	chromedp.ListenTarget(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *network.EventResponseReceived:
			urls[e.RequestID] = e.Response.URL
		case *network.EventLoadingFinished:
			if strings.Contains(urls[e.RequestID], "/api/") {
				apiBytes += e.EncodedDataLength
			} else {
				static += e.EncodedDataLength
			}
		case *runtime.EventExceptionThrown: // the page's script failed
			t.Errorf("page script: %s", e.ExceptionDetails.Error())
		}
	})
	var cards []string
	var points int
	var degraded struct{ Status, Badge, Reason, Counts string }
	err = chromedp.Run(ctx,
		network.Enable(), runtime.Enable(),
		chromedp.Navigate(a.URL+"/"),
		chromedp.WaitVisible(`.card[data-target="loopback"] .chart-box canvas`, chromedp.ByQuery),
		chromedp.WaitVisible(`.card[data-target="lan-server"] .chart-box canvas`, chromedp.ByQuery),
		chromedp.WaitVisible(`#live.on`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelectorAll('.card[data-target="loopback"] .beats i').length > 0 &&
			document.querySelector('.card[data-target="loopback"] .v-uptime').textContent.endsWith("%")`, nil),
		chromedp.Evaluate(`Array.from(document.querySelectorAll(".card")).map(c => c.dataset.probe + "/" + c.dataset.target)`, &cards),
		chromedp.Evaluate(`Number(document.querySelector('.card[data-target="loopback"] .chart-box').dataset.points)`, &points),
		chromedp.Evaluate(`(() => { const c = document.querySelector('.card[data-target="loopback6"]');
			return {Status: c.dataset.status, Badge: c.querySelector(".badge").textContent, Reason: c.querySelector(".reason").textContent,
				Counts: document.getElementById("counts").textContent}; })()`, &degraded),
	)
	if err != nil {
		t.Fatalf("page did not render: %v", err)
	}
	if strings.Join(cards, ",") != "lan/loopback,lan/loopback6,speed/lan-server,web/loopback-http" {
		t.Errorf("cards %v, want the configured targets", cards)
	}
	if points < 50 {
		t.Errorf("loopback chart draws %d points of the seeded hour (a run every 20 s, 1 min buckets)", points)
	}
	// loopback6's own threshold (1 µs) is below any RTT: degraded, saying why.
	if degraded.Status != "degraded" || degraded.Badge != "degraded" || !strings.Contains(degraded.Reason, "latency ") ||
		!strings.Contains(degraded.Reason, " > 0.001 ms") || !strings.Contains(degraded.Counts, "degraded") || strings.Contains(degraded.Counts, "0 degraded") {
		t.Errorf("loopback6: %+v, want degraded by its latency threshold, counted", degraded)
	}
	// Everything the first load needed has finished by now (the event
	// stream never finishes and is not counted).
	mu.Lock()
	t.Logf("first load transferred %.0f bytes: %.0f of page, scripts, styles and chart library (gzip), %.0f of API answers",
		static+apiBytes, static, apiBytes)
	if static > 60<<10 || apiBytes > 200<<10 {
		t.Errorf("first load transferred %.0f bytes of files and %.0f of API answers; budget 60 KiB and 200 KiB", static, apiBytes)
	}
	mu.Unlock()

	// Live update: a run started through the API shows on the card without
	// a reload, and lands in the chart.
	id, traceID := postRun(t, a.URL, "lan", "loopback")
	var shown, traceLink string
	err = chromedp.Run(ctx, chromedp.Poll(fmt.Sprintf(`document.querySelector('.card[data-target="loopback"]').dataset.runId === %q`, id), nil,
		chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.Evaluate(`document.querySelector('.card[data-target="loopback"] .v-rtt').textContent`, &shown),
		chromedp.Evaluate(`document.querySelector('.card[data-target="loopback"] a.trace').href`, &traceLink))
	if err != nil {
		t.Fatalf("card did not update live with run %s: %v", id, err)
	}
	if !strings.HasSuffix(shown, " ms") {
		t.Errorf("RTT shown %q", shown)
	}
	if want := "http://localhost:16686/trace/" + traceID; traceID == "" || traceLink != want {
		t.Errorf("trace link %q, want %q (api.trace_url with the run's trace id)", traceLink, want)
	}

	// Phases of the last run: an http target's card lists them once a run
	// has measured them; a ping card has no phase row.
	webID, _ := postRun(t, a.URL, "web", "loopback-http")
	var phaseText string
	var pingPhases int
	err = chromedp.Run(ctx, chromedp.Poll(fmt.Sprintf(`document.querySelector('.card[data-target="loopback-http"]').dataset.runId === %q`, webID), nil,
		chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.WaitVisible(`.card[data-target="loopback-http"] .phases`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector('.card[data-target="loopback-http"] .phases .list').textContent`, &phaseText),
		chromedp.Evaluate(`document.querySelectorAll('.card[data-target="loopback"] .phases').length`, &pingPhases))
	if err != nil {
		t.Fatalf("http card did not show the phases of run %s: %v", webID, err)
	}
	for _, want := range []string{"connect ", "processing ", "transfer ", " ms"} {
		if !strings.Contains(phaseText, want) {
			t.Errorf("phase row %q: no %q", phaseText, want)
		}
	}
	if pingPhases != 0 {
		t.Errorf("a ping card has %d phase rows, want none", pingPhases)
	}

	// Screenshots, light and dark (kept in docs/ with -update-screenshots).
	outDir := t.TempDir()
	if *updateScreenshots {
		outDir = filepath.Join(testutil.ModuleRoot(t), "docs")
	}
	runNowJoins(t, ctx, a.URL)
	targetAndRunPages(t, ctx, a.URL, id)
	phonesAndAccessibility(t, ctx, a.URL, id, outDir)

	for _, scheme := range []string{"light", "dark"} {
		var png []byte
		err := chromedp.Run(ctx,
			emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}),
			chromedp.Navigate(a.URL+"/#/"),
			chromedp.Reload(),
			chromedp.WaitVisible(`.card[data-target="lan-server"] .chart-box canvas`, chromedp.ByQuery),
			chromedp.WaitVisible(`.card[data-target="loopback"] .chart-box canvas`, chromedp.ByQuery),
			chromedp.WaitVisible(`#live.on`, chromedp.ByQuery),
			chromedp.FullScreenshot(&png, 100)) // 100: PNG
		if err != nil {
			t.Fatalf("%s screenshot: %v", scheme, err)
		}
		name := "status-page.png"
		if scheme == "dark" {
			name = "status-page-dark.png"
		}
		if err := os.WriteFile(filepath.Join(outDir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The per-target page, light.
	var png []byte
	err = chromedp.Run(ctx,
		emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}}),
		chromedp.Navigate(a.URL+"/#/targets/lan/loopback"),
		chromedp.WaitVisible(`.target-page .chart-box canvas`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelectorAll(".target-page .beats.runs a").length > 0 && document.querySelector(".v-uptime30").textContent.endsWith("%")`, nil),
		chromedp.FullScreenshot(&png, 100))
	if err != nil {
		t.Fatalf("target page screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(outDir, "status-page-target.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// runNowJoins: with a speed test in flight (started through the API), the
// card's Run now joins it instead of failing, and the card shows the
// test's phase and rate live (progress events) until its result arrives.
func runNowJoins(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	resp, err := http.Post(base+"/api/v1/probes/speed/runs", "application/json", strings.NewReader(`{"target": "lan-server"}`))
	if err != nil {
		t.Fatal(err)
	}
	var rn struct {
		Runs []struct {
			RunID string `json:"run_id"`
		} `json:"runs"`
	}
	err = json.NewDecoder(resp.Body).Decode(&rn)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusAccepted || len(rn.Runs) != 1 {
		t.Fatalf("speed test run now: %d %v", resp.StatusCode, err)
	}
	id := rn.Runs[0].RunID
	card := `.card[data-target="lan-server"]`
	var progress []string
	err = chromedp.Run(ctx,
		chromedp.Click(card+` button.run`, chromedp.ByQuery),
		chromedp.Poll(fmt.Sprintf(`document.querySelector(%q).dataset.joined === %q`, card, id), nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Poll(`(() => { window.__seen = window.__seen || []; const t = document.querySelector('`+card+` .progress').textContent;
			if (t && !window.__seen.includes(t)) window.__seen.push(t); return /bit\/s/.test(t); })()`, nil,
			chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(50*time.Millisecond)),
		chromedp.Evaluate(`window.__seen`, &progress),
		chromedp.Poll(fmt.Sprintf(`document.querySelector(%q).dataset.runId === %q`, card, id), nil, chromedp.WithPollingTimeout(40*time.Second)))
	t.Logf("speed-test progress shown: %q", progress)
	if err != nil {
		t.Fatalf("run now did not join the speed test %s and show its progress: %v", id, err)
	}
	if !strings.Contains(strings.Join(progress, " "), "joined the run in flight") {
		t.Errorf("progress line %q: the page did not say it joined the run in flight", progress)
	}
}

// targetAndRunPages: the per-target page (chart, uptime, heartbeat of runs,
// runs table; an empty outage log) and the debug view
// of run id (facts, log lines, configuration, links).
func targetAndRunPages(t *testing.T, ctx context.Context, base, id string) {
	t.Helper()
	var tp struct {
		Beats, Rows      int
		Uptime, Uptime30 string
		Outages          string
	}
	err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/#/targets/lan/loopback"),
		chromedp.WaitVisible(`.target-page .chart-box canvas`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelectorAll(".target-page .beats.runs a").length > 0 && document.querySelector(".v-uptime30").textContent.endsWith("%")`, nil),
		chromedp.Evaluate(`({Beats: document.querySelectorAll(".target-page .beats.runs a").length,
			Rows: document.querySelectorAll(".target-page .runs-table tbody tr").length,
			Uptime: document.querySelector(".v-uptime").textContent, Uptime30: document.querySelector(".v-uptime30").textContent,
			Outages: document.querySelector(".target-page .outages").textContent})`, &tp))
	if err != nil {
		t.Fatalf("target page: %v", err)
	}
	if tp.Beats < 20 || tp.Rows != 20 || tp.Uptime != "100 %" || tp.Uptime30 != "100 %" ||
		!strings.Contains(tp.Outages, "(0)") || !strings.Contains(tp.Outages, "None.") {
		t.Errorf("target page: %+v, want a heartbeat of the recent runs, 20 rows, 100 %% uptime and an empty outage log", tp)
	}
	// Every range redraws the chart from the seeded hour (one bucket per
	// ~range/300, at least the interval), back to 1 h.
	for _, r := range []struct {
		secs      string
		minPoints int
	}{{"86400", 10}, {"604800", 1}, {"2592000", 1}, {"3600", 50}} {
		var points int
		err := chromedp.Run(ctx,
			chromedp.Evaluate(`document.querySelector('.target-page .chart-box').dataset.points = "-1"`, nil),
			chromedp.Click(`[data-range="`+r.secs+`"]`, chromedp.ByQuery),
			chromedp.Poll(`Number(document.querySelector('.target-page .chart-box').dataset.points) >= 0`, nil),
			chromedp.Evaluate(`Number(document.querySelector('.target-page .chart-box').dataset.points)`, &points))
		if err != nil || points < r.minPoints {
			t.Errorf("range %s s: the chart draws %d points (%v), want at least %d", r.secs, points, err, r.minPoints)
		}
	}
	// The chart's tooltip says what a point is; a click opens its run.
	var box struct{ X, Y float64 }
	var tip, hash string
	err = chromedp.Run(ctx,
		chromedp.Evaluate(`(() => { const r = document.querySelector(".target-page .u-over").getBoundingClientRect();
			return {X: r.left + r.width * 0.5, Y: r.top + r.height * 0.5}; })()`, &box))
	if err != nil {
		t.Fatalf("chart position: %v", err)
	}
	err = chromedp.Run(ctx, // box is known only now
		chromedp.MouseEvent(input.MouseMoved, box.X-5, box.Y),
		chromedp.MouseEvent(input.MouseMoved, box.X, box.Y),
		chromedp.Poll(`!document.querySelector(".target-page .tip").hidden`, nil, chromedp.WithPollingTimeout(5*time.Second)),
		chromedp.Text(`.target-page .tip`, &tip, chromedp.ByQuery),
		chromedp.MouseClickXY(box.X, box.Y),
		chromedp.Poll(`location.hash.startsWith("#/runs/")`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Evaluate(`location.hash`, &hash))
	if err != nil {
		var diag string
		_ = chromedp.Run(ctx, chromedp.Evaluate(`(() => { const b = document.querySelector(".target-page .chart-box");
			return JSON.stringify({hash: location.hash, idx: b && b._u && b._u.cursor.idx, left: b && b._u && b._u.cursor.left,
				tips: document.querySelectorAll(".tip").length, overs: document.querySelectorAll(".u-over").length}); })()`, &diag))
		t.Logf("chart state: %s at %+v", diag, box)
	}
	if err != nil || !strings.Contains(tip, "median") || !strings.Contains(tip, "p10–p90") || !strings.Contains(tip, "loss") {
		t.Errorf("chart tooltip %q, then %q (%v): want the time, median, spread and loss, and a click to open the run", tip, hash, err)
	}

	var rv struct {
		Facts, Config, JSON, Trace string
		Logs                       int
	}
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"/#/runs/"+id),
		chromedp.WaitVisible(`.run-page pre.config`, chromedp.ByQuery),
		chromedp.Evaluate(`({Facts: document.querySelector(".run-page .facts").textContent, Config: document.querySelector(".run-page pre.config").textContent,
			JSON: document.querySelector('.run-page .links a').href, Trace: (document.querySelector('.run-page .links a[target]') || {}).href || "",
			Logs: document.querySelectorAll(".run-page .logs li").length})`, &rv))
	if err != nil {
		t.Fatalf("run view: %v", err)
	}
	if !strings.Contains(rv.Facts, "success") || !strings.Contains(rv.Facts, "run now") || rv.Logs == 0 ||
		!strings.Contains(rv.Config, "count: 5") || !strings.HasSuffix(rv.JSON, "/api/v1/runs/"+id) || !strings.Contains(rv.Trace, "/trace/") {
		t.Errorf("run view: %+v, want its outcome, log lines, configuration, JSON and trace links", rv)
	}
}

// phonesAndAccessibility: at 390 px, light and dark, the overview, a speed
// test's page and a run view do not overflow sideways; axe-core (from npm,
// NETPULSE_AXE) finds no serious or critical violation on any of them.
func phonesAndAccessibility(t *testing.T, ctx context.Context, base, id, outDir string) {
	t.Helper()
	axe := ""
	if path := os.Getenv("NETPULSE_AXE"); path != "" {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("NETPULSE_AXE: %v", err)
		}
		axe = string(src)
	}
	pages := []struct{ hash, ready string }{
		{"#/", `.card[data-target="lan-server"] .chart-box canvas`},
		{"#/targets/speed/lan-server", `.target-page .chart-box canvas`},
		{"#/runs/" + id, `.run-page pre.config`},
	}
	for _, scheme := range []string{"light", "dark"} {
		for _, pg := range pages {
			var scrollW, innerW int
			var violations []map[string]any
			actions := []chromedp.Action{
				emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}),
				emulation.SetDeviceMetricsOverride(390, 844, 3, true),
				chromedp.Navigate(base + "/" + pg.hash),
				chromedp.Reload(),
				chromedp.WaitVisible(pg.ready, chromedp.ByQuery),
				chromedp.Evaluate(`document.scrollingElement.scrollWidth`, &scrollW),
				chromedp.Evaluate(`window.innerWidth`, &innerW),
			}
			if axe != "" {
				actions = append(actions, chromedp.Evaluate(axe, nil),
					chromedp.Evaluate(`axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations
						.filter(v => v.impact === "serious" || v.impact === "critical")
						.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))})))`,
						&violations, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
			}
			var png []byte
			if scheme == "dark" && pg.hash == "#/" { // the phone screenshot
				actions = append(actions, chromedp.CaptureScreenshot(&png))
			}
			actions = append(actions, emulation.ClearDeviceMetricsOverride())
			if err := chromedp.Run(ctx, actions...); err != nil {
				t.Fatalf("%s %s at 390 px: %v", scheme, pg.hash, err)
			}
			if scrollW > innerW {
				t.Errorf("%s %s at 390 px: the page is %d px wide in a %d px window: horizontal overflow", scheme, pg.hash, scrollW, innerW)
			}
			for _, v := range violations {
				t.Errorf("%s %s: accessibility (axe-core): %v", scheme, pg.hash, v)
			}
			if png != nil {
				if err := os.WriteFile(filepath.Join(outDir, "status-page-phone.png"), png, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	testutil.Need(t, axe != "", "axe-core: NETPULSE_AXE=path/to/axe.min.js (npm pack axe-core; .ci/run fetches it)")
}
