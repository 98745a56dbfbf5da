package probe

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/logging"
	"github.com/netpulse/netpulse/internal/testutil"
)

func TestRunIDRoundTrip(t *testing.T) {
	start := time.Unix(1700000000, 123456789)
	id := NewRunID(target, start)
	if id.Series != SeriesKey("wan", "gw") || id.Start != start.UnixNano() {
		t.Fatalf("id = %+v", id)
	}
	s := id.String()
	back, err := ParseRunID(s)
	if err != nil || back != id || len(s) != 32 {
		t.Errorf("ParseRunID(%q) = %+v, %v; want %+v", s, back, err, id)
	}
	for _, bad := range []string{"", "xyz", s[:31], s + "0", "zz" + s[2:]} {
		if _, err := ParseRunID(bad); err == nil {
			t.Errorf("ParseRunID(%q) accepted", bad)
		}
	}
	if SeriesKey("a", "bc") == SeriesKey("ab", "c") {
		t.Error("series keys of different pairs collide")
	}
}

func TestTargetCarriesItsConfig(t *testing.T) {
	p := config.Probe{Name: "wan", Type: "ping", Targets: []config.Target{{Name: "a", Host: "h1"}, {Name: "b", Host: "h2"}}}
	tg := NewTarget(p, p.Targets[1])
	if len(tg.Config.Targets) != 1 || tg.Config.Targets[0].Name != "b" || len(p.Targets) != 2 {
		t.Errorf("target config = %+v (probe's targets %d)", tg.Config.Targets, len(p.Targets))
	}
}

func TestOnDemandRunReportsStartAndCapturesLogs(t *testing.T) {
	tel := testutil.NewTelemetry(t)
	var out bytes.Buffer
	logger, err := logging.New(&out, "info", "text")
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRunner(tel.Meters, tel.Traces, logger, 0)
	if err != nil {
		t.Fatal(err)
	}
	var results []Result
	r.OnResult = func(res Result) { results = append(results, res) }
	prober := proberFunc(func(ctx context.Context, _ *Target) (Values, error) {
		logger.DebugContext(ctx, "inside the run", "step", 1)
		return Values{"x": 1}, nil
	})

	var started []Result
	ctx := WithDemand(context.Background(), &Demand{Started: func(res Result) { started = append(started, res) }})
	res := r.Run(ctx, prober, target, time.Second)
	scheduled := r.Run(context.Background(), prober, target, time.Second)

	if len(started) != 1 || started[0].RunID != res.RunID || started[0].TraceID != res.TraceID || !started[0].TraceID.IsValid() {
		t.Errorf("Started got %+v; the run's id %v, trace %v", started, res.RunID, res.TraceID)
	}
	if !res.OnDemand || scheduled.OnDemand || len(results) != 2 {
		t.Errorf("on demand: %v, scheduled: %v, %d results", res.OnDemand, scheduled.OnDemand, len(results))
	}
	if res.RunID.Series != target.Key || res.RunID.Start != res.Start.UnixNano() {
		t.Errorf("run id %+v does not name the series and start", res.RunID)
	}
	if len(res.Logs) == 0 || res.Logs[0].Message != "inside the run" || res.Logs[0].Level != "DEBUG" {
		t.Errorf("captured logs = %+v, want the prober's debug line first", res.Logs)
	}
	if bytes.Contains(out.Bytes(), []byte("inside the run")) {
		t.Error("a debug line reached an info-level log")
	}
}
