package dns

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	promconfig "github.com/prometheus/common/config"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe"
)

// BenchmarkProbe measures one run (dial, question, answer, checks,
// metrics, spans) against the in-process server on loopback, per transport:
// the cost of a DNS probe to the agent, server time included.
func BenchmarkProbe(b *testing.B) {
	for _, transport := range []string{TransportUDP, TransportTCP, TransportTLS} {
		b.Run(transport, func(b *testing.B) {
			cfg := testConfig("ok.test", "A")
			cfg.Transport = transport
			cfg.Answers.MustMatch = []string{`^192\.0\.2\.1$`}
			srv := &testServer{}
			if transport == TransportTLS {
				ca := newTestCA(b)
				srv.tlsConfig = &tls.Config{Certificates: []tls.Certificate{ca.Server}}
				cfg.TLS = promconfig.TLSConfig{CAFile: ca.CAFile}
			}
			startServer(b, srv)
			p, _ := newTestProber(b, cfg)
			target := probe.NewTarget(config.Probe{Name: "dns", Type: TypeName}, config.Target{Name: "s", Host: srv.addr})
			var lookup float64
			b.ReportAllocs()
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				v, err := p.Probe(ctx, target)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				lookup += v["lookup_seconds"]
			}
			b.ReportMetric(lookup/float64(b.N)*1e6, "lookup-µs/op")
		})
	}
}
