package api

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/history"
	"github.com/netpulse/netpulse/internal/logging"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probes"
)

// fixtureConfig has a ping probe with two targets (one with labels) and a
// speed test, parsed by the real configuration code with the real types.
const fixtureConfig = `
storage: {path: %q}
probes:
  - name: lan
    type: ping
    interval: 30s
    timeout: 5s
    targets:
      - {name: gw, host: 192.0.2.1, labels: {site: home, room: "attic & <roof>"}}
      - {name: v6, host: "2001:db8::1"}
    ping: {count: 5, packet_interval: 20ms}
    thresholds: {latency: 100ms, loss: 0.05}
  - name: speed
    type: speedtest
    interval: 24h
    timeout: 30s
    targets: [{name: isp, host: "http://192.0.2.2:8080"}]
    speedtest: {duration: 2s, max_bytes: 50MB}
`

// fixtureDay is when the fixture's history happened: fixed, so that its
// answers are the same bytes on every run (the golden).
var fixtureDay = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

// fixture is an API over a real history store in a temporary directory,
// seeded with fixed results, and a feed that has seen later live ones.
type fixture struct {
	api     *API
	store   *history.Store
	feed    *Feed
	targets map[string]*probe.Target // by "probe/target"
	probes  []config.Probe
	// ids of notable runs, by what they are.
	ids map[string]string
}

