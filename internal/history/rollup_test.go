package history

import (
	"context"
	"io"
	"log/slog"
	"math"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/testutil"
)

// pingSpec is what the agent asks roll-ups to keep of ping results.
var pingSpec = map[string]Spec{"ping": {Distribution: "rtt_avg_seconds",
	Values: []string{"rtt_min_seconds", "rtt_max_seconds", "jitter_seconds", "loss_ratio", "packets_sent", "packets_received"}}}

// hoursOfResults writes hours of 1-s ping results starting at t0: RTTs
// spread over two decades, every 17th run failed. It returns the RTTs of
// the successful runs by hour, to check quantiles against.
func hoursOfResults(t testing.TB, s *Store, tg *probe.Target, t0 time.Time, hours int) map[int64][]float64 {
	t.Helper()
	byHour := map[int64][]float64{}
	var batch []probe.Result
	for i := range hours * 3600 {
		start := t0.Add(time.Duration(i)*time.Second + 1234*time.Microsecond)
		rtt := 0.0005 * math.Pow(100, float64((i*7919)%1000)/1000) // 0.5 ms to 50 ms
		res := pingResult(tg, start, rtt)
		if i%17 == 0 {
			res.Outcome, res.ErrorType = probe.OutcomeFailure, probe.ErrNoReply
			res.Values = probe.Values{"loss_ratio": 1, "packets_sent": 10, "packets_received": 0}
		} else {
			h := start.Truncate(time.Hour).UnixNano()
			byHour[h] = append(byHour[h], rtt)
		}
		batch = append(batch, res)
		if len(batch) == 1000 {
			if err := s.Put(batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := s.Put(batch); err != nil {
		t.Fatal(err)
	}
	return byHour
}

func near(a, b, rel float64) bool {
	return math.Abs(a-b) <= rel*math.Max(math.Abs(a), math.Abs(b))+1e-12
}

// exactQuantile is the nearest-rank quantile quantiles() approximates.
func exactQuantile(sorted []float64, p float64) float64 {
	return sorted[int(math.Round(p*float64(len(sorted)-1)))]
}

func TestRollupKeepsCountsValuesAndDistribution(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	s.SetSpecs(pingSpec)
	tg := newTarget("wan", "ping", "gw")
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	rtts := hoursOfResults(t, s, tg, t0, 3)
	end := t0.Add(3 * time.Hour)
	// The same aggregate from raw results (a 30 s step reads them) and
	// from hour summaries, before and after the roll-up.
	raw, err := s.Aggregate(tg.Key, t0, end, time.Hour+30*time.Second)
	if err != nil || len(raw) == 0 {
		t.Fatal(len(raw), err)
	}
	for more := true; more; {
		if more, err = s.Rollup(end.Add(2 * time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	hours, err := s.Aggregate(tg.Key, t0, end, time.Hour)
	if err != nil || len(hours) != 3 {
		t.Fatalf("%d hour buckets, %v", len(hours), err)
	}
	minutes, err := s.Aggregate(tg.Key, t0, end, 20*time.Minute)
	if err != nil || len(minutes) != 9 {
		t.Fatalf("%d 20-min buckets, %v", len(minutes), err)
	}
	for i, b := range hours {
		wantFail := 0
		for j := i * 3600; j < (i+1)*3600; j++ {
			if j%17 == 0 {
				wantFail++
			}
		}
		if b.Runs != 3600 || b.Failures != wantFail {
			t.Errorf("hour %d: %d runs, %d failures; want 3600, %d", i, b.Runs, b.Failures, wantFail)
		}
		sorted := slices.Clone(rtts[b.Start.UnixNano()])
		slices.Sort(sorted)
		st := b.Values["rtt_avg_seconds"]
		mean := 0.0
		for _, v := range sorted {
			mean += v
		}
		mean /= float64(len(sorted))
		if !near(st.Min, sorted[0], 1e-6) || !near(st.Max, sorted[len(sorted)-1], 1e-6) || !near(st.Avg, mean, 1e-6) {
			t.Errorf("hour %d: rtt min/avg/max %v %v %v, want %v %v %v", i, st.Min, st.Avg, st.Max, sorted[0], mean, sorted[len(sorted)-1])
		}
		q, ok := b.Quantiles["rtt_avg_seconds"]
		if !ok {
			t.Fatalf("hour %d: no quantiles: %+v", i, b)
		}
		for _, c := range []struct {
			p   float64
			got float64
		}{{0.1, q.P10}, {0.25, q.P25}, {0.5, q.Median}, {0.75, q.P75}, {0.9, q.P90}} {
			if want := exactQuantile(sorted, c.p); !near(c.got, want, histRelError) {
				t.Errorf("hour %d: p%v = %v, want %v within %.1f%%", i, c.p*100, c.got, want, histRelError*100)
			}
		}
		if l := b.Values["loss_ratio"]; !near(l.Avg, float64(wantFail)/3600, 1e-6) || l.Max != 1 || l.Min != 0 {
			t.Errorf("hour %d: loss %+v, want mean %v", i, l, float64(wantFail)/3600)
		}
		if _, kept := b.Values["rtt_stddev_seconds"]; kept {
			t.Errorf("hour %d: a value the spec does not keep was kept", i)
		}
	}
	// Three 20-min buckets make each hour.
	for i, b := range minutes {
		h := hours[i/3]
		if i%3 == 0 && (minutes[i].Runs+minutes[i+1].Runs+minutes[i+2].Runs != h.Runs) {
			t.Errorf("20-min buckets of hour %d hold %d runs, the hour %d", i/3, minutes[i].Runs+minutes[i+1].Runs+minutes[i+2].Runs, h.Runs)
		}
		if b.Values["rtt_avg_seconds"].Min < h.Values["rtt_avg_seconds"].Min {
			t.Errorf("20-min bucket %d has a lower min than its hour", i)
		}
	}
}

func TestLateResultIsRolledUpAgain(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	s.SetSpecs(pingSpec)
	tg := newTarget("wan", "ping", "gw")
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	hoursOfResults(t, s, tg, t0, 1)
	end := t0.Add(time.Hour)
	if _, err := s.Rollup(end.Add(2 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	// A run that started in minute 10:05 and is recorded after its minute
	// and hour were rolled up (a long timeout).
	late := pingResult(tg, t0.Add(5*time.Minute+500*time.Millisecond), 9)
	if err := s.Put([]probe.Result{late}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rollup(end.Add(3 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, step := range []time.Duration{time.Minute, time.Hour} {
		bs, err := s.Aggregate(tg.Key, t0, end, step)
		if err != nil {
			t.Fatal(err)
		}
		runs, maxRTT := 0, 0.0
		for _, b := range bs {
			runs += b.Runs
			maxRTT = max(maxRTT, b.Values["rtt_avg_seconds"].Max)
		}
		if runs != 3601 || maxRTT != 9 {
			t.Errorf("step %s: %d runs (want 3601), max RTT %v (want the late run's 9)", step, runs, maxRTT)
		}
	}
}

func TestResultsServeSummariesWhereRawIsTrimmed(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	s.SetSpecs(pingSpec)
	tg := newTarget("wan", "ping", "gw")
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	hoursOfResults(t, s, tg, t0, 3)
	now := t0.Add(3 * time.Hour)
	// Raw results for the last hour, minutes for the last two.
	if _, err := s.Trim(now, Retention{MaxAge: 24 * time.Hour, RawMaxAge: time.Hour, MinuteMaxAge: 2 * time.Hour, MaxBytes: 1 << 40}); err != nil {
		t.Fatal(err)
	}
	for _, desc := range []bool{false, true} {
		got := allResults(t, s, tg.Key, t0, now, desc) // paged, as the API does
		var hours, minutes, raw, runs int
		for i, r := range got {
			if i > 0 && !got[i-1].Start.Before(r.Start) {
				t.Fatalf("desc=%v: records out of order at %d: %s then %s", desc, i, got[i-1].Start, r.Start)
			}
			switch {
			case r.Rollup == nil:
				raw++
				runs++
				if r.RunID == "" {
					t.Errorf("raw result without run id")
				}
			case r.Rollup.Period == time.Hour:
				hours++
				runs += r.Rollup.Runs
			default:
				minutes++
				runs += r.Rollup.Runs
				if q := r.Rollup.Quantiles["rtt_avg_seconds"]; r.Rollup.Runs > r.Rollup.Failures && !(q.P10 <= q.Median && q.Median <= q.P90 && q.P10 > 0) {
					t.Errorf("minute %s: quantiles %+v", r.Start, q)
				}
			}
		}
		if hours != 1 || minutes != 60 || raw != 3600 || runs != 3*3600 {
			t.Errorf("desc=%v: %d hour summaries (want 1), %d minute summaries (want 60), %d raw results (want 3600), %d runs (want %d)",
				desc, hours, minutes, raw, runs, 3*3600)
		}
	}
}

// TestOldFileIsRolledUp opens a history file of the layout before
// roll-ups (results only) and checks that its results are rolled up and
// read the same.
func TestOldFileIsRolledUp(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	tg := newTarget("wan", "ping", "gw")
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	hoursOfResults(t, s, tg, t0, 2)
	end := t0.Add(2 * time.Hour)
	want, err := s.Aggregate(tg.Key, t0, end, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Remove what this version added: the file is then as an older
	// netpulse left it.
	db, err := bolt.Open(path, 0o640, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMinutes, bucketHours, bucketMarks} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	if _, damaged := s.Recovered(); damaged {
		t.Fatal("an old file was judged damaged")
	}
	s.SetSpecs(pingSpec)
	for more := true; more; {
		if more, err = s.Rollup(end.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Aggregate(tg.Key, t0, end, time.Hour)
	if err != nil || len(got) != len(want) {
		t.Fatalf("%d buckets after the roll-up, %d before; %v", len(got), len(want), err)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Runs != w.Runs || g.Failures != w.Failures || !near(g.Values["rtt_avg_seconds"].Avg, w.Values["rtt_avg_seconds"].Avg, 1e-6) ||
			!near(g.Values["rtt_avg_seconds"].Max, w.Values["rtt_avg_seconds"].Max, 1e-6) {
			t.Errorf("hour %d: %+v from summaries, %+v from results", i, g, w)
		}
	}
}

func TestSummaryCodecRoundTrip(t *testing.T) {
	sum := newSummary(2)
	sum.runs, sum.failures, sum.durSum = 60, 3, 60*0.25
	*sum.stat(0) = vsum{name: 0, n: 60, min: 0, max: 0, sum: 0} // constant
	*sum.stat(2) = vsum{name: 2, n: 57, min: 0.001, max: 0.05, sum: 57 * 0.01}
	*sum.stat(700) = vsum{name: 700, n: 60, min: -3, max: 1e9, sum: 60 * 5}
	sum.addDist(0.01, 50)
	sum.addDist(0.002, 7)
	sum.addDist(0, 1)
	got, err := decodeSummary(sum.encode(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got.runs != 60 || got.failures != 3 || !near(got.durSum, 15, 1e-6) || got.dist != 2 || got.zero != 1 || len(got.hb) != 2 {
		t.Fatalf("decoded %+v", got)
	}
	for i, v := range got.values {
		w := sum.values[i]
		if v.name != w.name || v.n != w.n || !near(v.min, w.min, 1e-6) || !near(v.max, w.max, 1e-6) || !near(v.sum, w.sum, 1e-6) {
			t.Errorf("value %d: %+v, want %+v", i, v, w)
		}
	}
	// Damage is an error, never a panic or a huge allocation.
	enc := sum.encode(nil)
	for i := range enc {
		if _, err := decodeSummary(enc[:i]); err == nil {
			t.Errorf("a summary cut to %d bytes decoded", i)
		}
	}
}

// TestTrimBySizeKeepsSummariesLongest: past max size, raw results go
// first (but the last hour's), then minute summaries, and every run is
// still counted in some summary.
func TestTrimBySizeKeepsSummariesLongest(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	s.SetSpecs(pingSpec)
	tg := newTarget("wan", "ping", "gw")
	now := time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC)
	t0 := now.Add(-72 * time.Hour)
	var batch []probe.Result
	for i := range 72 * 360 { // every 10 s for 3 days
		batch = append(batch, pingResult(tg, t0.Add(time.Duration(i)*10*time.Second), 0.01+float64(i%7)/1000))
		if len(batch) == 1000 || i == 72*360-1 {
			if err := s.Put(batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	r := Retention{MaxAge: 30 * 24 * time.Hour, RawMaxAge: 30 * 24 * time.Hour, MinuteMaxAge: 30 * 24 * time.Hour, MaxBytes: 1 << 40}
	if _, err := s.Trim(now, r); err != nil { // rolls up; nothing to delete
		t.Fatal(err)
	}
	before, _ := s.UsedBytes()
	r.MaxBytes = before / 3
	if _, err := s.Trim(now, r); err != nil {
		t.Fatal(err)
	}
	if after, _ := s.UsedBytes(); after > r.MaxBytes {
		t.Errorf("used %d bytes after trimming to %d (was %d)", after, r.MaxBytes, before)
	}
	recs, _, err := s.Results(Query{Series: tg.Key, Since: t0, Until: now, Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var runs, raw int
	for _, rec := range recs {
		switch {
		case rec.Rollup == nil:
			runs++
			raw++
		default:
			runs += rec.Rollup.Runs
		}
	}
	if runs != 72*360 || raw < 360 || raw >= 72*360/2 {
		t.Errorf("%d runs counted (want %d), %d raw results (want at least the last hour's 360, fewer than half)",
			runs, 72*360, raw)
	}
	hs, err := s.Aggregate(tg.Key, t0, now, time.Hour)
	if err != nil || len(hs) != 72 {
		t.Errorf("%d hours aggregated, want all 72 (%v)", len(hs), err)
	}
}

// TestWriterRollsUp: the writer rolls up finished minutes as it runs,
// between writes.
func TestWriterRollsUp(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	s.SetSpecs(pingSpec)
	tel := testutil.NewTelemetry(t)
	w, err := NewWriter(s, Retention{MaxAge: 24 * time.Hour, MaxBytes: 1 << 30}, 1000, tel.Meters,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	w.RollupEvery = 10 * time.Millisecond
	tg := newTarget("wan", "ping", "gw")
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for i := range 300 { // 5 minutes of 1-s results, written while the writer runs
		w.Add(pingResult(tg, start.Add(time.Duration(i)*time.Second), 0.01))
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		s.mu.RLock()
		m := s.marks[tg.Key]
		s.mu.RUnlock()
		recs, _, _ := s.Results(Query{Series: tg.Key, Since: start, Until: time.Now(), Limit: 1000})
		if m.minutes >= start.Add(5*time.Minute).UnixNano() && len(recs) == 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s: rolled up to %s, %d results readable; want past %s and 300",
				time.Unix(0, m.minutes).UTC(), len(recs), start.Add(5*time.Minute).UTC())
		}
		time.Sleep(10 * time.Millisecond) // polling the writer's progress, with a deadline
	}
	bs, err := s.Aggregate(tg.Key, start, start.Add(5*time.Minute), time.Minute)
	if err != nil || len(bs) != 5 || bs[0].Runs != 60 {
		t.Errorf("minute aggregate: %d buckets, first %+v, %v", len(bs), bs, err)
	}
}
