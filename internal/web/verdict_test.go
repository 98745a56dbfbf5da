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
	var first, text string
	err := chromedp.Run(ctx,
		chromedp.Navigate(a.URL+"/"),
		chromedp.WaitVisible(`#verdict[data-domain="none"]`, chromedp.ByQuery),
		// The page may load before the first run; the line follows the
		// results (server-sent events, then info again).
		chromedp.Poll(`document.getElementById("verdict").textContent.includes("answers")`, nil),
		chromedp.Evaluate(`document.querySelector("main").firstElementChild.id`, &first),
		chromedp.Text("#verdict", &text, chromedp.ByQuery))
	if err != nil {
		t.Fatalf("no verdict line: %v", err)
	}
	if first != "verdict" || !strings.Contains(text, "No fault") || !strings.Contains(text, "gateway home (127.0.0.1) answers") {
		t.Errorf("first element %q, verdict line %q: want the verdict first, saying no fault and why", first, text)
	}
}
