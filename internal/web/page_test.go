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
	"github.com/chromedp/cdproto/network"
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
api: {trace_url: "http://localhost:16686/trace/{trace_id}"}
probes:
  - name: lan
    type: ping
    interval: 1m
    timeout: 5s
    targets:
      - {name: loopback, host: 127.0.0.1}
      - {name: loopback6, host: "::1"}
    ping: {count: 5, packet_interval: 20ms}
  - name: speed
    type: speedtest
    interval: 24h
    timeout: 30s
    targets: [{name: lan-server, host: %q}]
    speedtest: {duration: 2s, max_bytes: 2GB, packet_loss: false}
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

// TestStatusPage loads the page from a running agent in headless chromium:
// it shows the configured targets, draws the charts from history, and
// updates live (server-sent events) when a run finishes. It also measures
// what the first load transfers.
func TestStatusPage(t *testing.T) {
	testutil.NeedICMP(t)
	ctx := browser(t)
	dir := t.TempDir()
	server := servertest.Start(t).URL()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") }))
	t.Cleanup(web.Close)
	seed(t, dir, server, web.URL)
	a := testutil.StartAgent(t, fmt.Sprintf(pageConfig, dir, server, web.URL))

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
	// and the API answers it fetched.
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
		}
	})
	var cards []string
	var points int
	err = chromedp.Run(ctx,
		network.Enable(),
		chromedp.Navigate(a.URL+"/"),
		chromedp.WaitVisible(`.card[data-target="loopback"] svg.chart path.rtt`, chromedp.ByQuery),
		chromedp.WaitVisible(`.card[data-target="lan-server"] svg.chart path.down`, chromedp.ByQuery),
		chromedp.WaitVisible(`#live.on`, chromedp.ByQuery),
		chromedp.Evaluate(`Array.from(document.querySelectorAll(".card")).map(c => c.dataset.probe + "/" + c.dataset.target)`, &cards),
		chromedp.Evaluate(`Number(document.querySelector('.card[data-target="loopback"] svg.chart').dataset.points)`, &points),
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
	// Everything the first load needed has finished by now (the event
	// stream never finishes and is not counted).
	mu.Lock()
	t.Logf("first load transferred %.0f bytes: %.0f of page, script and style (gzip), %.0f of API answers", static+apiBytes, static, apiBytes)
	if static > 32<<10 || static+apiBytes > 128<<10 {
		t.Errorf("first load transferred %.0f bytes of files and %.0f of API answers; budget 32 KiB and 128 KiB in all", static, apiBytes)
	}
	mu.Unlock()

	// Live update: a run started through the API shows on the card without
	// a reload, and lands in the chart.
	id, traceID := postRun(t, a.URL, "lan", "loopback")
	var shown, traceLink string
	err = chromedp.Run(ctx, chromedp.Poll(fmt.Sprintf(`document.querySelector('.card[data-target="loopback"]').dataset.runId === %q`, id), nil,
		chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.Evaluate(`document.querySelector('.card[data-target="loopback"] .v-rtt').textContent`, &shown),
		chromedp.Evaluate(`document.querySelector('.card[data-target="loopback"] .trace a').href`, &traceLink))
	if err != nil {
		t.Fatalf("card did not update live with run %s: %v", id, err)
	}
	if !strings.HasSuffix(shown, " ms") {
		t.Errorf("RTT shown %q", shown)
	}
	if want := "http://localhost:16686/trace/" + traceID; traceID == "" || traceLink != want {
		t.Errorf("trace link %q, want %q (api.trace_url with the run's trace id)", traceLink, want)
	}
	var newPoints int
	_ = chromedp.Run(ctx, chromedp.Evaluate(`Number(document.querySelector('.card[data-target="loopback"] svg.chart').dataset.points)`, &newPoints))
	if newPoints < points {
		t.Errorf("chart had %d points, %d after the live result", points, newPoints)
	}

	// Phases of the last run: an http target's card lists them once a run
	// has measured them; a ping card has no phase row.
	webID, _ := postRun(t, a.URL, "web", "loopback-http")
	var phaseText string
	var pingPhases, barSegs int
	err = chromedp.Run(ctx, chromedp.Poll(fmt.Sprintf(`document.querySelector('.card[data-target="loopback-http"]').dataset.runId === %q`, webID), nil,
		chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.WaitVisible(`.card[data-target="loopback-http"] .phases`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector('.card[data-target="loopback-http"] .phases .list').textContent`, &phaseText),
		chromedp.Evaluate(`document.querySelectorAll('.card[data-target="loopback-http"] .phases .bar i').length`, &barSegs),
		chromedp.Evaluate(`document.querySelectorAll('.card[data-target="loopback"] .phases').length`, &pingPhases))
	if err != nil {
		t.Fatalf("http card did not show the phases of run %s: %v", webID, err)
	}
	t.Logf("phase row: %q", phaseText)
	for _, want := range []string{"connect ", "processing ", "transfer ", " ms"} {
		if !strings.Contains(phaseText, want) {
			t.Errorf("phase row %q: no %q", phaseText, want)
		}
	}
	if barSegs < 3 {
		t.Errorf("phase bar has %d segments, want one per measured phase (at least connect, processing, transfer)", barSegs)
	}
	if pingPhases != 0 {
		t.Errorf("a ping card has %d phase rows, want none", pingPhases)
	}
	// On a phone (390 px wide) nothing, the phase row included, widens the page.
	var scrollW, phasesW int
	err = chromedp.Run(ctx,
		emulation.SetDeviceMetricsOverride(390, 844, 3, true),
		chromedp.WaitVisible(`.card[data-target="loopback-http"] .phases`, chromedp.ByQuery),
		chromedp.Evaluate(`document.documentElement.scrollWidth`, &scrollW),
		chromedp.Evaluate(`document.querySelector('.card[data-target="loopback-http"] .phases').scrollWidth`, &phasesW),
		emulation.ClearDeviceMetricsOverride())
	if err != nil {
		t.Fatalf("390 px: %v", err)
	}
	if scrollW > 390 || phasesW > 390 {
		t.Errorf("at 390 px the page is %d px wide and the phase row %d px: horizontal overflow", scrollW, phasesW)
	}

	// Screenshots, light and dark (kept in docs/ with -update-screenshots).
	outDir := t.TempDir()
	if *updateScreenshots {
		outDir = filepath.Join(testutil.ModuleRoot(t), "docs")
	}
	for _, scheme := range []string{"light", "dark"} {
		var png []byte
		err := chromedp.Run(ctx,
			emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}),
			chromedp.Reload(),
			chromedp.WaitVisible(`.card[data-target="lan-server"] svg.chart path.down`, chromedp.ByQuery),
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
}
