package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/netpulse/netpulse/internal/history"
)

// timeout is the ping probes' timeout (the default): a run in flight at a
// reload started at most this long before it.
const timeout = 10 * time.Second

// pingCount is the echoes of a run (the default): a successful run that
// sent fewer was cut short (a distorted sample, if not a loss point).
const pingCount = 10

// benchReload measures reloads by difference: see the package comment.
func benchReload(a *agent, n, reloads int) error {
	if err := a.waitAllRan(n); err != nil {
		return err
	}
	fmt.Printf("%d targets, ping every %s; each reload changes 30 targets and keeps %d\n", n, interval, n-20)
	type row struct {
		at            time.Time
		logged        string
		seen          time.Duration
		state, keptN  int
		falseLoss     int
		falseLossType map[string]int
		cutShort      int // successful runs that sent fewer echoes than configured
	}
	var rows []*row
	first, err := a.families()
	if err != nil {
		return err
	}
	for i := range reloads {
		before, err := a.families()
		if err != nil {
			return err
		}
		runsBefore := byTarget(before, "netpulse_probe_runs_total", nil)
		lastOK := scalar(before, "netpulse_config_last_reload_success_timestamp_seconds")
		if err := os.WriteFile(filepath.Join(a.dir, "netpulse.yml"), configYAML(a.dir, n, i%2 == 0), 0o600); err != nil {
			return err
		}
		logged := strings.Count(a.log.String(), "configuration reloaded")
		r := &row{at: time.Now(), falseLossType: map[string]int{}}
		resp, err := http.Post(a.url+"/-/reload", "", nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		// Both a reload by difference and an agent replaced as a whole log
		// "configuration reloaded" once the new configuration runs.
		if err := pollEvery(10*time.Millisecond, time.Minute, func() error {
			if strings.Count(a.log.String(), "configuration reloaded") == logged {
				return fmt.Errorf("reload %d not logged yet", i+1)
			}
			return nil
		}); err != nil {
			return err
		}
		r.seen, r.logged = time.Since(r.at), a.appliedIn()
		var runs, success map[string]float64
		if err := poll(time.Minute, func() error {
			f, err := a.families()
			if err != nil {
				return err
			}
			if scalar(f, "netpulse_config_last_reload_success_timestamp_seconds") == lastOK {
				return fmt.Errorf("reload %d not applied yet", i+1)
			}
			runs = byTarget(f, "netpulse_probe_runs_total", nil)
			success = byTarget(f, "netpulse_probe_success", nil)
			return nil
		}); err != nil {
			return err
		}
		for name, before := range runsBefore {
			if !kept(name, n) {
				continue
			}
			r.keptN++
			if _, present := success[name]; present && runs[name] >= before {
				r.state++
			}
		}
		rows = append(rows, r)
		// One interval: every kept target's next run, and the one that was
		// in flight at the reload, have ended.
		time.Sleep(interval + timeout)
	}
	// After an even number of reloads the configuration is the first
	// again: what the agent holds should be too (replaced probers closed,
	// removed jobs' loops ended).
	last, err := a.families()
	if err != nil {
		return err
	}
	leftovers := fmt.Sprintf("goroutines %.0f → %.0f, open fds %.0f → %.0f, RSS %.1f → %.1f MiB",
		scalar(first, "go_goroutines"), scalar(last, "go_goroutines"), scalar(first, "process_open_fds"),
		scalar(last, "process_open_fds"), scalar(first, "process_resident_memory_bytes")/(1<<20),
		scalar(last, "process_resident_memory_bytes")/(1<<20))
	// The runs as history has them, which survives an agent replaced as a
	// whole (its counters do not).
	if err := a.halt(); err != nil {
		return err
	}
	store, err := history.Open(a.dir)
	if err != nil {
		return err
	}
	defer store.Close()
	for _, sr := range store.SeriesList() {
		if !kept(sr.Target, n) {
			continue
		}
		_, err := store.Each(history.Query{Series: sr.Key, Since: rows[0].at.Add(-timeout), Until: time.Now(),
			Limit: 1 << 20}, func(rec *history.Record) bool {
			for _, r := range rows {
				if rec.Start.Before(r.at.Add(-timeout)) || !rec.Start.Before(r.at.Add(interval)) {
					continue
				}
				switch {
				case rec.Outcome != "success":
					r.falseLoss++
					r.falseLossType[rec.Outcome+"/"+rec.ErrorType]++
				case rec.Values["packets_sent"] < pingCount:
					r.cutShort++
				}
				break
			}
			return true
		})
		if err != nil {
			return err
		}
	}
	fmt.Printf("%-7s %-12s %-10s %-22s %-10s %s\n", "reload", "apply", "POST→log", "state kept (of kept)", "cut short",
		"false loss points (kept targets, from the run in flight to one interval later)")
	var totalFalse, totalKept, totalState int
	for i, r := range rows {
		var types []string
		for k, v := range r.falseLossType {
			types = append(types, fmt.Sprintf("%s×%d", k, v))
		}
		sort.Strings(types)
		fmt.Printf("%-7d %-12s %-10d %-22s %-10d %d %s\n", i+1, r.logged, r.seen.Milliseconds(),
			fmt.Sprintf("%d/%d", r.state, r.keptN), r.cutShort, r.falseLoss, strings.Join(types, " "))
		totalFalse += r.falseLoss
		totalKept += r.keptN
		totalState += r.state
	}
	fmt.Printf("total: state kept %d/%d, false loss points %d (%.1f %% of kept targets per reload)\n",
		totalState, totalKept, totalFalse, 100*float64(totalFalse)/float64(max(1, totalKept)))
	fmt.Printf("before the first reload and after the last: %s\n", leftovers)
	return nil
}
