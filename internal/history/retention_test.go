package history

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/testutil"
)

func count(t *testing.T, s *Store, tg *probe.Target) int {
	recs, _, err := s.Results(Query{Series: tg.Key, Since: time.Unix(0, 0), Until: time.Now().Add(time.Hour), Limit: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}

func TestTrimByAgeKeepsSpeedTestsLonger(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	ping, speed := newTarget("wan", "ping", "gw"), newTarget("speed", "speedtest", "lan")
	now := time.Now()
	var batch []probe.Result
	for d := range 10 { // one result a day for 10 days
		start := now.Add(-time.Duration(d)*24*time.Hour - time.Minute)
		batch = append(batch, pingResult(ping, start, 0.01), pingResult(speed, start, 0.01))
	}
	if err := s.Put(batch); err != nil {
		t.Fatal(err)
	}
	n, err := s.Trim(now, Retention{MaxAge: 3 * 24 * time.Hour, LongMaxAge: 7 * 24 * time.Hour, LongTypes: []string{"speedtest"}, MaxBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if p, sp := count(t, s, ping), count(t, s, speed); p != 3 || sp != 7 || n != 10 {
		t.Errorf("after trim: %d ping (want 3), %d speed test (want 7), %d deleted (want 10)", p, sp, n)
	}
}

func TestTrimBySizeDropsOldestPingFirst(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	ping, speed := newTarget("wan", "ping", "gw"), newTarget("speed", "speedtest", "lan")
	now := time.Now()
	for day := range 10 {
		var batch []probe.Result
		for i := range 2000 {
			batch = append(batch, pingResult(ping, now.Add(-time.Duration(10-day)*24*time.Hour+time.Duration(i)*time.Second), 0.01))
		}
		batch = append(batch, pingResult(speed, now.Add(-time.Duration(10-day)*24*time.Hour), 0.01))
		if err := s.Put(batch); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := s.UsedBytes()
	limit := before / 2
	if _, err := s.Trim(now, Retention{MaxAge: 365 * 24 * time.Hour, LongMaxAge: 365 * 24 * time.Hour, LongTypes: []string{"speedtest"}, MaxBytes: limit}); err != nil {
		t.Fatal(err)
	}
	after, _ := s.UsedBytes()
	if after > limit {
		t.Errorf("used %d bytes after trimming to %d (was %d)", after, limit, before)
	}
	p := countRaw(t, s, ping)
	if p == 0 || p >= 20000 || countRaw(t, s, speed) != 10 {
		t.Errorf("%d ping results left of 20000 (want some, not all), %d speed tests (want all 10)", p, countRaw(t, s, speed))
	}
	recs, _, _ := s.Results(Query{Series: ping.Key, Since: time.Unix(0, 0), Until: now, Limit: 1 << 20})
	runs := 0
	for i, r := range recs {
		if r.Rollup == nil {
			if r.Start.Before(now.Add(-9 * 24 * time.Hour)) {
				t.Errorf("oldest ping result %s survived; the oldest go first", r.Start)
			}
			runs += len(recs) - i
			break
		}
		runs += r.Rollup.Runs
	}
	if runs != 20000 {
		t.Errorf("raw results and summaries hold %d runs, want all 20000 (a trim must not lose what no summary holds)", runs)
	}
}

// countRaw counts the series' raw results (not summaries).
func countRaw(t *testing.T, s *Store, tg *probe.Target) int {
	recs, _, err := s.Results(Query{Series: tg.Key, Since: time.Unix(0, 0), Until: time.Now().Add(time.Hour), Limit: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Rollup == nil {
			n++
		}
	}
	return n
}

func TestWriterDropsWhenFullAndDrainsOnStop(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	tel := testutil.NewTelemetry(t)
	w, err := NewWriter(s, Retention{MaxAge: time.Hour, LongMaxAge: time.Hour, LongTypes: []string{"speedtest"}, MaxBytes: 1 << 30}, 2,
		tel.Meters, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tg := newTarget("wan", "ping", "gw")
	now := time.Now()
	for i := range 3 { // the writer is not running: the third does not fit
		w.Add(pingResult(tg, now.Add(time.Duration(i)*time.Millisecond), 0.01))
	}
	m := tel.Collect(t)
	if v, _ := testutil.Value(m["netpulse.history.dropped"], attribute.String("reason", "queue_full")); v != 1 {
		t.Errorf("dropped{queue_full} = %v, want 1", v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run writes what is queued, then returns
	w.Run(ctx)
	if n := count(t, s, tg); n != 2 {
		t.Errorf("%d results written, want the 2 queued", n)
	}
	if v, ok := testutil.Value(tel.Collect(t)["netpulse.history.size"]); !ok || v <= 0 {
		t.Errorf("history size gauge = %v, %v", v, ok)
	}
}
