package api

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/history"
	"github.com/netpulse/netpulse/internal/probe"
)

// BenchmarkHistoryQueryDay measures the API's answer to a history query
// over a day of 1-s ping results (86,400 rows), through the handler: the
// raw results (JSON, ~30 MB) and the per-minute aggregate a chart uses.
func BenchmarkHistoryQueryDay(b *testing.B) {
	dir := b.TempDir()
	s, err := history.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	p := config.Probe{Name: "internet", Type: "ping", Interval: time.Second, Timeout: time.Second,
		Targets: []config.Target{{Name: "cloudflare-dns", Host: "1.1.1.1"}}}
	tg := probe.NewTarget(p, p.Targets[0])
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-24 * time.Hour)
	batch := make([]probe.Result, 0, 1000)
	for i := range 86400 {
		st := start.Add(time.Duration(i) * time.Second)
		rtt := 0.010 + float64(i%100)/1e5
		batch = append(batch, probe.Result{Target: tg, Start: st, Duration: 2500 * time.Millisecond,
			Outcome: probe.OutcomeSuccess, RunID: probe.NewRunID(tg, st), TraceID: trace.TraceID{1, byte(i)},
			Values: probe.Values{"packets_sent": 10, "packets_received": 10, "packets_duplicate": 0, "loss_ratio": 0,
				"rtt_min_seconds": rtt * 0.9, "rtt_avg_seconds": rtt, "rtt_max_seconds": rtt * 1.2,
				"rtt_stddev_seconds": rtt * 0.05, "jitter_seconds": rtt * 0.03}})
		if len(batch) == cap(batch) {
			if err := s.Put(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	a := New(Options{Probes: []config.Probe{p}, Targets: []*probe.Target{tg}, Store: s, Feed: NewFeed(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	window := "since=" + start.UTC().Format(time.RFC3339) + "&until=" + end.UTC().Format(time.RFC3339)
	for _, bc := range []struct{ name, url string }{
		{"results", "/api/v1/probes/internet/targets/cloudflare-dns/results?limit=100000&" + window},
		{"aggregate-1m", "/api/v1/probes/internet/targets/cloudflare-dns/aggregate?step=1m&" + window},
		{"aggregate-1m-2values", "/api/v1/probes/internet/targets/cloudflare-dns/aggregate?step=1m&values=rtt_avg_seconds,loss_ratio&" + window},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var size int
			for b.Loop() {
				rec := httptest.NewRecorder()
				a.ServeHTTP(rec, httptest.NewRequest("GET", bc.url, nil))
				if rec.Code != 200 {
					b.Fatalf("status %d: %s", rec.Code, rec.Body.String()[:min(rec.Body.Len(), 300)])
				}
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size), "response-bytes")
		})
	}
}
