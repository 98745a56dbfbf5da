package speedtestserver

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
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

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "netpulse test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// With a certificate, the same port serves HTTPS with HTTP/2 (what RPM
// clients insist on), whose /.well-known/nq names https:// URLs, next to
// plain HTTP for speedtest-go and netpulse.
func TestTLSOnTheSamePort(t *testing.T) {
	cert, pool := selfSigned(t)
	s := start(t, Options{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	base := "https://" + s.Addr().String()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	resp, err := c.Get(base + NQConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg NQConfig
	err = json.NewDecoder(resp.Body).Decode(&cfg)
	resp.Body.Close()
	if err != nil || resp.ProtoMajor != 2 {
		t.Fatalf("config over %s: %v", resp.Proto, err)
	}
	if got := cfg.URLs["large_https_download_url"]; got != base+"/api/v1/large" {
		t.Errorf("large URL %q, want %s/api/v1/large", got, base)
	}
	resp, err = c.Get(cfg.URLs["large_https_download_url"])
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.CopyN(io.Discard, resp.Body, 4<<20)
	resp.Body.Close()
	if err != nil || resp.ProtoMajor != 2 {
		t.Errorf("large download over %s: %d bytes, %v", resp.Proto, n, err)
	}
	resp, err = c.Post(cfg.URLs["https_upload_url"], "application/octet-stream", bytes.NewReader(make([]byte, 3<<20)))
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(answer), "size=3145728") {
		t.Errorf("upload over %s: %s %q", resp.Proto, resp.Status, answer)
	}

	resp, err = http.Get(s.URL() + "/speedtest/latency.txt")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("plain HTTP next to HTTPS: %s", resp.Status)
	}
}
