// Command apiread measures the agent's memory under concurrent history
// reads: it writes 100,000 ping results of one target to a history store in
// a temporary directory, serves the agent's API handler on 127.0.0.1, and
// has N clients read all 100,000 rows (GET …/results?limit=100000) over
// and over for a while, as bench/api-read.sh runs it. It prints the answers
// served, the 429s (a client then waits Retry-After, as a client should),
// and the process's peak RSS (VmHWM) and peak heap in use.
//
//	apiread --readers 60 --duration 30s
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netpulse/netpulse/internal/api"
	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/history"
	"github.com/netpulse/netpulse/internal/probe"
)

const rows = 100000

func main() {
	readers := flag.Int("readers", 60, "concurrent clients")
	duration := flag.Duration("duration", 30*time.Second, "how long they read")
	flag.Parse()

	dir, err := os.MkdirTemp("", "apiread")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	s, err := history.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	p := config.Probe{Name: "internet", Type: "ping", Interval: time.Second, Timeout: time.Second,
		Targets: []config.Target{{Name: "dns", Host: "127.0.0.1"}}}
	tg := probe.NewTarget(p, p.Targets[0])
	start := time.Now().Add(-rows * time.Second).Truncate(time.Second)
	batch := make([]probe.Result, 0, 1000)
	for i := range rows {
		st := start.Add(time.Duration(i) * time.Second)
		rtt := 0.010 + float64(i%100)/1e5
		batch = append(batch, probe.Result{Target: tg, Start: st, Duration: 2500 * time.Millisecond,
			Outcome: probe.OutcomeSuccess, RunID: probe.NewRunID(tg, st),
			Values: probe.Values{"packets_sent": 10, "packets_received": 10, "packets_duplicate": 0, "loss_ratio": 0,
				"rtt_min_seconds": rtt * 0.9, "rtt_avg_seconds": rtt, "rtt_max_seconds": rtt * 1.2,
				"rtt_stddev_seconds": rtt * 0.05, "jitter_seconds": rtt * 0.03}})
		if len(batch) == cap(batch) {
			if err := s.Put(batch); err != nil {
				log.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	a := api.New(api.Options{Probes: []config.Probe{p}, Targets: []*probe.Target{tg}, Store: s, Feed: api.NewFeed(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(a) // 127.0.0.1, a free port
	defer func() { srv.CloseClientConnections(); srv.Close() }()
	url := srv.URL + "/api/v1/probes/internet/targets/dns/results?limit=" + strconv.Itoa(rows) +
		"&since=" + start.UTC().Format(time.RFC3339) + "&until=" + time.Now().UTC().Format(time.RFC3339)

	runtime.GC()
	baseRSS := procKB("VmRSS")
	var peakHeap atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peakHeap.Load() {
					peakHeap.Store(ms.HeapInuse)
				}
			}
		}
	}()

	var ok, busy, failed, bytes atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *readers}}
	var wg sync.WaitGroup
	began := time.Now()
	for range *readers {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
					continue
				}
				n, err := io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusTooManyRequests:
					busy.Add(1)
					wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
					select {
					case <-ctx.Done():
					case <-time.After(time.Duration(max(wait, 1)) * time.Second):
					}
				case resp.StatusCode == http.StatusOK && err == nil:
					ok.Add(1)
					bytes.Add(n)
				case ctx.Err() == nil:
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	secs := time.Since(began).Seconds()
	fmt.Printf("readers %d, %.0f s: %d answers of %d rows (%.1f/s, %.0f MB/s), %d answered 429, %d failed\n",
		*readers, secs, ok.Load(), rows, float64(ok.Load())/secs, float64(bytes.Load())/secs/1e6, busy.Load(), failed.Load())
	fmt.Printf("RSS before %d MB, peak (VmHWM) %d MB; peak heap in use %d MB\n",
		baseRSS/1024, procKB("VmHWM")/1024, peakHeap.Load()>>20)
}

// procKB reads a kB figure of /proc/self/status.
func procKB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, found := strings.CutPrefix(line, field+":"); found {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
