package stacktest

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/netpulse/netpulse/internal/probe/tlsinfo/tlstest"
	"github.com/netpulse/netpulse/internal/testutil"
)

// TestAlertmanagerNotifications runs the real Alertmanager with
// compose/alertmanager.yml and its templates, the placeholder addresses
// replaced by loopback servers of this test: an SMTP server (go-smtp, with
// STARTTLS as the shipped config requires), a webhook receiver and a
// Slack-compatible chat hook. A critical alert must reach all three of the
// "page" receiver, naming the target, the probe, the agent, the tier or
// fault domain, and linking to the status page and the traces; a warning
// goes to "ticket", whose SMTP server refuses the recipient: Alertmanager
// logs the failed delivery and counts it. A target labelled for the
// shipped mute interval (made to hold now) is held back by its route.
func TestAlertmanagerNotifications(t *testing.T) {
	bin := testutil.LookPath("prometheus-alertmanager")
	testutil.Need(t, bin != "", "prometheus-alertmanager on PATH: apt-get install -y --no-install-recommends prometheus-alertmanager")

	ca := tlstest.NewCA(t)
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, time.Now().Add(time.Hour), "127.0.0.1")}}
	mails := make(chan []byte, 16)
	good := startSMTP(t, tlsConfig, mails, nil)
	refusing := startSMTP(t, tlsConfig, nil, &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
		Message: "mailbox network-team unavailable"})
	webhook, chat := make(chan []byte, 16), make(chan []byte, 16)
	hookURL, chatURL := recordPosts(t, webhook), recordPosts(t, chat)

	// The shipped file, with this test's addresses and without the 30 s
	// group_wait (a test waits for the first notification, not for more
	// alerts of the same group).
	configFile := loopbackAlertmanagerConfig(t, func(cfg map[string]any) {
		set(cfg["global"], "smtp_smarthost", good)
		set(cfg["route"], "group_wait", "0s")
		// The shipped mute interval, made to hold now: its route's alerts
		// are muted, as they would be on a Sunday night.
		for _, ti := range cfg["time_intervals"].([]any) {
			set(ti, "time_intervals", []any{map[string]any{"weekdays": []string{"sunday:saturday"}}})
		}
		for _, r := range cfg["receivers"].([]any) {
			name := r.(map[string]any)["name"]
			for _, ec := range list(r, "email_configs") {
				set(ec, "tls_config", map[string]any{"ca_file": ca.File})
				if name == "ticket" {
					set(ec, "smarthost", refusing)
				}
			}
			for _, wc := range list(r, "webhook_configs") {
				set(wc, "url", hookURL)
			}
			for _, sc := range list(r, "slack_configs") {
				set(sc, "api_url", chatURL)
			}
		}
	})
	dir := filepath.Dir(configFile)

	addr := testutil.FreeAddr(t)
	am := testutil.StartProcess(t, "alertmanager", exec.Command(bin, "--config.file="+configFile,
		"--storage.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--cluster.listen-address=",
		"--log.level=debug")) // debug: the mute is logged only there
	base := "http://" + addr
	testutil.Eventually(t, 20*time.Second, func() error {
		if am.Exited() {
			return fmt.Errorf("alertmanager exited:\n%s", am.Output())
		}
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/-/ready: %s", resp.Status)
		}
		return nil
	})

	postAlerts(t, base, []map[string]any{
		{"labels": map[string]string{"alertname": "NetpulseTargetUnreachable", "severity": "critical", "job": "netpulse",
			"instance": "agent-1:9517", "site": "home", "probe_name": "internet", "probe_type": "ping",
			"target_name": "cloudflare", "tier": "internet"},
			"annotations": map[string]string{"summary": "cloudflare (internet) does not answer",
				"description": "Every run of the last 5 minutes failed."}},
		// Another agent's: a fault of agent-1's ISP would mute its target's alert.
		{"labels": map[string]string{"alertname": "NetpulseFaultISP", "severity": "critical", "job": "netpulse",
			"instance": "agent-2:9517", "site": "office", "domain": "isp"},
			"annotations": map[string]string{"summary": "Fault in the ISP (from agent-2:9517)",
				"description": "The gateway answers, but the ISP's first hops do not."}},
		// A target labelled for the shipped mute interval: not notified.
		{"labels": map[string]string{"alertname": "NetpulseTargetUnreachable", "severity": "critical", "job": "netpulse",
			"instance": "agent-1:9517", "probe_name": "internet", "probe_type": "ping", "target_name": "muted",
			"maintenance_window": "sunday-night"},
			"annotations": map[string]string{"summary": "muted (internet) does not answer", "description": "Muted."}},
		{"labels": map[string]string{"alertname": "NetpulseHighLatency", "severity": "warning", "job": "netpulse",
			"instance": "agent-1:9517", "probe_name": "internet", "probe_type": "ping", "target_name": "google"},
			"annotations": map[string]string{"summary": "google (internet) is slow", "description": "p95 above 100 ms."}},
	})

	// E-mail: one message per group, a text and an HTML part.
	got := map[string]mailParts{}
	for len(got) < 2 {
		select {
		case raw := <-mails:
			m := parseMail(t, raw)
			got[m.subject] = m
		case <-time.After(30 * time.Second):
			t.Fatalf("no e-mail for both critical alerts within 30 s (got %d)\n%s", len(got), am.Output())
		}
	}
	target, ok := got["[FIRING:1] NetpulseTargetUnreachable cloudflare (internet)"]
	if !ok {
		t.Fatalf("no mail with the target's subject; subjects: %v", keys(got))
	}
	traceQuery := `{ span.probe.name = "internet" && span.target.name = "cloudflare" && status = error }`
	for _, want := range []string{
		"FIRING NetpulseTargetUnreachable (critical): cloudflare (internet) does not answer",
		"Target: cloudflare (probe internet, ping)", "Agent: agent-1:9517 (site home)", "Tier: internet",
		"Every run of the last 5 minutes failed.", "Status page: http://agent-1:9517/",
		"Traces: http://localhost:3000/explore?schemaVersion=1&panes=",
	} {
		if !strings.Contains(target.text, want) {
			t.Errorf("target mail's text lacks %q:\n%s", want, target.text)
		}
	}
	if q := explorePanes(t, target.text); !strings.Contains(q, traceQuery) {
		t.Errorf("target mail's trace link queries %s, want %s", q, traceQuery)
	}
	for _, want := range []string{`<a href="http://agent-1:9517/">Status page</a>`, "Tier: internet",
		"cloudflare (internet) does not answer"} {
		if !strings.Contains(target.html, want) {
			t.Errorf("target mail's HTML lacks %q:\n%s", want, target.html)
		}
	}
	if q := explorePanes(t, strings.ReplaceAll(target.html, "&amp;", "&")); !strings.Contains(q, traceQuery) {
		t.Errorf("target mail's HTML trace link queries %s, want %s", q, traceQuery)
	}
	fault, ok := got["[FIRING:1] NetpulseFaultISP"]
	if !ok {
		t.Fatalf("no mail for the fault alert; subjects: %v", keys(got))
	}
	for _, want := range []string{"Fault domain: isp", "Agent: agent-2:9517 (site office)", "Status page: http://agent-2:9517/"} {
		if !strings.Contains(fault.text, want) {
			t.Errorf("fault mail's text lacks %q:\n%s", want, fault.text)
		}
	}

	// Chat (Slack format) for the page; the webhook for the page and the ticket.
	chatText := receiveUntil(t, chat, "chat hook", func(b []byte) bool { return bytes.Contains(b, []byte("cloudflare")) })
	var slack struct {
		Channel     string `json:"channel"`
		Attachments []struct {
			Title, Text string
		} `json:"attachments"`
	}
	if err := json.Unmarshal(chatText, &slack); err != nil || len(slack.Attachments) == 0 {
		t.Fatalf("chat hook got %s (%v)", chatText, err)
	}
	if a := slack.Attachments[0]; a.Title != "[FIRING:1] NetpulseTargetUnreachable cloudflare (internet)" ||
		!strings.Contains(a.Text, "Target: cloudflare (probe internet, ping)") || !strings.Contains(a.Text, "Status page: http://agent-1:9517/") ||
		slack.Channel != "#network" {
		t.Errorf("chat message: channel %q, title %q, text:\n%s", slack.Channel, a.Title, a.Text)
	}
	hook := receiveUntil(t, webhook, "webhook", func(b []byte) bool { return bytes.Contains(b, []byte(`"google"`)) })
	var payload struct {
		Receiver string `json:"receiver"`
		Alerts   []struct {
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	if err := json.Unmarshal(hook, &payload); err != nil || len(payload.Alerts) != 1 {
		t.Fatalf("webhook got %s (%v)", hook, err)
	}
	if l := payload.Alerts[0].Labels; payload.Receiver != "ticket" || l["alertname"] != "NetpulseHighLatency" || l["probe_name"] != "internet" {
		t.Errorf("webhook payload: receiver %q, labels %v", payload.Receiver, l)
	}

	// The muted target's group reached its route and was held back there
	// (only the sunday-night routes have a mute interval, and only that
	// target carries their label).
	testutil.Eventually(t, 30*time.Second, func() error {
		if !strings.Contains(am.Output(), "Notifications not sent, route is within mute time") {
			return fmt.Errorf("no log of the muted target's notification held back by the mute time interval")
		}
		return nil
	})

	// The ticket's SMTP server refused: a logged failure naming the
	// receiver, the integration and the server's answer, and a counted one.
	testutil.Eventually(t, 30*time.Second, func() error {
		out := am.Output()
		for _, line := range strings.Split(out, "\n") {
			// "Notify attempt failed" at each try; "Notify for alerts
			// failed" once the retries ran out (group_interval later).
			if strings.Contains(line, "failed") && strings.Contains(line, "integration=email") &&
				strings.Contains(line, "550 5.1.1 mailbox network-team unavailable") && strings.Contains(line, "receiver=ticket") {
				return nil
			}
		}
		return fmt.Errorf("no logged e-mail delivery failure of receiver ticket yet:\n%s", out)
	})
	metrics := httpGet(t, base+"/metrics")
	// Counted per attempt (alertmanager_notifications_failed_total counts
	// once the retries ran out).
	if !regexp.MustCompile(`(?m)^alertmanager_notification_requests_failed_total\{integration="email"\} [1-9]`).MatchString(metrics) {
		t.Errorf("alertmanager_notification_requests_failed_total{integration=\"email\"} is not above 0")
	}
}

// loopbackAlertmanagerConfig writes compose/alertmanager.yml, changed by
// rewrite, and its templates into a new directory and returns the file.
// Its receivers' placeholder addresses must be replaced (rewrite) or
// removed (noNotifications): a test sends nothing beyond loopback, not
// even a DNS question.
func loopbackAlertmanagerConfig(t *testing.T, rewrite func(cfg map[string]any)) string {
	t.Helper()
	var cfg map[string]any
	loadYAML(t, "compose/alertmanager.yml", &cfg)
	rewrite(cfg)
	dir := t.TempDir()
	file := writeYAML(t, dir, "alertmanager.yml", cfg)
	for _, tmpl := range cfg["templates"].([]any) {
		if err := os.WriteFile(filepath.Join(dir, tmpl.(string)), readRepo(t, "compose/"+tmpl.(string)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return file
}

// noNotifications empties every receiver: alerts are routed and inhibited
// as shipped, and notified to nobody.
func noNotifications(cfg map[string]any) {
	delete(cfg["global"].(map[string]any), "smtp_smarthost")
	for _, r := range cfg["receivers"].([]any) {
		name := r.(map[string]any)["name"]
		clear(r.(map[string]any))
		set(r, "name", name)
	}
}

func set(m any, key string, v any) { m.(map[string]any)[key] = v }

// startSMTP serves SMTP with STARTTLS on a loopback port: it delivers each
// message's raw bytes to mails, or refuses every recipient with refuse.
func startSMTP(t *testing.T, tlsConfig *tls.Config, mails chan<- []byte, refuse error) string {
	t.Helper()
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &smtpSession{mails: mails, refuse: refuse}, nil
	}))
	srv.Domain = "localhost"
	srv.TLSConfig = tlsConfig
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0) // clients that hang up after QUIT
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

type smtpSession struct {
	mails  chan<- []byte
	refuse error
}

func (s *smtpSession) Reset()                                   {}
func (s *smtpSession) Logout() error                            { return nil }
func (s *smtpSession) Mail(string, *smtp.MailOptions) error     { return nil }
func (s *smtpSession) Rcpt(_ string, _ *smtp.RcptOptions) error { return s.refuse }
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err == nil && s.mails != nil {
		s.mails <- b
	}
	return err
}

