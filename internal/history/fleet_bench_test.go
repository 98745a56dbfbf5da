package history

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/netpulse/netpulse/internal/probe"
)

// fleetRetention is the default storage block: raw results 48 h, minute
// summaries 7 days, hour summaries 30 days.
var fleetRetention = Retention{MaxAge: 30 * 24 * time.Hour, RawMaxAge: 48 * time.Hour, MinuteMaxAge: 7 * 24 * time.Hour,
	LongMaxAge: 365 * 24 * time.Hour, LongTypes: []string{"speedtest"}, MaxBytes: 1 << 50}

// fleetPing is a 1-s ping run of count 1, as a fleet configures it
// (every value the ping type reports; every 50th run lost).
func fleetPing(tg *probe.Target, start time.Time, i int) probe.Result {
	rtt := 0.002 + 0.018*math.Abs(math.Sin(float64(i)/977)) + float64(i%13)*1e-5
	res := probe.Result{Target: tg, Start: start, Duration: time.Duration(rtt * 1e9), Outcome: probe.OutcomeSuccess,
		RunID: probe.NewRunID(tg, start), Values: probe.Values{"packets_sent": 1, "packets_received": 1,
			"packets_duplicate": 0, "loss_ratio": 0, "rtt_min_seconds": rtt, "rtt_avg_seconds": rtt, "rtt_max_seconds": rtt,
			"rtt_stddev_seconds": 0, "jitter_seconds": 0, "rtt_p10_seconds": rtt, "rtt_p25_seconds": rtt,
			"rtt_median_seconds": rtt, "rtt_p75_seconds": rtt, "rtt_p90_seconds": rtt}}
	if i%50 == 0 {
		res.Outcome, res.ErrorType, res.Duration = probe.OutcomeFailure, probe.ErrNoReply, time.Second
		res.Values = probe.Values{"packets_sent": 1, "packets_received": 0, "packets_duplicate": 0, "loss_ratio": 1}
	}
	return res
}

// fleetMonth writes days of 1-s ping results for n targets into a new
// store, compressed in time: a simulated hour of every target at a time,
// each hour rolled up and, every six hours, trimmed by fleetRetention, as
// the writer does as time passes. It returns the store (fsync off while
// writing: a benchmark's disk is not the point), the targets and the
// simulated now.
func fleetMonth(b *testing.B, n, days int) (*Store, []*probe.Target, time.Time) {
	b.Helper()
	s := open(b, b.TempDir())
	b.Cleanup(func() { s.Close() })
	s.SetSpecs(pingSpec)
	s.db.NoSync = true
	defer func() { s.db.NoSync = false }()
	tgs := make([]*probe.Target, n)
	for i := range tgs {
		tgs[i] = newTarget("fleet", "ping", fmt.Sprintf("host-%04d", i))
	}
	t0 := time.Now().Add(-time.Duration(days) * 24 * time.Hour).Truncate(time.Hour)
	batch := make([]probe.Result, 0, 1000)
	for h := range days * 24 {
		for j, tg := range tgs {
			for sec := range 3600 {
				i := h*3600 + sec
				// Targets start at spread offsets within the second.
				batch = append(batch, fleetPing(tg, t0.Add(time.Duration(i)*time.Second+time.Duration(j)*time.Millisecond), i+j))
				if len(batch) == cap(batch) {
					if err := s.Put(batch); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
		}
		now := t0.Add(time.Duration(h+1) * time.Hour)
		if err := s.Put(batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
		if h%6 == 5 {
			if _, err := s.Trim(now.Add(RollupLag+time.Second), fleetRetention); err != nil {
				b.Fatal(err)
			}
		} else if _, err := s.Rollup(now.Add(RollupLag + time.Second)); err != nil {
			b.Fatal(err)
		}
	}
	now := t0.Add(time.Duration(days) * 24 * time.Hour)
	if _, err := s.Trim(now.Add(RollupLag+time.Second), fleetRetention); err != nil {
		b.Fatal(err)
	}
	return s, tgs, now
}

// levelBytes is the space each level's pages take (leaf and branch
// pages, in use and free within them).
func levelBytes(b *testing.B, s *Store) (out [3]int64, keys [3]int) {
	err := s.db.View(func(tx *bolt.Tx) error {
		for l := levelRaw; l <= levelHour; l++ {
			st := tx.Bucket(l.root()).Stats()
			out[l] = int64(st.LeafAlloc + st.BranchAlloc)
			keys[l] = st.KeyN
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return out, keys
}

// BenchmarkFleetMonth writes 30 days of 1-s ping results (count 1) for a
// few targets (NETPULSE_BENCH_FLEET_TARGETS, default 2) with the default
// retention, compressed in time, then reports the file's size per target
// and per level, extrapolated to 1,000 targets, and times the status
// page's 30-day view of one target (a 3-h step: hour summaries) and a
// 7-day view (a 42-min step: minute summaries) in the store.
//
// Run: go test ./internal/history -run '^$' -bench FleetMonth -benchtime 20x
func BenchmarkFleetMonth(b *testing.B) {
	n := 2
	if v, err := strconv.Atoi(os.Getenv("NETPULSE_BENCH_FLEET_TARGETS")); err == nil && v > 0 {
		n = v
	}
	const days = 30
	s, tgs, now := fleetMonth(b, n, days)
	bytes, keys := levelBytes(b, s)
	used, _ := s.UsedBytes()
	b.Run("size", func(b *testing.B) {
		for b.Loop() {
		}
		per := func(v int64) float64 { return float64(v) / float64(n) }
		b.ReportMetric(per(bytes[levelRaw])/1e6, "raw-MB/target")
		b.ReportMetric(per(bytes[levelMinute])/1e6, "minute-MB/target")
		b.ReportMetric(per(bytes[levelHour])/1e6, "hour-MB/target")
		b.ReportMetric(float64(bytes[levelMinute])/float64(keys[levelMinute]), "bytes/minute-summary")
		b.ReportMetric(float64(bytes[levelHour])/float64(keys[levelHour]), "bytes/hour-summary")
		b.ReportMetric(per(used)*1000/1e9, "GB-used/1000-targets")
		b.ReportMetric(per(bytes[levelMinute]+bytes[levelHour])*1000/1e9, "GB-rollups/1000-targets")
	})
	for _, v := range []struct {
		name string
		span time.Duration
		step time.Duration
	}{{"view-30d", 30 * 24 * time.Hour, 3 * time.Hour}, {"view-7d", 7 * 24 * time.Hour, 42 * time.Minute},
		{"view-24h", 24 * time.Hour, 6 * time.Minute}} {
		b.Run(v.name, func(b *testing.B) {
			runs := 0
			for b.Loop() {
				buckets, err := s.Aggregate(tgs[0].Key, now.Add(-v.span), now, v.step)
				if err != nil || len(buckets) < int(v.span/v.step) {
					b.Fatalf("%d buckets, %v", len(buckets), err)
				}
				runs = 0
				for _, bk := range buckets {
					runs += bk.Runs
				}
			}
			if want := int(v.span / time.Second); runs < want-3600 || runs > want {
				b.Fatalf("%d runs in the view, want about %d", runs, want)
			}
		})
	}
}
