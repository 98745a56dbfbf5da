package api

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/history"
)

// countingWriter records the size of each Write.
type countingWriter struct {
	*httptest.ResponseRecorder
	writes []int
}

func (c *countingWriter) Write(b []byte) (int, error) {
	c.writes = append(c.writes, len(b))
	return c.ResponseRecorder.Write(b)
}

// wholeAnswer is the history answer built in one piece from one store
// query, as the handler did before it streamed: the reference.
func wholeAnswer(t *testing.T, f *fixture, since, until time.Time, limit int, desc bool) []byte {
	t.Helper()
	gw := f.targets["lan/gw"]
	buf := []byte(`{"results":[`)
	n := 0
	more, err := f.store.Each(history.Query{Series: gw.Key, Since: since, Until: until, Limit: limit, Desc: desc},
		func(rec *history.Record) bool {
			if n > 0 {
				buf = append(buf, ',')
			}
			res := fromRecord(rec)
			buf = res.appendJSON(buf)
			n++
			return true
		})
	if err != nil {
		t.Fatal(err)
	}
	buf = fmt.Appendf(buf, `],"count":%d,"more":%t,"since":%q,"until":%q}`, n, more,
		since.UTC().Format(time.RFC3339Nano), until.UTC().Format(time.RFC3339Nano))
	return append(buf, '\n')
}

// TestResultsStreamInPages: a history answer is read and written a page
// at a time (several writes, none holding the whole answer), and its bytes
// are those of the answer built whole, in both orders, for limits below,
// at and above the rows there are and on page boundaries.
func TestResultsStreamInPages(t *testing.T) {
	f := newFixture(t, nil)
	defer func(p int) { resultsPage = p }(resultsPage)
	resultsPage = 7
	since, until := fixtureDay.Add(-time.Minute), fixtureDay.Add(3*time.Hour) // the 240 stored lan/gw runs
	for _, desc := range []bool{false, true} {
		for _, limit := range []int{1, 6, 7, 8, 14, 100, 239, 240, 241, 1000} {
			t.Run(fmt.Sprintf("desc=%t/limit=%d", desc, limit), func(t *testing.T) {
				order := "asc"
				if desc {
					order = "desc"
				}
				path := "/api/v1/probes/lan/targets/gw/results?limit=" + strconv.Itoa(limit) + "&order=" + order +
					"&since=" + since.Format(time.RFC3339Nano) + "&until=" + until.Format(time.RFC3339Nano)
				w := &countingWriter{ResponseRecorder: httptest.NewRecorder()}
				f.api.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
				if w.Code != http.StatusOK {
					t.Fatalf("status %d: %s", w.Code, w.Body)
				}
				want := wholeAnswer(t, f, since, until, limit, desc)
				if !bytes.Equal(w.Body.Bytes(), want) {
					t.Errorf("streamed answer differs from the whole one:\n got %.300s\nwant %.300s", w.Body, want)
				}
				if rows := min(limit, 240); rows > 2*resultsPage {
					if len(w.writes) < rows/resultsPage {
						t.Errorf("%d rows written in %d writes (%v), want one per page of %d", rows, len(w.writes), w.writes, resultsPage)
					}
					for _, n := range w.writes {
						if n >= len(want)/2 {
							t.Errorf("a write of %d bytes of a %d-byte answer: not streamed in pages (%v)", n, len(want), w.writes)
						}
					}
				}
			})
		}
	}
}

// TestHeavyQueriesAreCapped: with every heavy-query slot taken, a large
// history read and an aggregate over a long window are answered 429 with
// Retry-After; small ones still run, and a freed slot serves again.
func TestHeavyQueriesAreCapped(t *testing.T) {
	at := newAPITest(t, time.Minute)
	for range heavySlots {
		at.api.heavy <- struct{}{}
	}
	window := "&since=" + fixtureDay.Format(time.RFC3339) + "&until=" + fixtureDay.Add(72*time.Hour).Format(time.RFC3339)
	heavy := []string{
		"/api/v1/probes/lan/targets/gw/results?limit=100000" + window,
		"/api/v1/probes/lan/targets/gw/aggregate?step=1h" + window,
	}
	for _, path := range heavy {
		ans := at.get(path)
		if ans.status != http.StatusTooManyRequests {
			t.Errorf("GET %s with every slot taken: status %d, want 429", path, ans.status)
			continue
		}
		if ans.header.Get("Retry-After") == "" {
			t.Errorf("GET %s: 429 without Retry-After", path)
		}
		if msg := ans.errorText(t); msg == "" {
			t.Errorf("GET %s: 429 without a reason", path)
		}
	}
	for _, path := range []string{
		"/api/v1/probes/lan/targets/gw/results?limit=1000" + window,
		"/api/v1/probes/lan/targets/gw/aggregate?step=1m&since=" + fixtureDay.Format(time.RFC3339) +
			"&until=" + fixtureDay.Add(2*time.Hour).Format(time.RFC3339),
	} {
		if ans := at.get(path); ans.status != http.StatusOK {
			t.Errorf("GET %s (not heavy) with every slot taken: status %d, want 200", path, ans.status)
		}
	}
	<-at.api.heavy
	for _, path := range heavy {
		if ans := at.get(path); ans.status != http.StatusOK {
			t.Errorf("GET %s with a slot free: status %d, want 200: %s", path, ans.status, ans.body)
		}
	}
	if n := len(at.api.heavy); n != heavySlots-1 {
		t.Errorf("%d slots taken after the queries ended, want %d (slots leak)", n, heavySlots-1)
	}
}

// closingWriter closes the store on the answer's first write, and says
// whether it could: bbolt's Close waits for open read transactions, so it
// could not if the handler wrote inside one.
type closingWriter struct {
	*httptest.ResponseRecorder
	store  *history.Store
	closed chan error
}

func (c *closingWriter) Write(b []byte) (int, error) {
	if c.closed == nil {
		c.closed = make(chan error, 1)
		go func() { c.closed <- c.store.Close() }()
		select {
		case err := <-c.closed:
			c.closed <- err
		case <-time.After(30 * time.Second):
			c.closed <- fmt.Errorf("the store could not close: a read transaction is open while writing to the client")
		}
	}
	return c.ResponseRecorder.Write(b)
}

// TestResultsWriteOutsideTransactions: no read transaction is open while
// the answer is written (a slow client would hold the store: its writes
// and its file's growth wait); a store failing after the first page ends
// the connection rather than sending a whole-looking answer.
func TestResultsWriteOutsideTransactions(t *testing.T) {
	f := newFixture(t, nil)
	defer func(p int) { resultsPage = p }(resultsPage)
	resultsPage = 10
	w := &closingWriter{ResponseRecorder: httptest.NewRecorder(), store: f.store}
	path := "/api/v1/probes/lan/targets/gw/results?limit=100&since=" + fixtureDay.Format(time.RFC3339) +
		"&until=" + fixtureDay.Add(3*time.Hour).Format(time.RFC3339)
	var recovered any
	func() {
		defer func() { recovered = recover() }()
		f.api.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	}()
	if w.closed == nil {
		t.Fatal("nothing written")
	}
	if err := <-w.closed; err != nil {
		t.Fatal(err)
	}
	if recovered != http.ErrAbortHandler {
		t.Errorf("store failed after the first page: handler ended with %v, want panic(http.ErrAbortHandler) "+
			"(the connection cut, the body not valid JSON)", recovered)
	}
	if bytes.HasSuffix(w.Body.Bytes(), []byte("}\n")) {
		t.Errorf("a cut answer ends like a whole one: %.100s", w.Body.Bytes()[max(w.Body.Len()-100, 0):])
	}
}
