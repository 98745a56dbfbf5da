package api

import (
	"time"

	"github.com/netpulse/netpulse/internal/probe"
)

// LastStart returns when the target's latest run started, from history
// (restored at every start), or the zero time without one; a skipped run
// (budget, exclusivity) does not count: nothing was measured. The
// scheduler's first_run: soon reads it.
func (a *API) LastStart(t *probe.Target) time.Time {
	last, _ := a.opts.Feed.state(t.Key)
	if last == nil || last.Outcome == probe.OutcomeSkipped {
		return time.Time{}
	}
	return last.Start
}
