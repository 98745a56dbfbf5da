package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/netpulse/netpulse/internal/history"
	"github.com/netpulse/netpulse/internal/probe"
)

// Heavy queries: a history answer of more than heavyLimit rows or an
// aggregate over more than heavyWindow reads many rows; at most
// heavySlots run at once, others are answered 429 with Retry-After (a
// client retries; memory and CPU stay bounded whatever the number of
// clients).
const (
	heavyLimit  = 10000
	heavyWindow = 24 * time.Hour
	heavySlots  = 4
	retryAfter  = "2" // seconds
)

// resultsPage is how many rows are read in one store transaction, encoded
// and written before the next are read: the store is never held while a
// slow client reads, and an answer's memory is a page's, not the whole
// answer's. (A variable so that a test can page across small sets.)
var resultsPage = 1000

// acquireHeavy takes a slot for a heavy query, or answers 429 itself and
// returns false. release gives the slot back.
func (a *API) acquireHeavy(w http.ResponseWriter, what string) (release func(), ok bool) {
	select {
	case a.heavy <- struct{}{}:
		return func() { <-a.heavy }, true
	default:
		w.Header().Set("Retry-After", retryAfter)
		writeError(w, http.StatusTooManyRequests, "too many large history queries at once (%d): retry %s later, "+
			"or ask for fewer rows or a shorter window", heavySlots, what)
		return nil, false
	}
}

// streamResults writes the history answer of t in [since, until), a page
// of rows at a time: each page is read in its own short read transaction,
// then written; the next page starts after the last key written. Rows
// written concurrently with the answer may or may not appear in it.
//
// The first page is read before the status is written, so a failing
// store is a 500; a failure later can only end the connection (the body
// is cut short and is not valid JSON, so no client takes it for the
// whole answer).
func (a *API) streamResults(w http.ResponseWriter, t *probe.Target, since, until time.Time, limit int, desc bool) {
	buf := make([]byte, 0, 64<<10)
	buf = append(buf, `{"results":[`...)
	n, remaining := 0, limit
	q := history.Query{Series: t.Key, Since: since, Until: until, Desc: desc}
	more := false
	for page := 0; ; page++ {
		q.Limit = min(resultsPage, remaining)
		var last time.Time
		got := 0
		pageMore, err := a.opts.Store.Each(q, func(rec *history.Record) bool {
			if n > 0 {
				buf = append(buf, ',')
			}
			res := fromRecord(rec)
			buf = res.appendJSON(buf)
			last = rec.Start
			n++
			got++
			return true
		})
		if err != nil {
			a.opts.Logger.Error("history query failed", "probe", t.Probe, "target", t.Name, "error", err)
			if page == 0 {
				writeError(w, http.StatusInternalServerError, "history query failed: %v", err)
				return
			}
			panic(http.ErrAbortHandler)
		}
		remaining -= got
		if !pageMore || remaining == 0 {
			more = pageMore
			break
		}
		if page == 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
		}
		if _, err := w.Write(buf); err != nil {
			return // the client went away
		}
		buf = buf[:0]
		// Keys are start times in nanoseconds, one row per key.
		if desc {
			q.Until = last
		} else {
			q.Since = last.Add(time.Nanosecond)
		}
	}
	buf = fmt.Appendf(buf, `],"count":%d,"more":%t,"since":%q,"until":%q}`, n, more,
		since.UTC().Format(time.RFC3339Nano), until.UTC().Format(time.RFC3339Nano))
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(buf, '\n'))
}

// parseLimit reads the limit query parameter.
func parseLimit(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return defaultLimit, nil
	}
	limit, err := strconv.Atoi(s)
	if err != nil || limit < 1 || limit > maxLimit {
		return 0, fmt.Errorf("limit: must be an integer between 1 and %d, not %q", maxLimit, s)
	}
	return limit, nil
}
