package ping

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/testutil"
	"github.com/netpulse/netpulse/internal/testutil/icmplab"
)

// keptEvidence collects what a prober keeps through probe.Deps.Evidence.
type keptEvidence struct {
	mu     sync.Mutex
	echoes map[probe.RunID][]echoRecord
}

func echoesDeps(t *testing.T) (probe.Deps, *keptEvidence, *testutil.Telemetry, *probe.Runner) {
	tel := testutil.NewTelemetry(t)
	deps := testDeps(t, tel.Meters, tel.Traces, "")
	k := &keptEvidence{echoes: map[probe.RunID][]echoRecord{}}
	deps.Evidence = func(ctx context.Context, kind string, v any) {
		id, ok := probe.RunIDFrom(ctx)
		if !ok || kind != EvidenceEchoes {
			t.Errorf("evidence %q kept outside a run (run id %v)", kind, ok)
			return
		}
		k.mu.Lock()
		k.echoes[id] = v.([]echoRecord)
		k.mu.Unlock()
	}
	runner, err := probe.NewRunner(tel.Meters, tel.Traces, quiet, 0)
	if err != nil {
		t.Fatal(err)
	}
	return deps, k, tel, runner
}

func (k *keptEvidence) of(id probe.RunID) ([]echoRecord, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.echoes[id]
	return e, ok
}

// A lossy run keeps its echoes: in the ICMP lab, which drops half the
// echoes and records what it did, every echo's fate is the lab's and every
// reply's RTT is the one the lab realized, with either engine (pro-bing
// timestamps replies in user space: a looser bound).
func TestEchoesEvidenceOfALossyRun(t *testing.T) {
	lab := icmplab.Start(t, icmplab.Schedule{Base: 3 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.5, Seed: 9})
	for _, engine := range []string{EngineShared, EngineProBing} {
		t.Run(engine, func(t *testing.T) { lossyRun(t, lab, engine) })
	}
}

func lossyRun(t *testing.T, lab *icmplab.Lab, engine string) {
	deps, kept, _, runner := echoesDeps(t)
	cfg := pingConfig("false") // the lab allows datagram sockets
	cfg.Count, cfg.PacketInterval, cfg.Engine = 20, 10*time.Millisecond, engine
	// Kernel timestamps at both ends read the truth to within µs: 1 ms
	// per echo leaves room for a loaded machine. pro-bing's user-space
	// receive time reads late by the scheduler's delay: its echoes are
	// judged by the median, each only for never reading early.
	low, high, medianHigh := -time.Millisecond, time.Millisecond, time.Millisecond
	if engine == EngineProBing {
		high, medianHigh = time.Second, 2*time.Millisecond
	}
	var errs []time.Duration
	p, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	target := probe.NewTarget(config.Probe{Name: "lab", Type: TypeName}, config.Target{Name: "lab4", Host: lab.Addr4.String()})
	mark := lab.Mark()
	var res probe.Result
	// The engine opens its socket on the run's thread: inside the lab.
	if err := lab.Do(func() error { res = runner.Run(t.Context(), p, target, time.Second); return nil }); err != nil {
		t.Fatal(err)
	}
	truth := lab.TruthSince(mark)
	echoes, ok := kept.of(res.RunID)
	if !ok {
		t.Fatalf("run %s (%s, loss %v) kept no echoes", res.RunID, res.Outcome, res.Values["loss_ratio"])
	}
	if len(echoes) != cfg.Count || len(truth) != cfg.Count {
		t.Fatalf("%d echoes kept, lab saw %d, want %d", len(echoes), len(truth), cfg.Count)
	}
	var lost, prev float64
	for i, e := range echoes {
		tr := truth[i]
		if e.Seq != i || e.SentOffset == nil || *e.SentOffset < prev || *e.SentOffset > 1 {
			t.Errorf("echo %d: seq %d sent at %v s, want seq %d sent in order within the run", i, e.Seq, e.SentOffset, i)
		}
		if e.SentOffset != nil {
			prev = *e.SentOffset
		}
		switch {
		case tr.Dropped:
			lost++
			if e.Fate != fateLost || e.RTT != nil {
				t.Errorf("echo %d: the lab dropped it, kept as %s rtt %v", i, e.Fate, e.RTT)
			}
		case e.Fate != fateReplied || e.RTT == nil || e.TTL == 0:
			t.Errorf("echo %d: the lab answered after %v, kept as %s rtt %v ttl %d", i, tr.RTT(), e.Fate, e.RTT, e.TTL)
		default:
			d := time.Duration(*e.RTT*1e9) - tr.RTT()
			errs = append(errs, d)
			if d < low || d > high {
				t.Errorf("echo %d: RTT %.3f ms, the lab realized %.3f ms", i, *e.RTT*1e3, float64(tr.RTT().Microseconds())/1e3)
			}
		}
	}
	slices.Sort(errs)
	if len(errs) > 0 && errs[len(errs)/2] > medianHigh {
		t.Errorf("median RTT error %v above the lab's truth, want at most %v", errs[len(errs)/2], medianHigh)
	}
	if lost == 0 || lost == float64(cfg.Count) {
		t.Errorf("the lab dropped %v of %d echoes: want some but not all", lost, cfg.Count)
	}
	if want := lost / float64(cfg.Count); res.Values["loss_ratio"] != want {
		t.Errorf("loss_ratio %v, want %v", res.Values["loss_ratio"], want)
	}
}

