package web_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/netpulse/netpulse/internal/testutil"
)

// The page's first line is the fault-domain verdict when targets have a
// tier (without tiers there is none), kept up to date as
// results come.
func TestVerdictLine(t *testing.T) {
	testutil.NeedICMP(t)
	ctx := browser(t)
	a := testutil.StartAgent(t, fmt.Sprintf(`
probes:
  - name: tiers
    type: ping
    interval: 2s
    timeout: 1s
    targets: [{name: home, host: 127.0.0.1, tier: gateway}]
    ping: {count: 2, packet_interval: 10ms}
storage: {path: %q}
`, t.TempDir()))
	var first, text, tier string
	var traceLinks, detailLinks int
	err := chromedp.Run(ctx,
		chromedp.Navigate(a.URL+"/"),
		chromedp.WaitVisible(`#verdict[data-domain="none"]`, chromedp.ByQuery),
		// The page may load before the first run; the line follows the
		// results (server-sent events, then info again).
		chromedp.Poll(`document.getElementById("verdict").textContent.includes("answers")`, nil),
		chromedp.Evaluate(`document.querySelector("#summary").firstElementChild.nextElementSibling.id`, &first),
		chromedp.Text("#verdict", &text, chromedp.ByQuery),
		chromedp.Text(`section[data-probe="tiers"] h3.tier`, &tier, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll(".card a.trace").length`, &traceLinks),
		chromedp.Evaluate(`document.querySelectorAll(".card .links a").length`, &detailLinks))
	if err != nil {
		t.Fatalf("no verdict line: %v", err)
	}
	if first != "verdict" || !strings.Contains(text, "No fault") || !strings.Contains(text, "gateway home (127.0.0.1) answers") {
		t.Errorf("element after the counts %q, verdict line %q: want the verdict, saying no fault and why", first, text)
	}
	if tier != "tier gateway" {
		t.Errorf("targets grouped under %q, want their tier", tier)
	}
	// No traces are exported (no api.trace_url): no trace links, only the
	// run's details.
	if traceLinks != 0 || detailLinks == 0 {
		t.Errorf("%d trace links and %d detail links, want none and some", traceLinks, detailLinks)
	}
}

// An agent reachable from its network without api.token has run now off:
// the page says so, why, and how to turn it on, instead of hiding it.
func TestRunNowOffExplained(t *testing.T) {
	testutil.NeedICMP(t)
	ctx := browser(t)
	a := testutil.StartAgent(t, fmt.Sprintf(`
probes:
  - name: lan
    type: ping
    interval: 1h
    timeout: 1s
    targets: [{name: self, host: 127.0.0.1}]
    ping: {count: 1}
storage: {path: %q}
`, t.TempDir()), testutil.AgentOnAllAddresses())
	var note string
	var buttons int
	err := chromedp.Run(ctx,
		chromedp.Navigate(a.URL+"/"),
		chromedp.WaitVisible(`#runnow-off`, chromedp.ByQuery),
		chromedp.Text(`#runnow-off`, &note, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("button.run").length`, &buttons))
	if err != nil {
		t.Fatalf("no run-now note: %v", err)
	}
	for _, want := range []string{"Run now is off", "api.token is not set", "set api.token", "--web.listen-address 127.0.0.1:9517"} {
		if !strings.Contains(note, want) {
			t.Errorf("run-now note %q lacks %q", note, want)
		}
	}
	if buttons != 0 {
		t.Errorf("%d Run now buttons on an agent where run now is off", buttons)
	}
}
