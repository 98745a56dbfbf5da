// Command agentscale runs the whole agent (internal/agent: scheduler,
// harness, spans, metrics, history) against N loopback targets (127.1.0.1
// onwards), each pinged once per period with count 1, and reports the
// process's CPU share of one core over the measured time, its resident
// memory, and the loss and mean RTT read from its own /metrics (-coalesce
// false starts each run on its own slot, as before runs were grouped on the
// scheduler's tick, to compare both in one sitting). With -cpuprofile it
// writes a CPU profile of the measured time. bench/icmp-scale.sh runs it
// next to cmd/icmpscale (the engine alone); it only pings 127.0.0.0/8.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/netpulse/netpulse/internal/agent"
	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe/ping"
	"github.com/netpulse/netpulse/internal/probes"
	"github.com/netpulse/netpulse/internal/version"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "agentscale:", err)
		os.Exit(1)
	}
}

func run() error {
	n := flag.Int("targets", 1000, "number of loopback targets")
	rate := flag.Float64("rate", 1, "runs per second per target (count 1 each)")
	dur := flag.Duration("duration", 60*time.Second, "measured time (after a warm-up of one period plus 2 s)")
	engine := flag.String("engine", "shared", "ping.engine: shared or pro-bing")
	mode := flag.String("mode", "datagram", "socket kind: datagram or raw")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the measured time to this file")
	every := flag.Duration("scrape-every", 15*time.Second, "scrape /metrics as Prometheus does (OpenMetrics, gzip) this often while measuring; 0: never")
	coalesce := flag.Bool("coalesce", true, "ping runs start on the scheduler's tick, together (false: each on its own slot)")
	memProfile := flag.String("memprofile", "", "write allocation profiles to this file at the end and to this file.base at the start of the measured time")
	flag.Parse()
	if *n < 1 || *n > 1<<16 || *rate <= 0 || *rate > 1 {
		return fmt.Errorf("-targets must be 1..%d and -rate in (0, 1]", 1<<16)
	}
	if *engine != "shared" && *engine != "pro-bing" {
		return fmt.Errorf("-engine %q: want shared or pro-bing", *engine)
	}
	period := time.Duration(float64(time.Second) / *rate)
	state, err := os.MkdirTemp("", "agentscale-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(state)
	privileged := "false"
	if *mode == "raw" {
		privileged = "true"
	}
	var y strings.Builder
	fmt.Fprintf(&y, "storage: {path: %q}\nprobes:\n  - {name: scale, type: ping, interval: %s, timeout: 1s,\n", state, period)
	fmt.Fprintf(&y, "     ping: {count: 1, privileged: %q, engine: %s}, targets: [\n", privileged, *engine)
	for i := 1; i <= *n; i++ {
		fmt.Fprintf(&y, "       {name: t%d, host: 127.%d.%d.%d},\n", i, 1+i>>16, byte(i>>8), byte(i))
	}
	y.WriteString("     ]}\n")
	ping.Type.Policy.CoalesceStarts = *coalesce
	cfg, err := config.Parse([]byte(y.String()), probes.Registry)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})) // runs cut short at the end are not news
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := agent.New(ctx, agent.Options{Config: cfg, ListenAddress: "127.0.0.1:0", Logger: logger, Build: version.Get()})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	url := "http://" + a.Addr().String() + "/metrics"

	time.Sleep(period + 2*time.Second) // every target has had its first run
	// What probing holds, before /metrics has been asked for, without the
	// start's garbage (every target's first run stores its configuration)
	// that the runtime would return to the OS over the next minutes.
	debug.FreeOSMemory()
	unscraped, unscrapedFile, _ := memory()
	before, err := scrape(url)
	if err != nil {
		return err
	}
	// The scrape's garbage (tens of MB of exposition at 10,000 targets) is
	// not the probing's: collected and returned to the OS before measuring.
	debug.FreeOSMemory()
	if *memProfile != "" { // the base of the measured time's allocations (pprof -diff_base)
		if err := writeHeapProfile(*memProfile + ".base"); err != nil {
			return err
		}
	}
	cpu0 := cpuTime()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	anonMean, anonPeak, err := measure(url, *dur, *every)
	if err != nil {
		return err
	}
	cpu1 := cpuTime()
	if *profile != "" {
		pprof.StopCPUProfile()
	}
	rss, rssFile, hwm := memory()
	if *memProfile != "" {
		if err := writeHeapProfile(*memProfile); err != nil {
			return err
		}
	}
	after, err := scrape(url)
	if err != nil {
		return err
	}
	cancel()
	if err := <-done; err != nil {
		return err
	}
	runs := func(outcome string) float64 { return after.runs[outcome] - before.runs[outcome] }
	all := 0.0
	for o := range after.runs {
		all += runs(o)
	}
	sent, recv := after.sent-before.sent, after.received-before.received
	rtt := (after.rttSum - before.rttSum) / max(after.rttCount-before.rttCount, 1)
	fmt.Printf("agent    %-8s %-8s targets %6d × %4.1f Hz: cpu %5.1f %% of one core (scraped every %s), "+
		"rss %5.1f MiB (%.1f of files) before any scrape, %5.1f (%.1f) at the end (peak %5.1f), "+
		"anonymous %.1f mean, %.1f peak; "+
		"runs %.0f: %.0f success, %.0f failure, %.0f timeout, %.0f skipped; sent %.0f, received %.0f; "+
		"mean RTT %.1f µs\n",
		*engine, *mode, *n, *rate, float64(cpu1-cpu0)*100/float64(*dur), *every, unscraped, unscrapedFile,
		rss, rssFile, hwm, anonMean, anonPeak,
		all, runs("success"), runs("failure"), runs("timeout"), runs("skipped"), sent, recv, rtt*1e6)
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("         load average %s\n", strings.TrimSpace(string(load)))
	return nil
}

