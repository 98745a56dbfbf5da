package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/netpulse/netpulse/internal/probe/tlsinfo/tlstest"
)

// --web.config.file puts /metrics, the API and the page behind TLS and
// basic auth, read by exporter-toolkit as Prometheus' exporters read it:
// a real TLS client that trusts the CA and sends the password gets every
// endpoint; without the password, or over plain HTTP, it gets none.
func TestWebConfigTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t)
	certFile, keyFile := writeKeyPair(t, dir, ca.Issue(t, time.Now().Add(time.Hour), "127.0.0.1"))
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	writeFile(t, webConfig, fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  admin: %s\n",
		certFile, keyFile, hash))
	if err := ValidateWebConfig(webConfig); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "netpulse_test_up"}))
	s, err := Listen("127.0.0.1:0", Options{
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Gatherer: reg, WebConfigFile: webConfig,
		API:  http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, `{"api":true}`) }),
		Page: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "status page") }),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, time.Second) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	base := "https://" + s.Addr().String()

	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(path, user, pass string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for path, want := range map[string]string{"/metrics": "netpulse_test_up", "/api/v1/": `"api"`, "/": "status page"} {
		if code, body := get(path, "admin", "s3cret"); code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s with the password: %d %q, want 200 with %q", path, code, body, want)
		}
		if code, _ := get(path, "", ""); code != http.StatusUnauthorized {
			t.Errorf("GET %s without a password: %d, want 401", path, code)
		}
		if code, _ := get(path, "admin", "wrong"); code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong password: %d, want 401", path, code)
		}
	}
	// Plain HTTP gets no answer from a TLS listener but a 400.
	resp, err := http.Get("http://" + s.Addr().String() + "/metrics")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP was served")
		}
	}
}

// A web configuration that cannot work stops the agent at start with the
// file's name and the reason.
func TestValidateWebConfig(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"missing-key.yml": "tls_server_config:\n  cert_file: /nonexistent/cert.pem\n",
		"bad-yaml.yml":    "tls_server_config: [\n",
		"unknown-key.yml": "tls_server_confg: {}\n",
	} {
		file := filepath.Join(dir, name)
		writeFile(t, file, body)
		err := ValidateWebConfig(file)
		if err == nil || !strings.Contains(err.Error(), "--web.config.file "+file) {
			t.Errorf("%s: %v; want an error naming --web.config.file and the file", name, err)
		}
	}
	if err := ValidateWebConfig(filepath.Join(dir, "absent.yml")); err == nil {
		t.Error("a missing file validates")
	}
	if err := ValidateWebConfig(""); err != nil {
		t.Errorf("no web config: %v", err)
	}
}

func writeKeyPair(t *testing.T, dir string, c tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	var chain []byte
	for _, der := range c.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certFile, string(chain))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})))
	return certFile, keyFile
}

func writeFile(t *testing.T, name, body string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}
