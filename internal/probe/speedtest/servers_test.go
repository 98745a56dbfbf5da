package speedtest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/speedtestserver"
	"github.com/netpulse/netpulse/internal/testutil"
)

func serversTarget() *probe.Target {
	return probe.NewTarget(config.Probe{Name: "speed", Type: TypeName}, config.Target{Name: "pool", Host: ServersHost})
}

// rotate: each run takes the next server of the list, a dead one too (its
// run fails naming it), and starts over after the last.
func TestServersRotate(t *testing.T) {
	a, b := startServer(t, speedtestserver.Options{}), startServer(t, speedtestserver.Options{})
	dead := "http://" + testutil.FreeAddr(t)
	cfg := testConfig(time.Second)
	cfg.Servers, cfg.ServerChoice = []string{a.URL(), dead, b.URL()}, ChoiceRotate
	p, _ := newTestProber(t, cfg, Options{})
	tg := serversTarget()
	for i, want := range []string{a.URL(), dead, b.URL(), a.URL()} {
		sess := newSession(newMeter(p.dialer()))
		r := &Result{}
		_, _, err := p.selectServer(t.Context(), sess, tg, r)
		sess.close()
		if !strings.HasPrefix(r.Server.URL, want+"/") {
			t.Errorf("run %d tested %q, want %s", i, r.Server.URL, want)
		}
		if (want == dead) != (err != nil) {
			t.Errorf("run %d (%s): %v", i, want, err)
		}
	}
}

// lowest_latency: the server that answers latency.txt fastest is tested
// (best of N); a dead one is passed over; none answering fails the run
// with every server's reason.
func TestServersLowestLatency(t *testing.T) {
	fast := startServer(t, speedtestserver.Options{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond) // a far server, not synchronisation
		_, _ = w.Write([]byte("test=test\n"))
	}))
	t.Cleanup(slow.Close)
	dead := "http://" + testutil.FreeAddr(t)
	cfg := testConfig(time.Second)
	cfg.Servers, cfg.ServerChoice = []string{slow.URL, dead, fast.URL()}, ChoiceLowestLatency
	p, _ := newTestProber(t, cfg, Options{})
	sess := newSession(newMeter(p.dialer()))
	defer sess.close()
	r := &Result{}
	if _, _, err := p.selectServer(t.Context(), sess, serversTarget(), r); err != nil || !strings.HasPrefix(r.Server.URL, fast.URL()+"/") {
		t.Errorf("chose %q (%v), want the fast %s", r.Server.URL, err, fast.URL())
	}

	cfg.Servers = []string{dead, dead}
	p, _ = newTestProber(t, cfg, Options{})
	_, _, err := p.selectServer(t.Context(), sess, serversTarget(), &Result{})
	if probe.ErrorType(t.Context(), err) != probe.ErrRefused || !strings.Contains(err.Error(), "none of the 2 servers answered") {
		t.Errorf("no server answering: %v", err)
	}
}