// A clean scheduled run keeps only its summary; the same target run on
// demand keeps its echoes, with either engine, and their JSON is what the
// API answers.
func TestEchoesEvidenceCleanAndOnDemand(t *testing.T) {
	testutil.NeedICMP(t)
	for _, engine := range []string{EngineShared, EngineProBing} {
		t.Run(engine, func(t *testing.T) {
			deps, kept, tel, runner := echoesDeps(t)
			cfg := pingConfig("auto")
			cfg.Engine = engine
			p, err := New(cfg, deps)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Close() })
			target := probe.NewTarget(config.Probe{Name: "lo", Type: TypeName}, config.Target{Name: "lo", Host: "127.0.0.1"})
			res := runner.Run(t.Context(), p, target, 2*time.Second)
			if res.Outcome != probe.OutcomeSuccess || res.Values["loss_ratio"] != 0 {
				t.Fatalf("loopback: %s %v, values %v", res.Outcome, res.Err, res.Values)
			}
			if e, ok := kept.of(res.RunID); ok {
				t.Errorf("a clean scheduled run kept %d echoes", len(e))
			}
			res = runner.Run(probe.WithDemand(t.Context(), &probe.Demand{}), p, target, 2*time.Second)
			echoes, ok := kept.of(res.RunID)
			if !ok || len(echoes) != 5 {
				t.Fatalf("an on-demand run kept %d echoes (%v), want 5", len(echoes), ok)
			}
			for i, e := range echoes {
				if e.Seq != i || e.Fate != fateReplied || e.RTT == nil || *e.RTT <= 0 || *e.RTT > 0.05 || e.TTL != 64 ||
					e.SentOffset == nil || *e.SentOffset < 0 || *e.SentOffset > 2 {
					t.Errorf("echo %d: %+v, want replied in under 50 ms with TTL 64, sent within the run", i, e)
				}
			}
			events := 0 // every echo is an event on its run's span, kept or not
			for _, sp := range tel.Spans.Ended() {
				for _, ev := range sp.Events() {
					if sp.Name() == "echo" && ev.Name == "echo" {
						events++
					}
				}
			}
			if events != 10 {
				t.Errorf("%d echo events on the two runs' spans, want 10", events)
			}
			js, err := json.Marshal(echoes)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d bytes of JSON for %d echoes: %s", len(js), len(echoes), js)
			if !strings.HasPrefix(string(js), `[{"seq":0,"sent_offset_seconds":`) {
				t.Errorf("JSON %s", js)
			}
		})
	}
}

