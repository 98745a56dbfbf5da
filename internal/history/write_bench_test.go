package history

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/probe"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWrite1000Targets measures what history costs a fleet of 1,000
// ping targets at 1 Hz: each iteration is one second of results (1,000,
// one per target, spread over the second) written in one Put as the
// Writer does, and every 60th the once-a-minute work (Rollup), every
// 600th the ten-minute Trim, as the Writer schedules them in simulated
// time. It reports the CPU (user and system, of the whole process: run
// it alone) per second of results, in ms: 10 ms/s is 1 % of a core. The
// store fsyncs as in production.
//
// "evidence" also keeps the echoes of every failed run (every 50th: 20
// a second) as the ping type does for runs that are not clean.
//
// Run: go test ./internal/history -run '^$' -bench Write1000Targets -benchtime 1200x
func BenchmarkWrite1000Targets(b *testing.B) {
	b.Run("clean", func(b *testing.B) { write1000Targets(b, false) })
	b.Run("evidence", func(b *testing.B) { write1000Targets(b, true) })
}

// echoEvidence is a lost echo's evidence, as the ping type keeps it.
type echoEvidence struct {
	Seq        int      `json:"seq"`
	SentOffset float64  `json:"sent_offset_seconds"`
	RTT        *float64 `json:"rtt_seconds"`
	Fate       string   `json:"fate"`
}

func write1000Targets(b *testing.B, evidence bool) {
	const n = 1000
	s := open(b, b.TempDir())
	defer s.Close()
	s.SetSpecs(pingSpec)
	tgs := make([]*probe.Target, n)
	for i := range tgs {
		tgs[i] = newTarget("fleet", "ping", fmt.Sprintf("host-%04d", i))
	}
	// Simulated time starts on a minute, an hour ago, so that roll-ups
	// and trims see finished minutes as the writer would.
	t0 := time.Now().Add(-time.Hour).Truncate(time.Minute)
	// The results are made once (every 50th a failure) and moved in time
	// each second, so that the figure is the store's, not the making of
	// maps of values.
	batch := make([]probe.Result, n)
	for j, tg := range tgs {
		batch[j] = fleetPing(tg, t0, j)
	}
	sec := 0
	cpu0 := cpuTime(b)
	for b.Loop() {
		for j, tg := range tgs {
			// Targets run at spread offsets within the second.
			at := t0.Add(time.Duration(sec)*time.Second + time.Duration(j)*time.Millisecond)
			batch[j].Start, batch[j].RunID = at, probe.NewRunID(tg, at)
		}
		if evidence {
			for j := range batch {
				if batch[j].Outcome != probe.OutcomeSuccess {
					ev := []echoEvidence{{Seq: sec, SentOffset: 0.0001, Fate: "lost"}}
					if err := s.PutEvidence(batch[j].RunID, "echoes", ev); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		if err := s.Put(batch); err != nil {
			b.Fatal(err)
		}
		sec++
		now := t0.Add(time.Duration(sec) * time.Second)
		switch {
		case sec%600 == 0:
			if _, err := s.Trim(now, fleetRetention); err != nil {
				b.Fatal(err)
			}
		case sec%60 == 0:
			if _, err := s.Rollup(now); err != nil {
				b.Fatal(err)
			}
		}
	}
	cpu := cpuTime(b) - cpu0
	b.ReportMetric(float64(cpu.Milliseconds())/float64(sec), "cpu-ms/s-of-results")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(sec*n), "cpu-ns/result")
	used, _ := s.UsedBytes()
	b.ReportMetric(float64(used)/float64(sec*n), "used-bytes/result")
}

// BenchmarkReadRecent measures the reads of a target's recent results
// at 1,000 targets at 1 Hz, while they are in the log (the last minute
// or two: "log") and once moved into the series' buckets ("moved"): the
// last result, the last five minutes newest first (the API's default
// page of 100), a run by id, the last success.
func BenchmarkReadRecent(b *testing.B) {
	const n = 1000
	s := open(b, b.TempDir())
	defer s.Close()
	s.db.NoSync = true
	tgs := make([]*probe.Target, n)
	for i := range tgs {
		tgs[i] = newTarget("fleet", "ping", fmt.Sprintf("host-%04d", i))
	}
	t0 := time.Now().Add(-time.Hour).Truncate(time.Minute)
	batch := make([]probe.Result, n)
	for sec := range 180 { // three minutes, as the log holds at most
		for j, tg := range tgs {
			batch[j] = fleetPing(tg, t0.Add(time.Duration(sec)*time.Second+time.Duration(j)*time.Millisecond), sec+j)
		}
		if err := s.Put(batch); err != nil {
			b.Fatal(err)
		}
	}
	tg, end := tgs[n/2], t0.Add(3*time.Minute)
	reads := func(b *testing.B) {
		b.Run("last", func(b *testing.B) {
			for b.Loop() {
				if rec, ok, err := s.Last(tg.Key); err != nil || !ok || rec.Start.Before(end.Add(-time.Second)) {
					b.Fatal(rec, ok, err)
				}
			}
		})
		b.Run("page-desc", func(b *testing.B) {
			for b.Loop() {
				recs, _, err := s.Results(Query{Series: tg.Key, Since: end.Add(-5 * time.Minute), Until: end, Limit: 100, Desc: true})
				if err != nil || len(recs) != 100 {
					b.Fatal(len(recs), err)
				}
			}
		})
		b.Run("get", func(b *testing.B) {
			id := probe.NewRunID(tg, t0.Add(90*time.Second+time.Duration(n/2)*time.Millisecond))
			for b.Loop() {
				if _, ok, err := s.Get(id); err != nil || !ok {
					b.Fatal(ok, err)
				}
			}
		})
		b.Run("last-success", func(b *testing.B) {
			for b.Loop() {
				if ls, err := s.LastSuccess(tg.Key, 100); err != nil || ls.IsZero() {
					b.Fatal(ls, err)
				}
			}
		})
	}
	b.Run("log", reads)
	s.mu.Lock()
	err := s.moveLog(end.UnixNano())
	s.mu.Unlock()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("moved", reads)
}
