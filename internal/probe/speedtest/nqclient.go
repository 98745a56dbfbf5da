package speedtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	st "github.com/showwin/speedtest-go/speedtest"

	"github.com/netpulse/netpulse/internal/probe"
)

// A target whose host is the URL of a responsiveness server's
// configuration (path /.well-known/nq, draft-ietf-ippm-responsiveness-09)
// is tested with the URLs it lists: the large download, the upload and,
// for latency, the small download; no packet-loss test. Any server of the
// draft answers, netpulse speedtest-server included.

// endpoints are the URLs a run loads and probes.
type endpoints struct {
	upload, download, small string
	// nq: the server speaks the responsiveness draft, not speedtest-go's
	// protocol (idle latency is measured on small, no packet loss).
	nq bool
}

// speedtestEndpoints are a speedtest.net-style server's.
func speedtestEndpoints(srv *st.Server) endpoints {
	return endpoints{upload: srv.URL, download: downloadURL(srv.URL), small: latencyURL(srv)}
}

// IsNQConfig reports whether host is the URL of a responsiveness
// configuration.
func IsNQConfig(host string) bool {
	u, err := url.Parse(host)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && strings.HasSuffix(u.Path, "/.well-known/nq")
}

// maxNQConfig bounds the configuration document.
const maxNQConfig = 64 << 10

// nqServer fetches and checks the configuration at cfgURL. Its URLs must
// be http(s) and on the configuration's host or its test_endpoint: a
// configuration that sends the load to another host is refused (a run
// would flood a third party on someone else's say-so).
func (p *Prober) nqServer(ctx context.Context, sess *session, cfgURL string) (*st.Server, endpoints, error) {
	fail := func(err error) (*st.Server, endpoints, error) {
		return nil, endpoints{}, probe.Fail(ErrProtocol, fmt.Errorf("responsiveness configuration %s: %w", cfgURL, err))
	}
	base, _ := url.Parse(cfgURL) // validated by IsNQConfig
	pctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, cfgURL, nil)
	if err != nil {
		return fail(err)
	}
	resp, err := (&http.Client{Transport: sess, CheckRedirect: limitRedirects}).Do(req)
	sess.takeErr()
	var body []byte
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, maxNQConfig+1))
		_ = resp.Body.Close()
	}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil, endpoints{}, ctx.Err()
	case pctx.Err() != nil:
		return nil, endpoints{}, probe.Fail(probe.ErrNoReply, fmt.Errorf("GET %s: no complete answer within %s", cfgURL, preflightTimeout))
	default:
		return nil, endpoints{}, probe.Fail(classify(err), fmt.Errorf("GET %s: %w", cfgURL, err))
	}
	switch {
	case resp.StatusCode != http.StatusOK:
		return fail(fmt.Errorf("%s", resp.Status))
	case len(body) > maxNQConfig:
		return fail(fmt.Errorf("larger than %d bytes", maxNQConfig))
	}
	ep, err := parseNQConfig(body, base)
	if err != nil {
		return fail(err)
	}
	host := base.Host
	if base.Port() == "" {
		host = net.JoinHostPort(base.Hostname(), map[string]string{"http": "80", "https": "443"}[base.Scheme])
	}
	return &st.Server{ID: "nq", Name: base.Host, URL: cfgURL, Host: host}, ep, nil
}

// parseNQConfig reads a responsiveness configuration fetched from base
// (untrusted: FuzzNQConfig) and checks its URLs.
func parseNQConfig(body []byte, base *url.URL) (endpoints, error) {
	var doc struct {
		URLs         map[string]string `json:"urls"`
		TestEndpoint string            `json:"test_endpoint"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return endpoints{}, fmt.Errorf("not JSON: %w", err)
	}
	pick := func(keys ...string) string {
		for _, k := range keys {
			if v := doc.URLs[k]; v != "" {
				return v
			}
		}
		return ""
	}
	ep := endpoints{nq: true,
		small:    pick("small_download_url", "small_https_download_url"),
		download: pick("large_download_url", "large_https_download_url"),
		upload:   pick("upload_url", "https_upload_url")}
	for _, u := range []struct{ name, url string }{{"small download", ep.small}, {"large download", ep.download},
		{"upload", ep.upload}} {
		pu, err := url.Parse(u.url)
		switch {
		case u.url == "":
			return endpoints{}, fmt.Errorf("no %s URL", u.name)
		case err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "":
			return endpoints{}, fmt.Errorf("the %s URL %q is not an http(s) URL", u.name, u.url)
		case pu.Hostname() != base.Hostname() && pu.Hostname() != doc.TestEndpoint:
			return endpoints{}, fmt.Errorf("the %s URL %s points at another host than the configuration's (%s): refused",
				u.name, pu.Redacted(), base.Hostname())
		}
	}
	return ep, nil
}

// httpPing times n requests for url on a warm connection, interval apart:
// request written to first response byte, as speedtest-go's HTTP ping
// does for speedtest servers.
func httpPing(ctx context.Context, client *http.Client, url string, n int, interval time.Duration,
	sample func(time.Duration)) error {
	// A first request opens the connection: not a sample.
	if _, err := timedGet(ctx, client, url); err != nil {
		return err
	}
	var firstErr error
	for i := range n {
		if i > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(interval):
			}
		}
		rtt, err := timedGet(ctx, client, url)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		sample(rtt)
	}
	return firstErr
}

func timedGet(ctx context.Context, client *http.Client, url string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, loadedProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	rtt := time.Since(start)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxLatencyBody))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return rtt, nil
}
