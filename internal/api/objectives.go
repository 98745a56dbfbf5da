package api

import (
	"sync"
	"time"

	"github.com/netpulse/netpulse/internal/history"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/slo"
)

// objectiveJSON is one objective of a target with the agent's own figure of
// it from the history (internal/slo): sli and budget_remaining are null
// without runs in the window, and for speed (the plan is Prometheus').
type objectiveJSON struct {
	Name            string   `json:"name"`
	Target          float64  `json:"target"`
	WindowSeconds   float64  `json:"window_seconds"`
	SLI             *float64 `json:"sli"`
	BudgetRemaining *float64 `json:"budget_remaining"`
}

// maintenanceJSON is the target's maintenance state; omitted for a target
// no window covers.
type maintenanceJSON struct {
	Active bool       `json:"active"`
	Reason string     `json:"reason"`
	Until  *time.Time `json:"until"`
}

// objectivesTTL is how long a target's figures are fresh: they read up to
// 30 days of history (about 45 ms for 30 days of 30-s results), and move
// slowly.
const objectivesTTL = time.Minute

// objectiveCache keeps each target's last figures. A stale entry is
// answered as it is while one goroutine recomputes it, so a probes answer
// waits for history only the first time a target is asked for.
type objectiveCache struct {
	mu sync.Mutex
	m  map[*probe.Target]*cachedObjectives
}

type cachedObjectives struct {
	at         time.Time
	list       []objectiveJSON
	refreshing bool
}

func (a *API) now() time.Time {
	if a.opts.Now != nil {
		return a.opts.Now()
	}
	return time.Now()
}

// objectives returns t's objectives with their figures, nil without any.
func (a *API) objectives(t *probe.Target) []objectiveJSON {
	if len(t.Objectives().Each()) == 0 {
		return nil
	}
	now := a.now()
	c := &a.objectiveCache
	c.mu.Lock()
	e, ok := c.m[t]
	switch {
	case !ok:
		c.mu.Unlock()
		list := a.computeObjectives(t, now)
		c.mu.Lock()
		if c.m == nil {
			c.m = map[*probe.Target]*cachedObjectives{}
		}
		c.m[t] = &cachedObjectives{at: now, list: list}
		c.mu.Unlock()
		return list
	case (now.Sub(e.at) >= objectivesTTL || now.Before(e.at)) && !e.refreshing:
		e.refreshing = true
		go func() {
			var list []objectiveJSON
			select {
			case <-a.closing: // the store may be closing: keep the old figures
				list = e.list
			default:
				list = a.computeObjectives(t, now)
			}
			c.mu.Lock()
			e.at, e.list, e.refreshing = now, list, false
			c.mu.Unlock()
		}()
	}
	list := e.list
	c.mu.Unlock()
	return list
}

// computeObjectives judges t's objectives on its history up to now.
func (a *API) computeObjectives(t *probe.Target, now time.Time) []objectiveJSON {
	objs := t.Objectives().Each()
	var longest time.Duration
	for _, o := range objs {
		longest = max(longest, time.Duration(o.Window))
	}
	var values slo.Values
	if typ := a.opts.Types.Lookup(t.Type); typ != nil {
		for _, v := range typ.Values {
			switch v.Role {
			case probe.RoleLatency:
				values.Latency = v.Name
			case probe.RoleLoss:
				values.Loss = v.Name
			}
		}
	}
	var buckets []history.Bucket
	if a.opts.Store != nil {
		var err error
		if buckets, err = a.opts.Store.Aggregate(t.Key, now.Add(-longest), now, slo.Step); err != nil && a.opts.Logger != nil {
			a.opts.Logger.Warn("objectives: history query failed", "probe", t.Probe, "target", t.Name, "error", err)
		}
	}
	inMaintenance := func(at time.Time) bool { on, _, _ := t.MaintenanceAt(at); return on }
	list := make([]objectiveJSON, 0, len(objs))
	for _, o := range objs {
		since := now.Add(-time.Duration(o.Window))
		first := 0
		for first < len(buckets) && buckets[first].Start.Before(since) {
			first++
		}
		s := slo.Compute(o, buckets[first:], values, inMaintenance)
		oj := objectiveJSON{Name: o.Name, Target: float64(o.Target), WindowSeconds: time.Duration(o.Window).Seconds()}
		if s.OK {
			oj.SLI, oj.BudgetRemaining = &s.SLI, &s.BudgetRemaining
		}
		list = append(list, oj)
	}
	return list
}

// maintenance returns t's maintenance state, nil when no window covers it.
func (a *API) maintenance(t *probe.Target) *maintenanceJSON {
	if len(t.Maintenance) == 0 {
		return nil
	}
	on, reason, until := t.MaintenanceAt(a.now())
	m := &maintenanceJSON{Active: on, Reason: reason}
	if on {
		m.Until = &until
	}
	return m
}
