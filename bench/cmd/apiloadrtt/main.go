// Command apiloadrtt measures whether API load leaks into the agent's
// measurements (issue 12, item 4), as bench/api-load-rtt.sh runs it. For each
// ping engine it seeds a history store with 100,000 rows of one target
// (history.Store.Put), starts the built agent on a free loopback port with a
// probe that pings 127.0.0.1 every second (10 echoes 100 ms apart), lets it
// run idle, then has N concurrent API clients read it (probes, results of
// 1,000 and 100,000 rows, aggregates, event streams), and prints, per phase,
// the loopback target's RTT from the agent's own history (per-run
// rtt_avg/rtt_max quantiles), the agent's CPU and RSS, and the clients'
// answers/s and 429s. Only loopback is touched; every loop is bounded.
//
//	apiloadrtt --bin ./netpulse --clients 200 --idle 30s --load 30s
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/history"
	"github.com/netpulse/netpulse/internal/probe"
)

func main() {
	bin := flag.String("bin", "", "the built netpulse binary")
	clients := flag.Int("clients", 200, "concurrent API clients in the load phase")
	idle := flag.Duration("idle", 30*time.Second, "idle phase")
	load := flag.Duration("load", 30*time.Second, "load phase")
	rows := flag.Int("rows", 100000, "history rows seeded")
	packetInterval := flag.Duration("packet-interval", 80*time.Millisecond, "time between the loopback probe's 10 echoes (they must fit in the 1 s timeout less 150 ms)")
	engines := flag.String("engines", "shared,pro-bing", "ping engines to compare, comma-separated")
	flag.Parse()
	if *bin == "" {
		log.Fatal("--bin is required")
	}
	var reports []report
	for e := range strings.SplitSeq(*engines, ",") {
		r, err := runEngine(*bin, e, *packetInterval, *clients, *rows, *idle, *load)
		if err != nil {
			log.Fatalf("engine %s: %v", e, err)
		}
		reports = append(reports, r)
	}
	fmt.Printf("\nloopback 127.0.0.1 RTT per run (10 echoes each) from the agent's history, %d API clients in the load phase\n", *clients)
	fmt.Printf("%-9s %-5s %4s %4s %5s %5s | %-26s | %-26s | %6s %8s | %9s %6s %6s\n", "engine", "phase", "runs", "sent", "gap s", "loss",
		"rtt_avg p50/p99/max ms", "rtt_max p50/p99/max ms", "cpu %", "rss MB", "answers/s", "429s", "failed")
	for _, r := range reports {
		for _, p := range r.phases {
			fmt.Printf("%-9s %-5s %4d %4.1f %5.2f %5.3f | %8.3f %8.3f %8.3f | %8.3f %8.3f %8.3f | %6.1f %8.0f | %9.1f %6d %6d\n",
				r.engine, p.name, len(p.avg), p.sent, p.gap, p.loss, q(p.avg, .5), q(p.avg, .99), q(p.avg, 1),
				q(p.max, .5), q(p.max, .99), q(p.max, 1), p.cpu, p.rssMB, p.answers, p.busy, p.failed)
		}
	}
	for _, r := range reports {
		fmt.Printf("%s load phase answers by kind: %s\n", r.engine, r.byKind)
	}
	for _, r := range reports {
		for _, p := range r.phases {
			for _, l := range p.lossy {
				fmt.Println("lost echo:", l)
			}
		}
	}
}

type phase struct {
	name            string
	from, to        time.Time
	avg, max        []float64 // ms per run
	gap             float64   // longest time between two run starts, s
	lossy           []string  // runs with an echo unanswered
	sent            float64   // echoes sent per run
	loss            float64
	cpu, rssMB      float64
	answers         float64
	busy, failed    int64
	cpuT0, cpuT1    int64
	rssSum, rssSeen float64
}

type report struct {
	engine string
	phases []*phase
	byKind string
}

