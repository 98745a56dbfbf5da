package history

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/logging"
	"github.com/netpulse/netpulse/internal/probe"
)

func newTarget(probeName, typ, name string) *probe.Target {
	p := config.Probe{Name: probeName, Type: typ, Interval: time.Second, Timeout: time.Second,
		Targets: []config.Target{{Name: name, Host: "127.0.0.1"}}}
	return probe.NewTarget(p, p.Targets[0])
}

// pingResult is a result shaped like the ping probe's.
func pingResult(t *probe.Target, start time.Time, rtt float64) probe.Result {
	return probe.Result{Target: t, Start: start, Duration: 2500 * time.Millisecond, Outcome: probe.OutcomeSuccess,
		RunID: probe.NewRunID(t, start), TraceID: trace.TraceID{1, 2, 3, byte(start.Unix())},
		Values: probe.Values{"packets_sent": 10, "packets_received": 10, "packets_duplicate": 0, "loss_ratio": 0,
			"rtt_min_seconds": rtt * 0.9, "rtt_avg_seconds": rtt, "rtt_max_seconds": rtt * 1.2,
			"rtt_stddev_seconds": rtt * 0.05, "jitter_seconds": rtt * 0.03}}
}

func open(t testing.TB, dir string) *Store {
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPutGetAndSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	tg := newTarget("wan", "ping", "gw")
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 123, time.UTC)
	ok := pingResult(tg, t0, 0.012)
	ok.OnDemand = true
	ok.Logs = []logging.Line{{Time: t0.Add(time.Millisecond), Level: "DEBUG", Message: "burst done",
		Attrs: []logging.Attr{{Key: "sent", Value: "10"}}}}
	failed := probe.Result{Target: tg, Start: t0.Add(time.Second), Duration: time.Second, Outcome: probe.OutcomeFailure,
		ErrorType: probe.ErrNoReply, Err: errors.New("ping 127.0.0.1: no reply to 10 packets"),
		RunID: probe.NewRunID(tg, t0.Add(time.Second)), Values: probe.Values{"loss_ratio": 1, "weird": -2.5}}
	if err := s.Put([]probe.Result{ok, failed}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, dir) // history survives a restart
	defer s.Close()
	rec, found, err := s.Get(ok.RunID)
	if err != nil || !found {
		t.Fatalf("Get: found=%v err=%v", found, err)
	}
	if rec.RunID != ok.RunID.String() || rec.Probe != "wan" || rec.Target != "gw" || rec.Type != "ping" ||
		!rec.Start.Equal(t0) || rec.Duration != 2.5 || rec.Outcome != "success" || !rec.OnDemand ||
		rec.TraceID != ok.TraceID.String() || rec.Values["rtt_avg_seconds"] != 0.012 || rec.Values["packets_sent"] != 10 {
		t.Errorf("record = %+v", rec)
	}
	if len(rec.Logs) != 1 || rec.Logs[0].Message != "burst done" || !rec.Logs[0].Time.Equal(t0.Add(time.Millisecond)) ||
		rec.Logs[0].Attrs[0] != (logging.Attr{Key: "sent", Value: "10"}) {
		t.Errorf("logs = %+v", rec.Logs)
	}
	cfg, err := s.Config(rec.ConfigKey)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := cfg.(map[string]any); m["name"] != "wan" || m["interval"] != "1s" {
		t.Errorf("config = %#v", cfg)
	}
	rec, _, _ = s.Get(failed.RunID)
	if rec.Outcome != "failure" || rec.ErrorType != "no_reply" || !strings.Contains(rec.Error, "no reply") ||
		rec.Values["weird"] != -2.5 || rec.TraceID != "" {
		t.Errorf("failed record = %+v", rec)
	}
	if _, found, _ := s.Get(probe.RunID{Series: tg.Key, Start: 1}); found {
		t.Error("found a run that does not exist")
	}
	if _, found, _ := s.Get(probe.RunID{Series: 42, Start: t0.UnixNano()}); found {
		t.Error("found a run of an unknown series")
	}
}

func TestOpenTwiceIsLocked(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	defer s.Close()
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open: %v, want ErrLocked", err)
	}
}

func TestResultsWindowAndLimit(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	tg, other := newTarget("wan", "ping", "a"), newTarget("wan", "ping", "b")
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var batch []probe.Result
	for i := range 100 {
		batch = append(batch, pingResult(tg, t0.Add(time.Duration(i)*time.Second), float64(i)/1000),
			pingResult(other, t0.Add(time.Duration(i)*time.Second), 1))
	}
	if err := s.Put(batch); err != nil {
		t.Fatal(err)
	}
	recs, more, err := s.Results(Query{Series: tg.Key, Since: t0.Add(10 * time.Second), Until: t0.Add(20 * time.Second), Limit: 100})
	if err != nil || more || len(recs) != 10 || !recs[0].Start.Equal(t0.Add(10*time.Second)) || recs[0].Target != "a" {
		t.Fatalf("window [10s,20s): %d records, more=%v, err=%v, first %+v", len(recs), more, err, recs)
	}
	recs, more, _ = s.Results(Query{Series: tg.Key, Since: t0, Until: t0.Add(time.Hour), Limit: 5, Desc: true})
	if !more || len(recs) != 5 || !recs[0].Start.Equal(t0.Add(99*time.Second)) || !recs[4].Start.Equal(t0.Add(95*time.Second)) {
		t.Errorf("newest 5: more=%v %+v", more, recs)
	}
	last, ok, _ := s.Last(tg.Key)
	if !ok || !last.Start.Equal(t0.Add(99*time.Second)) {
		t.Errorf("last = %+v", last)
	}
	buckets, err := s.Aggregate(tg.Key, t0, t0.Add(time.Hour), time.Minute)
	if err != nil || len(buckets) != 2 || buckets[0].Runs != 60 || buckets[1].Runs != 40 {
		t.Fatalf("aggregate: %v %+v", err, buckets)
	}
	st := buckets[0].Values["rtt_avg_seconds"]
	if st.Min != 0 || st.Max != 0.059 || fmt.Sprintf("%.4f", st.Avg) != "0.0295" {
		t.Errorf("first minute rtt_avg = %+v", st)
	}
}

func TestConfigRedaction(t *testing.T) {
	out := string(redactedYAML(map[string]any{"name": "x", "http": map[string]any{
		"headers": map[string]string{"authorization": "Bearer s3cret"}, "password": "hunter2", "token_file": ""}}))
	if strings.Contains(out, "s3cret") || strings.Contains(out, "hunter2") || !strings.Contains(out, "<redacted>") ||
		!strings.Contains(out, "name: x") {
		t.Errorf("redacted config:\n%s", out)
	}
}
