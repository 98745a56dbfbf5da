// Command icmpscale pings N loopback targets (127.1.0.1 onwards), each at a
// given rate, for a while, with the shared ICMP engine (internal/icmp) or
// with pro-bing the way the ping probe uses it today (one Pinger per run),
// and reports the process's CPU share of one core, its resident memory and
// the loss. Runs are spread evenly over the period and start on the
// scheduler's tick (-tick), as the agent's scheduler starts them.
// bench/icmp-scale.sh runs it; it only pings 127.0.0.0/8.
//
// -engine none sends nothing: each run returns at once, counting one echo.
// It measures the harness's own cost (the dispatcher, a goroutine and a
// context per run), which the engines' figures include.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	probing "github.com/prometheus-community/pro-bing"

	"github.com/netpulse/netpulse/internal/icmp"
	"github.com/netpulse/netpulse/internal/scheduler"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "icmpscale:", err)
		os.Exit(1)
	}
}

type counts struct {
	sent, received, lost, failed atomic.Int64
	firstErr                     atomic.Value // string: the first failed run's error
}

func (c *counts) fail(err error) {
	c.failed.Add(1)
	c.firstErr.CompareAndSwap(nil, err.Error())
}

func run() error {
	n := flag.Int("targets", 1000, "number of loopback targets")
	rate := flag.Float64("rate", 1, "echoes per second per target")
	dur := flag.Duration("duration", 60*time.Second, "measured time (after a warm-up of one period)")
	engine := flag.String("engine", "shared", "shared (internal/icmp), pro-bing (one Pinger per run) or none (the harness alone)")
	mode := flag.String("mode", "datagram", "socket kind: datagram or raw")
	timeout := flag.Duration("timeout", time.Second, "how long a run waits for its reply")
	tick := flag.Duration("tick", scheduler.Tick, "start runs on multiples of this, as the agent's scheduler does (0: each at its own time)")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the measured time to this file")
	flag.Parse()
	if *n < 1 || *n > 1<<20 || *rate <= 0 {
		return fmt.Errorf("-targets must be 1..%d and -rate positive", 1<<20)
	}
	period := time.Duration(float64(time.Second) / *rate)
	targets := make([]netip.Addr, *n)
	for i := range targets {
		v := i + 1
		targets[i] = netip.AddrFrom4([4]byte{127, byte(1 + v>>16), byte(v >> 8), byte(v)})
	}
	var ping func(ctx context.Context, dst netip.Addr, c *counts)
	stats := func() string { return "" }
	switch *engine {
	case "shared":
		m := icmp.ModeDatagram
		if *mode == "raw" {
			m = icmp.ModeRaw
		}
		e, err := icmp.Open(icmp.Options{Mode: m})
		if err != nil {
			return err
		}
		defer e.Close()
		stats = func() string { return fmt.Sprintf("engine stats %+v", e.Stats()) }
		ping = func(ctx context.Context, dst netip.Addr, c *counts) {
			res, err := e.Ping(ctx, icmp.Request{Dst: dst, Count: 1, Timeout: *timeout})
			if err != nil {
				c.fail(err)
				return
			}
			for _, ec := range res.Echoes {
				c.sent.Add(1)
				switch ec.Fate {
				case icmp.Replied:
					c.received.Add(1)
				case icmp.Lost:
					c.lost.Add(1)
				default:
					c.fail(fmt.Errorf("echo %v: %v", ec.Fate, ec.Err))
				}
			}
		}
	case "pro-bing":
		ping = func(ctx context.Context, dst netip.Addr, c *counts) {
			p := probing.New("")
			p.SetIPAddr(&net.IPAddr{IP: dst.AsSlice()})
			p.SetPrivileged(*mode == "raw")
			p.SetLogger(probing.NoopLogger{})
			p.Count, p.Interval, p.Timeout = 1, time.Second, *timeout
			p.RecordRtts, p.RecordTTLs = false, false
			if err := p.RunWithContext(ctx); err != nil {
				c.fail(err)
				return
			}
			s := p.Statistics()
			c.sent.Add(int64(s.PacketsSent))
			c.received.Add(int64(s.PacketsRecv))
			c.lost.Add(int64(s.PacketsSent - s.PacketsRecv))
		}
	case "none":
		ping = func(ctx context.Context, dst netip.Addr, c *counts) {
			if ctx.Err() == nil {
				c.sent.Add(1)
				c.received.Add(1)
			}
		}
	default:
		return fmt.Errorf("-engine %q: want shared, pro-bing or none", *engine)
	}

	// One dispatcher: target i runs at i·period/n within every period.
	var warm, measured counts
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	measureFrom := start.Add(period)
	end := measureFrom.Add(*dur)
	var cpu0 time.Duration
	cpuTaken := false
	for k := 0; ; k++ {
		at := start.Add(time.Duration(k/(*n))*period + time.Duration(k%(*n))*period/time.Duration(*n))
		if !at.Before(end) {
			break
		}
		if !cpuTaken && !at.Before(measureFrom) {
			time.Sleep(time.Until(at))
			cpu0, cpuTaken = cpuTime(), true
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
		}
		if d := time.Until(scheduler.TickAfter(at, *tick)); d > 0 {
			time.Sleep(d)
		}
		c := &warm
		if !at.Before(measureFrom) {
			c = &measured
		}
		dst := targets[k%(*n)]
		wg.Go(func() {
			rctx, rcancel := context.WithTimeout(ctx, *timeout+time.Second)
			defer rcancel()
			ping(rctx, dst, c)
		})
	}
	time.Sleep(time.Until(end))
	cpu1 := cpuTime()
	if *profile != "" {
		pprof.StopCPUProfile()
	}
	wg.Wait()
	rss, hwm := memory()
	fmt.Printf("%-8s %-8s targets %6d × %4.1f Hz: cpu %5.1f %% of one core, rss %5.1f MiB (peak %5.1f), "+
		"sent %d, received %d, lost %d (%.3f %%), failed runs %d\n",
		*engine, *mode, *n, *rate, float64(cpu1-cpu0)*100/float64(*dur), rss, hwm,
		measured.sent.Load(), measured.received.Load(), measured.lost.Load(),
		100*float64(measured.lost.Load())/float64(max(measured.sent.Load(), 1)), measured.failed.Load())
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("         load average %s         %s\n", strings.TrimSpace(string(load)), stats())
	if e, ok := measured.firstErr.Load().(string); ok {
		fmt.Printf("         first failed run: %s\n", e)
	}
	return nil
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memory returns VmRSS and VmHWM in MiB.
func memory() (rss, hwm float64) {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		var kb float64
		if _, err := fmt.Sscanf(line, "VmRSS: %f kB", &kb); err == nil {
			rss = kb / 1024
		}
		if _, err := fmt.Sscanf(line, "VmHWM: %f kB", &kb); err == nil {
			hwm = kb / 1024
		}
	}
	return rss, hwm
}
