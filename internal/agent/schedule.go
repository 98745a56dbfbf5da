package agent

import (
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/scheduler"
)

// schedule applies the probe's schedule block to a target's job: time
// windows, and a first run soon after start unless history holds a recent
// run (asked when the scheduler starts, once the API has loaded history).
func (a *Agent) schedule(job *scheduler.Job, pc config.Probe, t *probe.Target) {
	if windows := pc.Schedule.ParsedWindows(); len(windows) > 0 {
		job.Open = func(at time.Time) time.Time { return config.NextOpen(windows, at) }
	}
	if pc.Schedule.FirstRun == config.FirstRunSoon {
		job.First = func(now time.Time) time.Time {
			var last time.Time
			if x := a.api.Load(); x != nil {
				last = x.LastStart(t)
			}
			return scheduler.Soon(pc.Interval, last)(now)
		}
	}
}
