package api

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/history"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/testutil"
)

// dayStore opens a store in a temporary directory and writes a day of 1-s
// ping results (86,400) for one target, in batches of 1,000 as the
// Writer does; at gives the i-th result's start and trace id.
func dayStore(b *testing.B, at func(i int) (time.Time, trace.TraceID)) (*history.Store, config.Probe, *probe.Target) {
	b.Helper()
	s, err := history.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	p := config.Probe{Name: "internet", Type: "ping", Interval: time.Second, Timeout: time.Second,
		Targets: []config.Target{{Name: "cloudflare-dns", Host: "1.1.1.1"}}}
	tg := probe.NewTarget(p, p.Targets[0])
	batch := make([]probe.Result, 0, 1000)
	for i := range 86400 {
		st, tid := at(i)
		rtt := 0.010 + float64(i%100)/1e5
		batch = append(batch, probe.Result{Target: tg, Start: st, Duration: 2500 * time.Millisecond,
			Outcome: probe.OutcomeSuccess, RunID: probe.NewRunID(tg, st), TraceID: tid,
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
	if err := s.Put(batch); err != nil {
		b.Fatal(err)
	}
	return s, p, tg
}

// BenchmarkHistoryQueryDay measures the API's answer to a history query
// over a day of 1-s ping results (86,400 rows), through the handler: the
// raw results (JSON, ~30 MB) and the per-minute aggregate a chart uses.
func BenchmarkHistoryQueryDay(b *testing.B) {
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-24 * time.Hour)
	s, p, tg := dayStore(b, func(i int) (time.Time, trace.TraceID) {
		return start.Add(time.Duration(i) * time.Second), trace.TraceID{1, byte(i)}
	})
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

// BenchmarkHistoryDayJSON measures the store's queries over a day of 1-s
// results together with the API's encoding of them, without the handler:
// every row copied then encoded (results-json), each row converted and
// encoded as the store hands it out (each-json, what the results handler
// does), the per-minute aggregate (aggregate-1m-json) and the last hour's
// rows (last-hour-json). (Until the wire types moved to this package these
// were internal/history's BenchmarkHistoryDay, on the same data.)
func BenchmarkHistoryDayJSON(b *testing.B) {
	day := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	s, _, tg := dayStore(b, func(i int) (time.Time, trace.TraceID) {
		st := day.Add(time.Duration(i)*time.Second + time.Duration(i%977)*time.Microsecond)
		return st, trace.TraceID{1, 2, 3, byte(st.Unix())}
	})
	encodeAll := func(recs []history.Record) []byte {
		buf := []byte{'['}
		for i := range recs {
			if i > 0 {
				buf = append(buf, ',')
			}
			r := fromRecord(&recs[i])
			buf = r.appendJSON(buf)
		}
		return append(buf, ']')
	}
	query := func(since time.Time) history.Query {
		return history.Query{Series: tg.Key, Since: since, Until: day.Add(24 * time.Hour), Limit: 100000}
	}
	b.Run("results-json", func(b *testing.B) {
		for b.Loop() {
			recs, _, err := s.Results(query(day))
			if err != nil || len(recs) != 86400 {
				b.Fatalf("%d records, %v", len(recs), err)
			}
			if _, err := io.Discard.Write(encodeAll(recs)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("each-json", func(b *testing.B) {
		for b.Loop() {
			buf := make([]byte, 0, 1<<20)
			n := 0
			_, err := s.Each(query(day), func(rec *history.Record) bool {
				r := fromRecord(rec)
				buf = r.appendJSON(buf)
				n++
				return true
			})
			if err != nil || n != 86400 {
				b.Fatalf("%d records, %v", n, err)
			}
		}
	})
	b.Run("aggregate-1m-json", func(b *testing.B) {
		for b.Loop() {
			buckets, err := s.Aggregate(tg.Key, day, day.Add(24*time.Hour), time.Minute)
			if err != nil || len(buckets) < 1440 || len(buckets) > 1441 { // minutes aligned to the epoch
				b.Fatalf("%d buckets, %v", len(buckets), err)
			}
			if _, err := io.Discard.Write(appendAggregate(nil, fromBuckets(buckets, nil), day, day.Add(24*time.Hour), time.Minute)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("last-hour-json", func(b *testing.B) {
		for b.Loop() {
			recs, _, err := s.Results(query(day.Add(23 * time.Hour)))
			if err != nil || len(recs) != 3600 {
				b.Fatalf("%d records, %v", len(recs), err)
			}
			if _, err := io.Discard.Write(encodeAll(recs)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStatusPageViews measures the status page's history views of one
// ping target through the handler, on a store as the default retention
// leaves it after 30 days: 1-s results for the last 48 h (raw), minute
// summaries for 7 days and hour summaries for 30. (Runs older than 48 h
// are written one a minute, which changes what the summaries say, not
// how many are read.) The page asks for about 240 points: a 3-h step
// over 30 days reads hour summaries, 42 min over 7 days and 6 min over a
// day minute summaries, 15 s over an hour raw results.
func BenchmarkStatusPageViews(b *testing.B) {
	s, err := history.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	s.SetSpecs(map[string]history.Spec{"ping": {Distribution: "rtt_avg_seconds",
		Values: []string{"rtt_min_seconds", "rtt_max_seconds", "jitter_seconds", "loss_ratio", "packets_sent", "packets_received"}}})
	p := config.Probe{Name: "internet", Type: "ping", Interval: time.Second, Timeout: time.Second,
		Targets: []config.Target{{Name: "cloudflare-dns", Host: "1.1.1.1"}}}
	tg := probe.NewTarget(p, p.Targets[0])
	end := time.Now().Truncate(time.Minute)
	start, rawFrom := end.Add(-30*24*time.Hour), end.Add(-48*time.Hour)
	batch := make([]probe.Result, 0, 1000)
	put := func() {
		if err := s.Put(batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for i, st := 0, start; st.Before(end); i++ {
		rtt := 0.010 + float64(i%100)/1e5
		batch = append(batch, probe.Result{Target: tg, Start: st, Duration: 20 * time.Millisecond,
			Outcome: probe.OutcomeSuccess, RunID: probe.NewRunID(tg, st),
			Values: probe.Values{"packets_sent": 1, "packets_received": 1, "packets_duplicate": 0, "loss_ratio": 0,
				"rtt_min_seconds": rtt, "rtt_avg_seconds": rtt, "rtt_max_seconds": rtt,
				"rtt_stddev_seconds": 0, "jitter_seconds": 0}})
		if len(batch) == cap(batch) {
			put()
		}
		if st.Before(rawFrom) {
			st = st.Add(time.Minute)
		} else {
			st = st.Add(time.Second)
		}
	}
	put()
	if _, err := s.Trim(end, history.Retention{MaxAge: 30 * 24 * time.Hour, RawMaxAge: 48 * time.Hour,
		MinuteMaxAge: 7 * 24 * time.Hour, MaxBytes: 1 << 40}); err != nil {
		b.Fatal(err)
	}
	a := New(Options{Probes: []config.Probe{p}, Targets: []*probe.Target{tg}, Store: s, Feed: NewFeed(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for _, v := range []struct {
		name       string
		span, step time.Duration
	}{{"30d", 30 * 24 * time.Hour, 3 * time.Hour}, {"7d", 7 * 24 * time.Hour, 42 * time.Minute},
		{"24h", 24 * time.Hour, 6 * time.Minute}, {"1h", time.Hour, 15 * time.Second}} {
		url := "/api/v1/probes/internet/targets/cloudflare-dns/aggregate?values=rtt_avg_seconds,loss_ratio&step=" +
			v.step.String() + "&since=" + end.Add(-v.span).UTC().Format(time.RFC3339) + "&until=" + end.UTC().Format(time.RFC3339)
		b.Run(v.name, func(b *testing.B) {
			var size int
			for b.Loop() {
				rec := httptest.NewRecorder()
				a.ServeHTTP(rec, httptest.NewRequest("GET", url, nil))
				if rec.Code != 200 {
					b.Fatalf("status %d: %s", rec.Code, rec.Body.String()[:min(rec.Body.Len(), 300)])
				}
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size), "response-bytes")
		})
	}
}

// TestBenchScriptParses: bench/api-read.sh (history readers against this
// handler; run by hand) is valid bash; bench/cmd/apiread, which it runs,
// is built by go vet ./....
func TestBenchScriptParses(t *testing.T) {
	script := filepath.Join(testutil.ModuleRoot(t), "bench", "api-read.sh")
	if out, err := exec.Command("bash", "-n", script).CombinedOutput(); err != nil {
		t.Errorf("bash -n %s: %v\n%s", script, err, out)
	}
}