// measure waits d, scraping url every `every` as Prometheus would, and
// samples the anonymous resident memory (RSS less the history file's pages)
// four times a second: its mean and peak.
func measure(url string, d, every time.Duration) (mean, peak float64, err error) {
	end := time.Now().Add(d)
	next := time.Now().Add(every)
	var sum float64
	samples := 0
	for now := time.Now(); now.Before(end); now = time.Now() {
		time.Sleep(min(250*time.Millisecond, end.Sub(now)))
		if every > 0 && !time.Now().Before(next) {
			next = next.Add(every)
			if _, err := scrape(url); err != nil {
				return 0, 0, err
			}
		}
		rss, file, _ := memory()
		sum += rss - file
		peak = max(peak, rss-file)
		samples++
	}
	return sum / float64(max(samples, 1)), peak, nil
}

// counts are sums over every series of the agent's /metrics.
type counts struct {
	sent, received   float64
	rttSum, rttCount float64            // netpulse_ping_rtt_seconds
	runs             map[string]float64 // by outcome
}

// scrape reads the ping packet counters and the run counter by outcome,
// asking as Prometheus does (OpenMetrics, gzip: the agent's own encoder;
// plain text would go through the exporter). Packets are a cut across runs
// in flight (a run's sent may be read without its received); runs are
// counted whole.
func scrape(url string) (counts, error) {
	c := counts{runs: map[string]float64{}}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return c, err
	}
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"+
		"text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
	resp, err := http.DefaultClient.Do(req) // gzip asked for and undone by the transport
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		return c, fmt.Errorf("/metrics answered %q, not OpenMetrics", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, rest, ok := strings.Cut(line, "{")
		if !ok || !strings.HasPrefix(name, "netpulse_") {
			continue
		}
		end := strings.Index(rest, "} ") // an exemplar may follow the value
		if end < 0 {
			continue
		}
		f := strings.Fields(rest[end+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return c, fmt.Errorf("/metrics line %q: %w", line, err)
		}
		switch name {
		case "netpulse_ping_packets_sent_total":
			c.sent += v
		case "netpulse_ping_packets_received_total":
			c.received += v
		case "netpulse_ping_rtt_seconds_sum":
			c.rttSum += v
		case "netpulse_ping_rtt_seconds_count":
			c.rttCount += v
		case "netpulse_probe_runs_total":
			_, after, _ := strings.Cut(rest, `outcome="`)
			outcome, _, _ := strings.Cut(after, `"`)
			c.runs[outcome] += v
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return c, sc.Err()
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memory returns VmRSS, of it RssFile (pages of files mapped, mostly the
// history's bbolt file: the kernel reclaims them under pressure), and
// VmHWM, in MiB.
func memory() (rss, file, hwm float64) {
	// Read 4 times a second inside the measured process: parsed with
	// strings, not fmt.Sscanf (60 lines × 3 patterns cost 0.2 % of a core,
	// counted as the agent's).
	b, _ := os.ReadFile("/proc/self/status")
	for line := range strings.Lines(string(b)) {
		key, value, _ := strings.Cut(line, ":")
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 64)
		if err != nil {
			continue
		}
		switch key {
		case "VmRSS":
			rss = kb / 1024
		case "RssFile":
			file = kb / 1024
		case "VmHWM":
			hwm = kb / 1024
		}
	}
	return rss, file, hwm
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("allocs").WriteTo(f, 0)
}
