package dns

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	miekg "github.com/miekg/dns"
)

// testZone is what the in-process server answers, by name: the record
// (in zone-file syntax after "name TTL IN") of each query type.
var testZone = map[string]string{
	"A":     "A 192.0.2.1",
	"AAAA":  "AAAA 2001:db8::1",
	"CNAME": "CNAME target.test.",
	"MX":    "MX 10 mail.test.",
	"TXT":   `TXT "v=spf1 -all"`,
	"NS":    "NS ns1.test.",
	"SOA":   "SOA ns1.test. admin.test. 2026112701 3600 600 86400 60",
	"SRV":   "SRV 10 5 5060 sip.test.",
	"PTR":   "PTR host.test.",
}

// testServer is a miekg/dns server on loopback, UDP and TCP on one port,
// answering by the question's first label:
//
//	ok           the record of testZone for the query type, authoritative
//	nonauth      the same, without the AA flag
//	nx           NXDOMAIN
//	fail         SERVFAIL
//	big          over UDP a truncated empty answer; over TCP three A records
//	alwaystc     truncated over TCP too
//	slow         the answer after delay
//	hang         no answer until the test ends
type testServer struct {
	addr      string
	delay     time.Duration
	udp, tcp  atomic.Int64 // queries received per transport
	client    atomic.Value // the address of the last query's client (string)
	release   chan struct{}
	tlsConfig *tls.Config // set: serve DNS over TLS (TCP only) instead
}

func (s *testServer) ServeDNS(w miekg.ResponseWriter, q *miekg.Msg) {
	overTCP := w.RemoteAddr().Network() == "tcp"
	host, _, _ := net.SplitHostPort(w.RemoteAddr().String())
	s.client.Store(host)
	if overTCP {
		s.tcp.Add(1)
	} else {
		s.udp.Add(1)
	}
	r := new(miekg.Msg)
	r.SetReply(q)
	question := q.Question[0]
	label := strings.SplitN(question.Name, ".", 2)[0]
	typ := miekg.TypeToString[question.Qtype]
	add := func(rr string) {
		record, err := miekg.NewRR(question.Name + " 60 IN " + rr)
		if err != nil {
			panic(err)
		}
		r.Answer = append(r.Answer, record)
	}
	switch label {
	case "ok", "nonauth", "slow":
		r.Authoritative = label != "nonauth"
		add(testZone[typ])
	case "nx":
		r.Rcode = miekg.RcodeNameError
	case "fail":
		r.Rcode = miekg.RcodeServerFailure
	case "big":
		if !overTCP {
			r.Truncated = true
			break
		}
		for i := 1; i <= 3; i++ {
			add(fmt.Sprintf("A 192.0.2.%d", i))
		}
	case "alwaystc":
		r.Truncated = true
	case "hang":
		<-s.release
		return
	}
	if label == "slow" {
		select {
		case <-time.After(s.delay): // the slow server under test, not synchronisation
		case <-s.release:
		}
	}
	_ = w.WriteMsg(r)
}

// startServer serves s on a loopback port the kernel chose, over UDP and
// TCP (or TLS alone), until the test ends.
func startServer(t testing.TB, s *testServer) *testServer {
	t.Helper()
	s.release = make(chan struct{})
	var servers []*miekg.Server
	t.Cleanup(func() {
		close(s.release)
		for _, srv := range servers {
			_ = srv.Shutdown()
		}
	})
	if s.tlsConfig != nil {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", s.tlsConfig)
		if err != nil {
			t.Fatal(err)
		}
		s.addr = ln.Addr().String()
		servers = append(servers, serve(&miekg.Server{Listener: ln, Net: "tcp-tls", Handler: s}))
		return s
	}
	// The same port for UDP and TCP: taken from the kernel for UDP, then
	// tried for TCP (another process may hold it: try again).
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			continue
		}
		s.addr = pc.LocalAddr().String()
		servers = append(servers, serve(&miekg.Server{PacketConn: pc, Handler: s}),
			serve(&miekg.Server{Listener: ln, Handler: s}))
		return s
	}
	t.Fatal("no loopback port free for both UDP and TCP")
	return nil
}

func serve(srv *miekg.Server) *miekg.Server {
	go func() { _ = srv.ActivateAndServe() }()
	return srv
}

// testCA is a certificate authority of the test's own and a server
// certificate it signed for 127.0.0.1 and dot.test; CAFile holds the CA.
type testCA struct {
	CAFile string
	Server tls.Certificate
}

func newTestCA(t testing.TB) testCA {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "netpulse test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "dot.test"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), DNSNames: []string{"dot.test"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return testCA{CAFile: file, Server: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
}
