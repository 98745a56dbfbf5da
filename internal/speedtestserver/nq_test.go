package speedtestserver

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// /.well-known/nq lists the responsiveness test's URLs under both key
// sets, pointing at the host it was asked with, and each URL works: a tiny
// body, a large one that streams as long as the client reads, and an
// upload without a size limit.
func TestNQEndpoints(t *testing.T) {
	s := start(t, Options{MaxUploadBytes: 1 << 20})
	c := &http.Client{}
	resp, err := c.Get(s.URL() + NQConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg NQConfig
	err = json.NewDecoder(resp.Body).Decode(&cfg)
	resp.Body.Close()
	if err != nil || cfg.Version != 1 {
		t.Fatalf("config: %v, %+v", err, cfg)
	}
	for _, k := range []string{"small", "large"} {
		if cfg.URLs[k+"_download_url"] != s.URL()+"/api/v1/"+k || cfg.URLs[k+"_https_download_url"] != s.URL()+"/api/v1/"+k {
			t.Errorf("%s URLs: %v", k, cfg.URLs)
		}
	}

	resp, err = c.Get(cfg.URLs["small_download_url"])
	if err != nil {
		t.Fatal(err)
	}
	small, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(small) != 1 {
		t.Errorf("small: %s, %d bytes", resp.Status, len(small))
	}

	resp, err = c.Get(cfg.URLs["large_download_url"])
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.CopyN(io.Discard, resp.Body, 20<<20)
	resp.Body.Close()
	if err != nil || resp.ContentLength != NQLargeBytes {
		t.Errorf("large: read %d bytes (%v), length %d", n, err, resp.ContentLength)
	}

	// Larger than MaxUploadBytes, which bounds upload.php only.
	body := bytes.Repeat([]byte{1}, 5<<20)
	resp, err = c.Post(cfg.URLs["upload_url"], "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(answer), "size=5242880") {
		t.Errorf("upload: %s %q", resp.Status, answer)
	}
}
