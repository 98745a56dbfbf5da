package agent

import (
	"context"
	"time"

	"github.com/netpulse/netpulse/internal/faults"
	"github.com/netpulse/netpulse/internal/probe"
)

// outageSlot is the outage log of one set of targets, with the meters of
// its counter: a reload that changes the targets or the judge replaces it
// (the new one resumes the open outages from history and continues the
// kept targets' counters), and Close unregisters the old one's counter.
type outageSlot struct {
	log     *faults.Outages
	meters  *scopedMeters
	targets []*probe.Target
	judge   *judgeSlot
}

func (s *outageSlot) observe(r probe.Result) {
	if s != nil {
		s.log.Observe(r)
	}
}

// planOutages returns the outage log of c's targets and judge: the
// current one when neither changed, else a new one continuing it.
func (a *Agent) planOutages(c *change) (*outageSlot, bool, error) {
	cur := a.outages.Load()
	if cur != nil && cur.judge == c.judge && len(c.added) == 0 && len(c.removed) == 0 {
		return cur, false, nil
	}
	if cur != nil {
		cur.log.Flush() // the new log resumes what is open from history
	}
	m := newScopedMeters(a.deps.Meters)
	log, err := faults.NewOutages(c.targets, c.judge.judge, a.results.store, m, a.logger)
	if err != nil {
		_ = m.Close()
		return nil, false, err
	}
	if cur != nil {
		log.Continue(cur.log)
	}
	return &outageSlot{log: log, meters: m, targets: c.targets, judge: c.judge}, true, nil
}

// writeOutages writes the current log's changed outages every second
// until ctx ends, then once more.
func (a *Agent) writeOutages(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-ctx.Done():
			if s := a.outages.Load(); s != nil {
				s.log.Flush()
			}
			return
		}
		if s := a.outages.Load(); s != nil {
			s.log.Flush()
		}
	}
}