// fixtureOptions builds the targets and options of the fixture's
// configuration (no store, no scheduler).
func fixtureOptions(t testing.TB, dir string) (Options, map[string]*probe.Target) {
	t.Helper()
	cfg, err := config.Parse(fmt.Appendf(nil, fixtureConfig, dir), probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Probes: cfg.Probes, Types: probes.Registry, TraceURL: "http://tempo.example/trace/{trace_id}",
		Feed: NewFeed(), Version: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	byName := map[string]*probe.Target{}
	for _, p := range cfg.Probes {
		for _, tc := range p.Targets {
			tg := probe.NewTarget(p, tc)
			if typ := probes.Registry.Lookup(p.Type); typ != nil {
				tg.Policy = typ.Policy
			}
			opts.Targets = append(opts.Targets, tg)
			byName[p.Name+"/"+tc.Name] = tg
		}
	}
	return opts, byName
}

// gwStart is the start of the fixture's i-th stored lan/gw run: every
// 30 s, with a growing sub-second part.
func gwStart(i int) time.Time {
	return fixtureDay.Add(time.Duration(i)*30*time.Second + time.Duration(i*1237)*time.Microsecond)
}

// traceID is a fixed trace id made from n.
func traceID(n int) trace.TraceID {
	var id trace.TraceID
	for i := range id {
		id[i] = byte(n*7 + i)
	}
	return id
}

// pingValues are a ping run's values; rtt NaN is a run without replies.
func pingValues(rtt, loss float64) probe.Values {
	return probe.Values{"packets_sent": 5, "packets_received": 5 * (1 - loss), "packets_duplicate": 0,
		"loss_ratio": loss, "rtt_min_seconds": rtt * 0.9, "rtt_avg_seconds": rtt, "rtt_max_seconds": rtt * 1.25,
		"rtt_stddev_seconds": rtt * 0.05, "jitter_seconds": rtt * 0.03}
}

// newFixture seeds the store with two hours of lan/gw results every 30 s
// (some failed, some on demand with logs), a week of daily speed tests,
// then publishes later live results to the feed and starts one run that is
// still in flight, and builds the API (which reads the last results from
// the store at start). The values exercise the encoder: NaN, infinities,
// exponents, negative zero, escapes.
func newFixture(t testing.TB, sched Scheduler) *fixture {
	t.Helper()
	dir := t.TempDir()
	opts, byName := fixtureOptions(t, dir)
	s, err := history.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	f := &fixture{store: s, feed: opts.Feed, targets: byName, probes: opts.Probes, ids: map[string]string{}}
	gw, speed := byName["lan/gw"], byName["speed/isp"]

	var batch []probe.Result
	for i := range 240 {
		start := gwStart(i)
		rtt := 0.0102 + float64(i%17)*0.000123
		res := probe.Result{Target: gw, Start: start, Duration: 95*time.Millisecond + time.Duration(i)*time.Microsecond,
			Outcome: probe.OutcomeSuccess, RunID: probe.NewRunID(gw, start), TraceID: traceID(i), Values: pingValues(rtt, 0)}
		switch {
		case i%50 == 7: // no reply: loss 1, no RTT
			res.Outcome, res.ErrorType = probe.OutcomeFailure, probe.ErrNoReply
			res.Err = errors.New(`ping 192.0.2.1: no reply to 5 packets ("timeout" <5s> & more) ünïcode` + "\n\ttab")
			res.Values = pingValues(math.NaN(), 1)
			f.ids["failed"] = res.RunID.String()
		case i%50 == 13: // odd figures
			res.Values = probe.Values{"rtt_avg_seconds": 1e-7, "rtt_max_seconds": math.Inf(1), "loss_ratio": math.Copysign(0, -1),
				"packets_sent": 1e21, "jitter_seconds": 123456789.125, "rtt_min_seconds": math.Inf(-1)}
		case i%60 == 20: // on demand, with logs and no trace
			res.OnDemand, res.TraceID = true, trace.TraceID{}
			res.Logs = []logging.Line{
				{Time: start.Add(time.Millisecond), Level: "DEBUG", Message: "burst sent", Attrs: []logging.Attr{{Key: "packets", Value: "5"}}},
				{Time: start.Add(90 * time.Millisecond), Level: "INFO", Message: `done "quoted" <b>`},
			}
			f.ids["on-demand"] = res.RunID.String()
		}
		batch = append(batch, res)
	}
	for d := range 7 {
		start := fixtureDay.Add(-time.Duration(7-d)*24*time.Hour + time.Duration(d*611)*time.Second)
		down := 1.25e8 + float64(d)*1.5e6
		res := probe.Result{Target: speed, Start: start, Duration: 8*time.Second + time.Duration(d)*time.Millisecond,
			Outcome: probe.OutcomeSuccess, RunID: probe.NewRunID(speed, start), TraceID: traceID(1000 + d),
			Values: probe.Values{"download_bytes_per_second": down, "upload_bytes_per_second": down * 0.27,
				"latency_idle_seconds": 0.0051, "latency_download_seconds": 0.0312, "latency_upload_seconds": 0.0456,
				"bytes_used": 9.5e7}}
		if d == 3 {
			res.Outcome, res.ErrorType, res.Err = probe.OutcomeTimeout, probe.ErrTimeout, errors.New("context deadline exceeded")
			res.Values = probe.Values{"download_bytes_per_second": down}
		}
		batch = append(batch, res)
	}
	if err := s.Put(batch); err != nil {
		t.Fatal(err)
	}

	// The API reads each target's last result from the store at start,
	// as in the agent, before any live result.
	opts.Store, opts.Scheduler = s, sched
	f.api = New(opts)

	// Later runs, live only: the store does not have them yet.
	live := fixtureDay.Add(2 * time.Hour)
	v6 := byName["lan/v6"]
	f.feed.Publish(probe.Result{Target: gw, Start: live, Duration: 101 * time.Millisecond, Outcome: probe.OutcomeSuccess,
		RunID: probe.NewRunID(gw, live), TraceID: traceID(5000), Values: pingValues(0.0111, 0.2),
		Logs: []logging.Line{{Time: live, Level: "WARN", Message: "1 of 5 lost"}}})
	long := probe.Result{Target: v6, Start: live.Add(time.Second), Duration: 5 * time.Second, Outcome: probe.OutcomeFailure,
		ErrorType: probe.ErrNetwork, Err: errors.New("sendto 2001:db8::1: " + strings.Repeat("network is unreachable; ", 60)),
		RunID: probe.NewRunID(v6, live.Add(time.Second)), TraceID: traceID(5001), OnDemand: true}
	f.feed.Publish(long)
	f.ids["live-long-error"] = long.RunID.String()
	f.ids["live"] = probe.NewRunID(gw, live).String()
	running := live.Add(3 * time.Second)
	f.feed.Started(probe.Result{Target: gw, Start: running, RunID: probe.NewRunID(gw, running), TraceID: traceID(5002), OnDemand: true})
	f.ids["running"] = probe.NewRunID(gw, running).String()

	return f
}
