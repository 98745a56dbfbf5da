package speedtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/speedtestserver"
)

// A target naming a responsiveness configuration (netpulse's server's
// /.well-known/nq here) is tested with the URLs it lists: rates, loaded
// latency and RPM, idle latency on its small URL, no packet loss.
func TestNQTarget(t *testing.T) {
	srv := startServer(t, speedtestserver.Options{})
	p, _ := newTestProber(t, testConfig(time.Second), Options{})
	r, err := p.Measure(t.Context(), target(srv.URL()+speedtestserver.NQConfigPath))
	if err != nil {
		t.Fatal(err)
	}
	if r.Server.ID != "nq" || r.Idle.Samples != 10 || r.PacketLoss != nil {
		t.Errorf("server %+v, idle %+v, packet loss %v", r.Server, r.Idle, r.PacketLoss)
	}
	for _, d := range []*Direction{r.Download, r.Upload} {
		if d.Rate < 100e6/8 || d.Responsiveness.RPM <= 0 || d.Responsiveness.Samples.HTTP == 0 {
			t.Errorf("%s: %.0f Mbit/s, responsiveness %+v", d.Name, d.Rate*8/1e6, d.Responsiveness)
		}
	}
	if st := srv.Stats(); st.BytesReceived == 0 || st.BytesSent == 0 {
		t.Errorf("the server's counters: %+v", st)
	}
}

// A configuration that is not one, or that sends the load to another host,
// fails the run in server selection, saying why, before any load.
func TestNQBadConfigs(t *testing.T) {
	config := func(urls map[string]string) string {
		b, _ := json.Marshal(map[string]any{"version": 1, "urls": urls})
		return string(b)
	}
	for _, c := range []struct{ name, body, want string }{
		{"elsewhere", config(map[string]string{"small_download_url": "SELF/small",
			"large_download_url": "http://198.51.100.7/large", "upload_url": "SELF/upload"}),
			"the large download URL http://198.51.100.7/large points at another host"},
		{"not JSON", "<html>hello</html>", "not JSON"},
		{"missing URL", config(map[string]string{"small_download_url": "SELF/small"}), "no large download URL"},
		{"not http", config(map[string]string{"small_download_url": "SELF/small", "large_download_url": "ftp://x/large",
			"upload_url": "SELF/upload"}), `the large download URL "ftp://x/large" is not an http(s) URL`},
		{"endless", strings.Repeat(" ", 100<<10), "larger than 65536 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var self string
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				_, _ = w.Write([]byte(strings.ReplaceAll(c.body, "SELF", self)))
			}))
			defer srv.Close()
			self = srv.URL
			p, _ := newTestProber(t, testConfig(time.Second), Options{})
			_, err := p.Measure(t.Context(), target(srv.URL+"/.well-known/nq"))
			if probe.ErrorType(t.Context(), err) != ErrProtocol || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v, want a protocol error containing %q", err, c.want)
			}
			if n := hits.Load(); n != 1 {
				t.Errorf("%d requests, want the configuration's only", n)
			}
		})
	}
}

// FuzzNQConfig: whatever a server sends as its configuration, parsing
// returns endpoints on the configuration's host (or its test endpoint) or
// an error, and never panics.
func FuzzNQConfig(f *testing.F) {
	f.Add([]byte(`{"version":1,"urls":{"small_download_url":"http://h/s","large_download_url":"http://h/l","upload_url":"http://h/u"}}`))
	f.Add([]byte(`{"urls":{"small_https_download_url":"https://x/s","large_https_download_url":"https://h:8/l","https_upload_url":"https://x/u"},"test_endpoint":"x"}`))
	f.Add([]byte(`{"urls":null}`))
	base, _ := url.Parse("http://h/.well-known/nq")
	f.Fuzz(func(t *testing.T, body []byte) {
		ep, err := parseNQConfig(body, base)
		if err != nil {
			return
		}
		for _, u := range []string{ep.small, ep.download, ep.upload} {
			pu, perr := url.Parse(u)
			if perr != nil || (pu.Scheme != "http" && pu.Scheme != "https") {
				t.Fatalf("accepted %q", u)
			}
		}
	})
}