func runEngine(bin, engine string, packetInterval time.Duration, clients, rows int, idle, load time.Duration) (report, error) {
	rep := report{engine: engine}
	dir, err := os.MkdirTemp("", "apiloadrtt")
	if err != nil {
		return rep, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	data := filepath.Join(dir, "data")
	if err := seed(data, rows); err != nil {
		return rep, fmt.Errorf("seeding history: %w", err)
	}
	// count 10 in a 1 s timeout: the run stops waiting 150 ms before its
	// deadline (ping's finishMargin), so at 80 ms all 10 echoes are sent,
	// the last with 130 ms to spare (check-config refuses 100 ms).
	cfg := filepath.Join(dir, "netpulse.yml")
	yml := fmt.Sprintf(`storage: {path: %q}
probes:
  - {name: lo, type: ping, interval: 1s, timeout: 1s,
     ping: {count: 10, packet_interval: %s, engine: %s, privileged: "true"},
     targets: [{name: loopback, host: 127.0.0.1}]}
  - {name: seed, type: ping, interval: 1h, timeout: 2s, ping: {count: 1, engine: %s, privileged: "true"},
     targets: [{name: s, host: 127.0.1.1}]}
`, data, packetInterval, engine, engine)
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		return rep, err
	}
	addr, err := freePort()
	if err != nil {
		return rep, err
	}
	cmd := exec.Command(bin, "--config.file", cfg, "--web.listen-address", addr, "--log.level", "warn")
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+dir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return rep, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	base := "http://" + addr
	if err := waitReady(base + "/readyz"); err != nil {
		return rep, err
	}
	log.Printf("%s: agent pid %d on %s, warming up", engine, pid, addr)
	time.Sleep(5 * time.Second) // first runs of the loopback target done

	stopRSS := make(chan struct{})
	var cur atomic.Pointer[phase]
	var rssWG sync.WaitGroup
	rssWG.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopRSS:
				return
			case <-t.C:
				if p := cur.Load(); p != nil {
					if kb := procKB(pid, "VmRSS"); kb > 0 {
						mb := float64(kb) / 1024
						p.rssSum += mb
						p.rssSeen++
						p.rssMB = math.Max(p.rssMB, mb)
					}
				}
			}
		}
	})
	begin := func(name string) *phase {
		p := &phase{name: name, from: time.Now(), cpuT0: cpuTicks(pid)}
		cur.Store(p)
		return p
	}
	end := func(p *phase) {
		p.to = time.Now()
		p.cpuT1 = cpuTicks(pid)
		p.cpu = float64(p.cpuT1-p.cpuT0) / 100 / p.to.Sub(p.from).Seconds() * 100 // USER_HZ is 100 on Linux
	}

	pi := begin("idle")
	time.Sleep(idle)
	end(pi)
	log.Printf("%s: idle phase done, %d clients for %s", engine, clients, load)
	pl := begin("load")
	st := hammer(base, clients, load)
	end(pl)
	cur.Store(nil)
	close(stopRSS)
	rssWG.Wait()
	pl.answers = float64(st.ok.Load()) / pl.to.Sub(pl.from).Seconds()
	pl.busy, pl.failed = st.busy.Load(), st.failed.Load()
	rep.byKind = st.String()

	// Runs started in the load phase end by its end + 1 s; wait for them.
	time.Sleep(3 * time.Second)
	res, err := loopbackRuns(base, pi.from, pl.to)
	if err != nil {
		return rep, err
	}
	for _, p := range []*phase{pi, pl} {
		var sent, recv float64
		var last time.Time
		for _, r := range res { // in time order
			if r.Start.Before(p.from) || !r.Start.Before(p.to) {
				continue
			}
			if !last.IsZero() {
				p.gap = math.Max(p.gap, r.Start.Sub(last).Seconds())
			}
			last = r.Start
			sent += r.Values["packets_sent"]
			recv += r.Values["packets_received"]
			if r.Values["packets_received"] < r.Values["packets_sent"] || r.Outcome != "success" {
				p.lossy = append(p.lossy, fmt.Sprintf("%s %s at +%.1f s: %s, %.0f of %.0f echoes answered, run took %.3f s",
					engine, p.name, r.Start.Sub(p.from).Seconds(), r.Outcome, r.Values["packets_received"],
					r.Values["packets_sent"], r.Duration))
			}
			if v, ok := r.Values["rtt_avg_seconds"]; ok && r.Values["packets_received"] > 0 {
				p.avg = append(p.avg, v*1e3)
				p.max = append(p.max, r.Values["rtt_max_seconds"]*1e3)
			}
		}
		if sent > 0 {
			p.loss = 1 - recv/sent
			p.sent = sent / float64(len(p.avg))
		}
		rep.phases = append(rep.phases, p)
	}
	return rep, nil
}

