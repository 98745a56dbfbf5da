package history

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/probe"
)

// dayOfResults fills a store with one day of 1-s ping results for one
// target (86,400 rows, written in batches of 1,000 as the Writer does) and
// returns the store, the target and the day's start.
func dayOfResults(b *testing.B) (*Store, *probe.Target, time.Time) {
	b.Helper()
	s := open(b, b.TempDir())
	b.Cleanup(func() { s.Close() })
	tg := newTarget("internet", "ping", "cloudflare-dns")
	day := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	// Each batch moves out of the log into the series' bucket, as the
	// writer's minutes do (without the roll-up: the reads below are of raw
	// results).
	write := func(batch []probe.Result) {
		if err := s.Put(batch); err != nil {
			b.Fatal(err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := s.moveLog(batch[len(batch)-1].Start.Add(time.Minute).UnixNano()); err != nil {
			b.Fatal(err)
		}
	}
	batch := make([]probe.Result, 0, 1000)
	for i := range 86400 {
		res := pingResult(tg, day.Add(time.Duration(i)*time.Second+time.Duration(i%977)*time.Microsecond), 0.010+float64(i%100)/1e5)
		batch = append(batch, res)
		if len(batch) == cap(batch) {
			write(batch)
			batch = batch[:0]
		}
	}
	write(batch)
	return s, tg, day
}

// BenchmarkHistoryDay measures the store's side of the API's history
// queries over a day of 1-s results: reading the rows (Results copies
// them, Each hands out one reused record) and the per-minute aggregate the
// status page charts. It also reports the store's size for that day. The
// same queries with their JSON encoding are internal/api's
// BenchmarkHistoryDayJSON.
func BenchmarkHistoryDay(b *testing.B) {
	s, tg, day := dayOfResults(b)
	b.Run("size", func(b *testing.B) {
		for b.Loop() {
		}
		used, _ := s.UsedBytes()
		b.ReportMetric(float64(s.FileBytes()), "file-bytes/target-day")
		b.ReportMetric(float64(used)/86400, "used-bytes/result")
	})
	b.Run("results-only", func(b *testing.B) {
		for b.Loop() {
			recs, _, err := s.Results(Query{Series: tg.Key, Since: day, Until: day.Add(24 * time.Hour), Limit: 100000})
			if err != nil || len(recs) != 86400 {
				b.Fatalf("%d records, %v", len(recs), err)
			}
		}
	})
	b.Run("each-only", func(b *testing.B) {
		for b.Loop() {
			n := 0
			_, err := s.Each(Query{Series: tg.Key, Since: day, Until: day.Add(24 * time.Hour), Limit: 100000}, func(*Record) bool {
				n++
				return true
			})
			if err != nil || n != 86400 {
				b.Fatalf("%d records, %v", n, err)
			}
		}
	})
	b.Run("aggregate-1m-only", func(b *testing.B) {
		for b.Loop() {
			buckets, err := s.Aggregate(tg.Key, day, day.Add(24*time.Hour), time.Minute)
			if err != nil || len(buckets) < 1440 || len(buckets) > 1441 { // minutes aligned to the epoch
				b.Fatalf("%d buckets, %v", len(buckets), err)
			}
		}
	})
}

// BenchmarkPut measures writing results in batches of 1,000 (one fsync each).
func BenchmarkPut(b *testing.B) {
	s := open(b, b.TempDir())
	defer s.Close()
	tg := newTarget("internet", "ping", "cloudflare-dns")
	start := time.Now()
	batch := make([]probe.Result, 1000)
	i := 0
	for b.Loop() {
		for j := range batch {
			batch[j] = pingResult(tg, start.Add(time.Duration(i)*time.Millisecond), 0.01)
			i++
		}
		if err := s.Put(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i), "ns/result")
}

// BenchmarkOpen measures what the damage check (checkPath, run by every
// Open) costs on a day of 1-s results, alone and within the whole Open.
func BenchmarkOpen(b *testing.B) {
	s, _, _ := dayOfResults(b)
	path, size := s.Path(), s.FileBytes()
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.Run("check", func(b *testing.B) {
		for b.Loop() {
			if err := checkPath(path); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(size)/1e6, "file-MB")
	})
	b.Run("open", func(b *testing.B) {
		for b.Loop() {
			st, err := Open(filepath.Dir(path))
			if err != nil {
				b.Fatal(err)
			}
			if _, damaged := st.Recovered(); damaged {
				b.Fatal("a healthy file was judged damaged")
			}
			_ = st.Close()
		}
	})
}
