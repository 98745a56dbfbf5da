package web_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/netpulse/netpulse/internal/testutil"
)

// TestStatusPageToken: with api.token_protects_reads the page asks for the
// token in a form (no cards, no window.prompt) that fits a phone and passes
// axe-core; a wrong token is refused and asked for again; the right one
// shows the cards, live results arrive through the event stream read with
// fetch (an EventSource cannot send the token), run now works, and a reload
// keeps the token for the session.
func TestStatusPageToken(t *testing.T) {
	ctx := browser(t)
	const token = "page-token-3f9c2a"
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") }))
	t.Cleanup(web.Close)
	dir := t.TempDir()
	a := testutil.StartAgent(t, fmt.Sprintf(tokenPageConfig, dir, token, web.URL))
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			t.Errorf("page script: %s", e.ExceptionDetails.Error())
		}
	})

	var form struct {
		Cards              int
		Why, Problem, Live string
	}
	readForm := chromedp.Evaluate(`({Cards: document.querySelectorAll(".card[data-target]").length,
		Why: document.getElementById("token-why").textContent, Problem: document.getElementById("token-problem").textContent,
		Live: document.getElementById("live").textContent})`, &form)
	err := chromedp.Run(ctx, runtime.Enable(),
		chromedp.Navigate(a.URL+"/"),
		chromedp.WaitVisible(`#token-form input[type="password"]`, chromedp.ByQuery),
		readForm)
	if err != nil {
		t.Fatalf("no token form: %v", err)
	}
	if form.Cards != 0 || !strings.Contains(form.Why, "needs its token to read: api.token_protects_reads") || form.Problem != "" || form.Live != "token needed" {
		t.Errorf("first load: %+v, want the form saying why, no cards", form)
	}
	axe := axeSource(t)
	for _, scheme := range []string{"light", "dark"} {
		onPhone(t, ctx, axe, scheme, a.URL+"/", `#token-form input[type="password"]`, nil)
	}

	err = chromedp.Run(ctx,
		emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}}),
		chromedp.SendKeys(`#token-input`, "not-the-token", chromedp.ByQuery),
		chromedp.Click(`#token-form button[type="submit"]`, chromedp.ByQuery),
		chromedp.Poll(`document.getElementById("token-problem") && document.getElementById("token-problem").textContent !== ""`, nil,
			chromedp.WithPollingTimeout(10*time.Second)),
		readForm)
	if err != nil {
		t.Fatalf("wrong token: %v", err)
	}
	if form.Cards != 0 || form.Problem != "the token was refused" {
		t.Errorf("after a wrong token: %+v, want the form again saying the token was refused", form)
	}

	card := `.card[data-target="loopback-http"]`
	var typed string // the refused token is not kept in the field
	err = chromedp.Run(ctx,
		chromedp.Evaluate(`document.getElementById("token-input").value`, &typed),
		chromedp.SendKeys(`#token-input`, token, chromedp.ByQuery),
		chromedp.Click(`#token-form button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible(card, chromedp.ByQuery),
		chromedp.WaitVisible(`#live.on`, chromedp.ByQuery))
	if err != nil {
		t.Fatalf("the right token did not open the page: %v", err)
	}
	if typed != "" {
		t.Errorf("the form asks again with %q typed, want an empty field", typed)
	}
	id, _ := postRunWithToken(t, a.URL, token, "web", "loopback-http")
	err = chromedp.Run(ctx, chromedp.Poll(fmt.Sprintf(`document.querySelector(%q).dataset.runId === %q`, card, id), nil,
		chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		t.Fatalf("run %s did not arrive live through the event stream: %v", id, err)
	}
	// Run now sends the token too; its result arrives live. The run it
	// started stays named on the card's progress line (data-run).
	ranNow := fmt.Sprintf(`(() => { const c = document.querySelector(%q), run = c && c.querySelector(".progress").dataset.run;
		return !!run && c.dataset.runId === run; })()`, card)
	err = chromedp.Run(ctx,
		chromedp.Click(card+` button.run`, chromedp.ByQuery),
		chromedp.Poll(ranNow, nil, chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		var progress string
		_ = chromedp.Run(ctx, chromedp.Text(card+` .progress`, &progress, chromedp.ByQuery))
		t.Fatalf("run now with the token: %v (card says %q)", err, progress)
	}
	// The token is kept for the session: a reload opens the page at once.
	var forms int
	err = chromedp.Run(ctx, chromedp.Reload(), chromedp.WaitVisible(card, chromedp.ByQuery), chromedp.WaitVisible(`#live.on`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("#token-form").length`, &forms))
	if err != nil || forms != 0 {
		t.Errorf("reload with the token kept: %v, %d forms", err, forms)
	}

	// The token changes (a configuration reload closes the event stream):
	// the page reconnects, is refused and asks again; the new token opens it.
	const rotated = "page-token-rotated-71d0"
	cfg := fmt.Sprintf(tokenPageConfig, dir, rotated, web.URL)
	if err := os.WriteFile(a.ConfigFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Run(ctx,
		chromedp.WaitVisible(`#token-input`, chromedp.ByQuery), readForm,
		chromedp.SendKeys(`#token-input`, rotated, chromedp.ByQuery),
		chromedp.Click(`#token-form button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible(card, chromedp.ByQuery),
		chromedp.WaitVisible(`#live.on`, chromedp.ByQuery))
	if err != nil {
		t.Fatalf("token changed by a reload: %v", err)
	}
	if form.Cards != 0 || form.Problem != "the token was refused" {
		t.Errorf("after the token changed: %+v, want the form again saying the token was refused", form)
	}

	// Reads open, run now behind the token: the page reads without it
	// (EventSource), and Run now asks for it in the same form.
	openDir := t.TempDir()
	openCfg := func(protect bool) string {
		return strings.Replace(fmt.Sprintf(tokenPageConfig, openDir, token, web.URL), "token_protects_reads: true", fmt.Sprintf("token_protects_reads: %v", protect), 1)
	}
	openReads := testutil.StartAgent(t, openCfg(false))
	var why string
	err = chromedp.Run(ctx,
		chromedp.Navigate(openReads.URL+"/"),
		chromedp.WaitVisible(card+` button.run`, chromedp.ByQuery),
		chromedp.WaitVisible(`#live.on`, chromedp.ByQuery),
		chromedp.Click(card+` button.run`, chromedp.ByQuery),
		chromedp.WaitVisible(`#token-input`, chromedp.ByQuery),
		chromedp.Text(`#token-why`, &why, chromedp.ByQuery),
		chromedp.SendKeys(`#token-input`, token, chromedp.ByQuery),
		chromedp.Click(`#token-form button[type="submit"]`, chromedp.ByQuery),
		chromedp.Click(card+` button.run`, chromedp.ByQuery),
		chromedp.Poll(ranNow, nil, chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		t.Fatalf("run now asking for the token: %v", err)
	}
	if !strings.Contains(why, "Run now needs this agent's API token: api.token") {
		t.Errorf("run now without a token: the form says %q", why)
	}

	// A reload makes reads need the token while the page follows events
	// without one (EventSource): refused, the page reads the index again
	// and asks for the token.
	err = chromedp.Run(ctx, chromedp.Evaluate(`sessionStorage.clear()`, nil), chromedp.Reload(),
		chromedp.WaitVisible(card, chromedp.ByQuery), chromedp.WaitVisible(`#live.on`, chromedp.ByQuery))
	if err != nil {
		t.Fatalf("page without a token: %v", err)
	}
	if err := os.WriteFile(openReads.ConfigFile, []byte(openCfg(true)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := openReads.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Run(ctx, chromedp.WaitVisible(`#token-input`, chromedp.ByQuery), readForm)
	if err != nil {
		t.Fatalf("reads protected by a reload: %v", err)
	}
	if form.Cards != 0 || !strings.Contains(form.Why, "needs its token to read: api.token_protects_reads") {
		t.Errorf("after a reload protected reads: %+v, want the form saying reads need the token", form)
	}
}