// seed writes rows results of probe seed / target s, one a second up to
// now, so that the clients' reads are heavy.
func seed(dir string, rows int) error {
	s, err := history.Open(dir)
	if err != nil {
		return err
	}
	p := config.Probe{Name: "seed", Type: "ping", Interval: time.Hour, Timeout: 2 * time.Second,
		Targets: []config.Target{{Name: "s", Host: "127.0.1.1"}}}
	tg := probe.NewTarget(p, p.Targets[0])
	start := time.Now().Add(-time.Duration(rows+60) * time.Second).Truncate(time.Second)
	batch := make([]probe.Result, 0, 1000)
	for i := range rows {
		st := start.Add(time.Duration(i) * time.Second)
		rtt := 0.010 + float64(i%100)/1e5
		batch = append(batch, probe.Result{Target: tg, Start: st, Duration: 20 * time.Millisecond,
			Outcome: probe.OutcomeSuccess, RunID: probe.NewRunID(tg, st),
			Values: probe.Values{"packets_sent": 1, "packets_received": 1, "packets_duplicate": 0, "loss_ratio": 0,
				"rtt_min_seconds": rtt, "rtt_avg_seconds": rtt, "rtt_max_seconds": rtt,
				"rtt_stddev_seconds": 0, "jitter_seconds": 0}})
		if len(batch) == cap(batch) || i == rows-1 {
			if err := s.Put(batch); err != nil {
				_ = s.Close()
				return err
			}
			batch = batch[:0]
		}
	}
	return s.Close()
}

// freePort asks the kernel for a free loopback port.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

func waitReady(u string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(u); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within 30 s", u)
}

type stats struct {
	ok, busy, failed atomic.Int64
	kindOK           [5]atomic.Int64
	kindBusy         [5]atomic.Int64
}

var kindNames = [5]string{"probes", "results1000", "results100000", "aggregate", "events"}

func (s *stats) String() string {
	var b strings.Builder
	for i, n := range kindNames {
		fmt.Fprintf(&b, "%s %d ok/%d 429; ", n, s.kindOK[i].Load(), s.kindBusy[i].Load())
	}
	return b.String()
}

// hammer runs n clients for d, each cycling through the kinds of request.
func hammer(base string, n int, d time.Duration) *stats {
	var st stats
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxIdleConns: n}}
	seedQ := "since=30h"
	urls := [5]string{
		base + "/api/v1/probes",
		base + "/api/v1/probes/seed/targets/s/results?limit=1000&" + seedQ,
		base + "/api/v1/probes/seed/targets/s/results?limit=100000&" + seedQ,
		base + "/api/v1/probes/seed/targets/s/aggregate?step=1h&" + seedQ,
		base + "/api/v1/events",
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			for k := i; ctx.Err() == nil; k++ {
				kind := k % len(urls)
				rctx, rcancel := ctx, context.CancelFunc(func() {})
				if kindNames[kind] == "events" { // an event stream, followed for 2 s
					rctx, rcancel = context.WithTimeout(ctx, 2*time.Second)
				}
				req, _ := http.NewRequestWithContext(rctx, "GET", urls[kind], nil)
				resp, err := client.Do(req)
				if err != nil {
					rcancel()
					if ctx.Err() == nil {
						st.failed.Add(1)
					}
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				streamEnded := kindNames[kind] == "events" && rctx.Err() != nil && ctx.Err() == nil
				rcancel()
				switch {
				case resp.StatusCode == http.StatusTooManyRequests:
					st.busy.Add(1)
					st.kindBusy[kind].Add(1)
					wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
					select {
					case <-ctx.Done():
					case <-time.After(time.Duration(max(wait, 1)) * time.Second):
					}
				case resp.StatusCode == http.StatusOK && (err == nil || streamEnded):
					st.ok.Add(1)
					st.kindOK[kind].Add(1)
				case ctx.Err() == nil:
					st.failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return &st
}

type result struct {
	RunID    string             `json:"run_id"`
	Start    time.Time          `json:"start"`
	Duration float64            `json:"duration_seconds"`
	Outcome  string             `json:"outcome"`
	Values   map[string]float64 `json:"values"`
}

// loopbackRuns reads the loopback target's runs of the window from the
// API, oldest first.
func loopbackRuns(base string, from, to time.Time) ([]result, error) {
	q := url.Values{"since": {from.Add(-time.Second).UTC().Format(time.RFC3339Nano)},
		"until": {to.Add(2 * time.Second).UTC().Format(time.RFC3339Nano)}, "limit": {"10000"}}
	resp, err := http.Get(base + "/api/v1/probes/lo/targets/loopback/results?" + q.Encode())
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("results: %s: %s", resp.Status, b)
	}
	var body struct {
		Results []result `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	slices.SortFunc(body.Results, func(a, b result) int { return a.Start.Compare(b.Start) })
	return body.Results, nil
}

// q is the p-quantile (nearest rank) of xs, NaN when empty.
func q(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(xs))
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// cpuTicks is the process's user+system time in clock ticks.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 (state) on
	u, _ := strconv.ParseInt(f[11], 10, 64)                  // 14 utime
	k, _ := strconv.ParseInt(f[12], 10, 64)                  // 15 stime
	return u + k
}

// procKB reads a kB figure of /proc/<pid>/status.
func procKB(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, found := strings.CutPrefix(sc.Text(), field+":"); found {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
