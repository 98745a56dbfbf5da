package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// benchReload measures reloads by difference: see the package comment.
func benchReload(a *agent, n, reloads int) error {
	if err := a.waitAllRan(n); err != nil {
		return err
	}
	fmt.Printf("%d targets, ping every %s; each reload changes 30 targets and keeps %d\n", n, interval, n-20)
	fmt.Printf("%-7s %-12s %-13s %-22s %s\n", "reload", "logged", "seen (ms)", "state kept (of kept)",
		"false loss points (kept, next interval)")
	var totalFalse, totalKept, totalState int
	for i := range reloads {
		before, err := a.families()
		if err != nil {
			return err
		}
		runsBefore := byTarget(before, "netpulse_probe_runs_total", nil)
		badBefore := byTarget(before, "netpulse_probe_runs_total", notSuccess)
		lastOK := scalar(before, "netpulse_config_last_reload_success_timestamp_seconds")
		if err := os.WriteFile(filepath.Join(a.dir, "netpulse.yml"), configYAML(a.dir, n, i%2 == 0), 0o600); err != nil {
			return err
		}
		sent := time.Now()
		resp, err := http.Post(a.url+"/-/reload", "", nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		var after map[string]map[string]float64
		if err := poll(time.Minute, func() error {
			f, err := a.families()
			if err != nil {
				return err
			}
			if scalar(f, "netpulse_config_last_reload_success_timestamp_seconds") == lastOK {
				return fmt.Errorf("reload %d not applied yet", i+1)
			}
			after = map[string]map[string]float64{
				"runs":    byTarget(f, "netpulse_probe_runs_total", nil),
				"success": byTarget(f, "netpulse_probe_success", nil),
			}
			return nil
		}); err != nil {
			return err
		}
		applied := time.Since(sent)
		logged := a.appliedIn()
		keptN, state := 0, 0
		for name, r := range runsBefore {
			if !kept(name, n) {
				continue
			}
			keptN++
			_, present := after["success"][name]
			if after["runs"][name] >= r && present {
				state++
			}
		}
		// One interval: every kept target's next run, and the one that was
		// in flight at the reload, have ended.
		time.Sleep(interval + 10*time.Second)
		f, err := a.families()
		if err != nil {
			return err
		}
		falseLoss := 0
		for name, v := range byTarget(f, "netpulse_probe_runs_total", notSuccess) {
			if kept(name, n) {
				falseLoss += int(v - badBefore[name])
			}
		}
		fmt.Printf("%-7d %-12s %-13d %-22s %d\n", i+1, logged, applied.Milliseconds(), fmt.Sprintf("%d/%d", state, keptN),
			falseLoss)
		totalFalse += falseLoss
		totalKept += keptN
		totalState += state
	}
	fmt.Printf("total: state kept %d/%d, false loss points %d\n", totalState, totalKept, totalFalse)
	return nil
}
