package main

import (
	"fmt"
	"time"
)

// soak runs the agent for d and prints its resident memory, Go heap goal,
// goroutines and open file descriptors at the start (once every target has
// run), the middle and the end, from its own /metrics (process and Go
// collectors). The heap goal (twice what was live after the last
// collection) tells the heap's growth apart from the history file's pages,
// which RSS counts as they are read, and reads the same wherever in a GC
// cycle it is taken.
func soak(a *agent, n int, d time.Duration) error {
	if err := a.waitAllRan(n); err != nil {
		return err
	}
	fmt.Printf("%d targets, ping every %s, for %s\n", n, interval, d)
	fmt.Printf("%-8s %-10s %-11s %-11s %-8s %-10s %s\n", "point", "elapsed", "RSS (MiB)", "heap goal", "gorout.",
		"open fds", "runs not successful")
	begin := time.Now()
	var bad0 float64
	for i, point := range []string{"start", "middle", "end"} {
		if i > 0 {
			time.Sleep(time.Until(begin.Add(d * time.Duration(i) / 2)))
		}
		f, err := a.families()
		if err != nil {
			return err
		}
		bad := 0.0
		for _, v := range byTarget(f, "netpulse_probe_runs_total", notSuccess) {
			bad += v
		}
		if i == 0 {
			bad0 = bad
		}
		fmt.Printf("%-8s %-10s %-11.1f %-11.1f %-8.0f %-10.0f %.0f\n", point, time.Since(begin).Round(time.Second),
			scalar(f, "process_resident_memory_bytes")/(1<<20), scalar(f, "go_memstats_next_gc_bytes")/(1<<20),
			scalar(f, "go_goroutines"),
			scalar(f, "process_open_fds"), bad-bad0)
	}
	return nil
}