// recordPosts serves an HTTP endpoint that sends each request body to ch.
func recordPosts(t *testing.T, ch chan<- []byte) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- b
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hook"
}

func receiveUntil(t *testing.T, ch <-chan []byte, what string, match func([]byte) bool) []byte {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case b := <-ch:
			if match(b) {
				return b
			}
		case <-deadline:
			t.Fatalf("%s: no matching request within 30 s", what)
		}
	}
}

func postAlerts(t *testing.T, base string, alerts []map[string]any) {
	t.Helper()
	for _, a := range alerts {
		a["startsAt"] = time.Now().Add(-time.Minute).Format(time.RFC3339)
	}
	body, _ := json.Marshal(alerts)
	resp, err := http.Post(base+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("post alerts: %s", resp.Status)
	}
}

func httpGet(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// list returns the items of m's list under key (none if absent).
func list(m any, key string) []any {
	l, _ := m.(map[string]any)[key].([]any)
	return l
}

type mailParts struct{ subject, text, html string }

// parseMail decodes a message as Alertmanager sends it: multipart/
// alternative with quoted-printable text and HTML parts.
func parseMail(t *testing.T, raw []byte) mailParts {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse mail: %v\n%s", err, raw)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	out := mailParts{subject: subject}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("mail content type: %v", err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("mail part: %v", err)
		}
		var r io.Reader = p // multipart decodes quoted-printable itself
		if p.Header.Get("Content-Transfer-Encoding") == "quoted-printable" {
			r = quotedprintable.NewReader(p)
		}
		b, _ := io.ReadAll(r)
		switch ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct {
		case "text/plain":
			out.text = string(b)
		case "text/html":
			out.html = string(b)
		}
	}
	return out
}

// explorePanes returns the Grafana Explore state of the first trace link
// in s, decoded.
func explorePanes(t *testing.T, s string) string {
	t.Helper()
	i := strings.Index(s, "/explore?")
	if i < 0 {
		return ""
	}
	end := strings.IndexAny(s[i:], "\"\r\n ")
	if end < 0 {
		end = len(s) - i
	}
	u, err := url.Parse("http://x" + s[i:i+end])
	if err != nil {
		t.Fatalf("trace link %q: %v", s[i:i+end], err)
	}
	var panes map[string]struct {
		Queries []struct{ Query string } `json:"queries"`
	}
	if err := json.Unmarshal([]byte(u.Query().Get("panes")), &panes); err != nil || len(panes["a"].Queries) == 0 {
		t.Fatalf("trace link's panes %q: %v", u.Query().Get("panes"), err)
	}
	return panes["a"].Queries[0].Query
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
