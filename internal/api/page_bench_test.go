package api

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/history"
	"github.com/netpulse/netpulse/internal/probe"
)

// BenchmarkTargetPage30d measures the API time of the status page's
// 30-day view of one target (budget: 200 ms): 30 days of ping results
// every 30 s (86,400 rows, with the percentiles), and the requests the
// page makes for it: the chart's aggregate (300 buckets, the values it
// draws), the 30-day uptime and the last 60 runs.
func BenchmarkTargetPage30d(b *testing.B) {
	s, err := history.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	p := config.Probe{Name: "internet", Type: "ping", Interval: 30 * time.Second, Timeout: 10 * time.Second,
		Targets: []config.Target{{Name: "cloudflare-dns", Host: "1.1.1.1"}}}
	tg := probe.NewTarget(p, p.Targets[0])
	end := time.Now().Truncate(time.Minute)
	batch := make([]probe.Result, 0, 1000)
	for i := range 86400 {
		st := end.Add(-time.Duration(86400-i) * 30 * time.Second)
		rtt := 0.010 + float64(i%100)/1e5
		batch = append(batch, probe.Result{Target: tg, Start: st, Duration: 2500 * time.Millisecond,
			Outcome: probe.OutcomeSuccess, RunID: probe.NewRunID(tg, st),
			Values: probe.Values{"packets_sent": 10, "packets_received": 10, "packets_duplicate": 0, "loss_ratio": 0,
				"rtt_min_seconds": rtt * 0.9, "rtt_avg_seconds": rtt, "rtt_max_seconds": rtt * 1.2, "rtt_stddev_seconds": rtt * 0.05,
				"jitter_seconds": rtt * 0.03, "rtt_p10_seconds": rtt * 0.92, "rtt_p25_seconds": rtt * 0.96, "rtt_median_seconds": rtt,
				"rtt_p75_seconds": rtt * 1.04, "rtt_p90_seconds": rtt * 1.1}})
		if len(batch) == cap(batch) {
			if err := s.Put(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := s.Put(batch); err != nil {
		b.Fatal(err)
	}
	a := New(Options{Probes: []config.Probe{p}, Targets: []*probe.Target{tg}, Store: s, Feed: NewFeed(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	base := "/api/v1/probes/internet/targets/cloudflare-dns/"
	chart := base + "aggregate?since=2592000s&step=8640s&values=rtt_min_seconds,rtt_max_seconds,loss_ratio,rtt_p10_seconds," +
		"rtt_p25_seconds,rtt_median_seconds,rtt_p75_seconds,rtt_p90_seconds"
	runs := base + "results?since=720h&order=desc&limit=60"
	// The 30-day view takes its 30-day uptime from the chart's buckets; the
	// page's other views ask for it (uptime-30d).
	for _, bc := range []struct {
		name string
		urls []string
	}{{"view-30d", []string{chart, runs}}, {"uptime-30d", []string{base + "aggregate?since=720h&step=86400s&values=_"}}} {
		b.Run(bc.name, func(b *testing.B) {
			var size int
			for b.Loop() {
				size = 0
				for _, u := range bc.urls {
					rec := httptest.NewRecorder()
					a.ServeHTTP(rec, httptest.NewRequest("GET", u, nil))
					if rec.Code != 200 {
						b.Fatalf("%s: %d %s", u, rec.Code, rec.Body.String())
					}
					size += rec.Body.Len()
				}
			}
			b.ReportMetric(float64(size), "response-bytes")
		})
	}
}
