package api

import (
	"net/http"
	"time"

	"github.com/netpulse/netpulse/internal/history"
)

// outageJSON is one entry of the outage log: a target's (probe and target
// set) or a fault domain's (both empty).
type outageJSON struct {
	Probe    string     `json:"probe"`
	Target   string     `json:"target"`
	Domain   string     `json:"domain"`
	Start    time.Time  `json:"start"`
	End      *time.Time `json:"end"` // null while open
	Duration float64    `json:"duration_seconds"`
	Verdict  string     `json:"verdict"`
}

// Outage log bounds: the default window, and the entries one answer holds.
const (
	defaultOutageWindow = 7 * 24 * time.Hour
	maxOutages          = 1000
)

// outages answers the outage log, newest first: the failure periods that
// overlap since–until (default: the last 7 days), of the probe and target
// asked for (both optional; either one names target outages only), or of
// one domain. An open outage's duration runs to now.
func (a *API) outages(w http.ResponseWriter, r *http.Request) {
	since, until, err := window(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	q := r.URL.Query()
	if q.Get("since") == "" {
		since = until.Add(-defaultOutageWindow)
	}
	probeName, target, domain := q.Get("probe"), q.Get("target"), q.Get("domain")
	out := []outageJSON{}
	more := false
	now := time.Now()
	if a.opts.Store != nil {
		err = a.opts.Store.Outages(since, until, func(o history.Outage) bool {
			if (probeName != "" && o.Probe != probeName) || (target != "" && o.Target != target) ||
				((probeName != "" || target != "") && o.IsDomain()) || (domain != "" && o.Domain != domain) {
				return true
			}
			if len(out) == maxOutages {
				more = true
				return false
			}
			j := outageJSON{Probe: o.Probe, Target: o.Target, Domain: o.Domain, Start: o.Start.UTC(), Verdict: o.Verdict}
			end := now
			if !o.Open() {
				e := o.End.UTC()
				j.End, end = &e, e
			}
			j.Duration = max(end.Sub(o.Start), 0).Seconds()
			out = append(out, j)
			return true
		})
		if err != nil {
			writeError(w, http.StatusInternalServerError, "outage log read failed: %v", err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"outages": out, "more": more})
}