// The JSON of echoes that met no reply, an ICMP error or a send error.
func TestEchoRecordJSON(t *testing.T) {
	recs := []echoRecord{{Seq: 1, SentOffset: new(0.25), Fate: fateLost},
		{Seq: 2, SentOffset: new(0.5), Fate: fateError, ICMPError: &icmpErr{Type: 3, Code: 1, From: "198.18.0.1", Meaning: "host unreachable"}}}
	js, err := json.Marshal(recs)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"seq":1,"sent_offset_seconds":0.25,"rtt_seconds":null,"fate":"lost"},` +
		`{"seq":2,"sent_offset_seconds":0.5,"rtt_seconds":null,"fate":"error","icmp_error":{"type":3,"code":1,"from":"198.18.0.1","meaning":"host unreachable"}}]`
	if string(js) != want {
		t.Errorf("JSON\n%s\nwant\n%s", js, want)
	}
}

// A down target (every echo lost) keeps the echoes of its first silent
// scheduled run only, and of every on-demand run; another down target's
// first silent run is its own.
func TestEchoesOfADownTarget(t *testing.T) {
	lab := icmplab.Start(t, icmplab.Schedule{Base: 2 * time.Millisecond, Loss: 1})
	deps, kept, _, runner := echoesDeps(t)
	cfg := pingConfig("false")
	cfg.Count = 3
	p, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	down := probe.NewTarget(config.Probe{Name: "lab", Type: TypeName}, config.Target{Name: "down", Host: lab.Addr4.String()})
	var runs []probe.Result
	run := func(ctx context.Context, target *probe.Target) {
		if err := lab.Do(func() error { runs = append(runs, runner.Run(ctx, p, target, 300*time.Millisecond)); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	run(t.Context(), down)
	run(t.Context(), down)
	run(probe.WithDemand(t.Context(), &probe.Demand{}), down)
	run(t.Context(), down)
	for i, want := range []bool{true, false, true, false} {
		echoes, ok := kept.of(runs[i].RunID)
		if runs[i].Values["loss_ratio"] != 1 || ok != want {
			t.Errorf("silent run %d: loss %v, echoes kept %v (%d), want %v", i, runs[i].Values["loss_ratio"], ok, len(echoes), want)
		}
		if ok && (len(echoes) != 3 || echoes[0].Fate != fateLost || echoes[0].RTT != nil) {
			t.Errorf("silent run %d: echoes %+v, want 3 lost", i, echoes)
		}
	}
	// Another target's silence is its own.
	other := probe.NewTarget(config.Probe{Name: "lab", Type: TypeName}, config.Target{Name: "down2", Host: lab.Addr4.String()})
	run(t.Context(), other)
	if _, ok := kept.of(runs[4].RunID); !ok {
		t.Error("another down target's first silent run kept no echoes")
	}
}

// An echo a router answered with an ICMP error is kept with the error:
// its type, code, router and meaning; the echoes never sent after it are
// left out. The target's next run, answered the same, keeps none.
func TestEchoesOfAnICMPError(t *testing.T) {
	testutil.NeedICMP(t)
	router, cases := icmpErrorRouter(t)
	c := cases[0] // an unreachable route: host unreachable
	deps, kept, _, runner := echoesDeps(t)
	cfg := pingConfig("auto")
	cfg.Count, cfg.PacketInterval = 5, 100*time.Millisecond
	p, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	target := probe.NewTarget(config.Probe{Name: "wan", Type: TypeName}, config.Target{Name: c.name, Host: c.dst.String()})
	res := runner.Run(t.Context(), p, target, 2*time.Second)
	echoes, ok := kept.of(res.RunID)
	if res.ErrorType != probe.ErrUnreachable || !ok || len(echoes) != 1 {
		t.Fatalf("run %s (%s): %d echoes kept (%v), want the one an ICMP error answered", res.Outcome, res.ErrorType, len(echoes), ok)
	}
	e := echoes[0]
	want := icmpErr{Type: 3, Code: c.code, From: router, Meaning: "host unreachable"}
	if e.Fate != fateError || e.RTT != nil || e.ICMPError == nil || *e.ICMPError != want || e.SentOffset == nil {
		t.Errorf("echo %+v (ICMP error %+v), want fate error with %+v", e, e.ICMPError, want)
	}
	res = runner.Run(t.Context(), p, target, 2*time.Second)
	if e, ok := kept.of(res.RunID); ok || res.ErrorType != probe.ErrUnreachable {
		t.Errorf("the next run (%s) kept %d echoes: a down target keeps its first silent run's only", res.ErrorType, len(e))
	}
}
