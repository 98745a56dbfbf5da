package ping

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.yaml.in/yaml/v3"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probe/path"
	"github.com/netpulse/netpulse/internal/testutil"
)

func TestRatio(t *testing.T) {
	for in, want := range map[string]Ratio{"20%": 0.2, "0.5 %": 0.005, "0.25": 0.25, "1": 1} {
		var r Ratio
		if err := yaml.Unmarshal([]byte(in), &r); err != nil || r != want {
			t.Errorf("%q: %v, %v; want %v", in, r, err, want)
		}
	}
	var r Ratio
	if err := yaml.Unmarshal([]byte("lots"), &r); err == nil {
		t.Error("lots: no error")
	}
	if s := Ratio(0.2).String(); s != "20%" {
		t.Errorf("String %q", s)
	}
}

// A target behind a broken link loses every echo: the run triggers a path
// snapshot toward it, in the run's trace (a span per hop under "path
// snapshot"), handed to the evidence sink with the run's id, that shows
// where loss starts; the next run, within min_gap, triggers none.
func TestPathOnTrouble(t *testing.T) {
	testutil.NeedICMP(t)
	testutil.NeedNft(t)
	c := testutil.NewChain(t)
	tel := testutil.NewTelemetry(t)
	deps := testDeps(t, tel.Meters, tel.Traces, "")
	type kept struct {
		id  probe.RunID
		doc path.Doc
	}
	evidence := make(chan kept, 4)
	deps.Evidence = func(ctx context.Context, kind string, v any) {
		id, _ := probe.RunIDFrom(ctx)
		if kind == EvidencePath {
			evidence <- kept{id, v.(path.Doc)}
		}
	}
	cfg := pingConfig("auto")
	cfg.Count, cfg.PacketInterval = 3, 50*time.Millisecond
	cfg.PathOnTrouble = &Trouble{Loss: 0.2, MinGap: time.Minute}
	cfg.PathOnTrouble.defaults()
	p, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	runner, err := probe.NewRunner(tel.Meters, tel.Traces, quiet, 0)
	if err != nil {
		t.Fatal(err)
	}
	target := probe.NewTarget(config.Probe{Name: "wan", Type: TypeName}, config.Target{Name: "dst", Host: c.Target.String()})
	if res := runner.Run(t.Context(), p, target, time.Second); res.Outcome != probe.OutcomeSuccess {
		t.Fatalf("healthy chain: %s %v", res.Outcome, res.Err)
	}
	c.LinkDown(t, 3)
	res := runner.Run(t.Context(), p, target, time.Second)
	if res.Values["loss_ratio"] != 1 {
		t.Fatalf("broken link: loss %v, want 1", res.Values["loss_ratio"])
	}
	var got kept
	select {
	case got = <-evidence:
	case <-time.After(10 * time.Second):
		t.Fatal("no path snapshot within 10 s of a run that lost every echo")
	}
	d := got.doc
	t.Logf("snapshot (%s): %s; loss from hop %d; %d packets in %.2f s", d.Trigger, d.HopList, d.LossFromHop, d.PacketsSent, d.Duration)
	if got.id != res.RunID {
		t.Errorf("evidence of run %v, want the triggering run %v", got.id, res.RunID)
	}
	if d.Trigger != "loss" || d.Reached || d.LossFromHop != 4 || len(d.Hops) != 4 ||
		d.Hops[0].Addresses[0] != c.HomeAddr.String() || d.Hops[2].Addresses[0] != c.InetAddr.String() {
		t.Errorf("snapshot %+v: want loss from hop 4, past %s … %s", d, c.HomeAddr, c.InetAddr)
	}
	// The next run is within min_gap: no snapshot.
	runner.Run(t.Context(), p, target, time.Second)
	if err := p.Close(); err != nil { // waits for snapshots in flight
		t.Fatal(err)
	}
	if len(evidence) != 0 {
		t.Errorf("a second snapshot within min_gap")
	}
	hops := 0
	var snapID [8]byte
	for _, s := range tel.Spans.Ended() {
		if s.Name() == "path snapshot" {
			snapID = s.SpanContext().SpanID()
			if s.SpanContext().TraceID() != res.TraceID {
				t.Errorf("snapshot span in trace %s, want the run's %s", s.SpanContext().TraceID(), res.TraceID)
			}
		}
	}
	for _, s := range tel.Spans.Ended() {
		if s.Parent().SpanID() == snapID && snapID != [8]byte{} {
			hops++
		}
	}
	if hops != 4 {
		t.Errorf("%d hop spans under the snapshot, want 4", hops)
	}
	// Latency: a healthy path reached in 4 hops (the cost of a snapshot
	// that reaches its destination).
	c.LinkUp(t, 3)
	cfg.PathOnTrouble = &Trouble{Latency: time.Nanosecond, MinGap: time.Minute}
	cfg.PathOnTrouble.defaults()
	slow, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	runner.Run(t.Context(), slow, target, time.Second)
	select {
	case got = <-evidence:
		d := got.doc
		t.Logf("snapshot (%s): %s; %d packets in %.2f s", d.Trigger, d.HopList, d.PacketsSent, d.Duration)
		// The first round probes every TTL up to max_hops (the path's
		// length is not known yet), the others the 4 hops.
		if want := DefaultTroubleMaxHops + (DefaultTroubleRounds-1)*4; d.Trigger != "latency" || !d.Reached || len(d.Hops) != 4 || d.PacketsSent != want {
			t.Errorf("snapshot %+v: want the destination reached at hop 4 with %d echoes", d, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no path snapshot within 10 s of a run over its latency threshold")
	}
	if err := slow.Close(); err != nil {
		t.Fatal(err)
	}
	m := tel.Collect(t)
	if v, _ := testutil.Value(m["netpulse.ping.path_snapshots"], attribute.String("trigger", "loss")); v != 1 {
		t.Errorf("netpulse.ping.path_snapshots %v, want 1", v)
	}
	if v, _ := testutil.Value(m["netpulse.ping.path_snapshot.packets"]); v != float64(d.PacketsSent+got.doc.PacketsSent) {
		t.Errorf("netpulse.ping.path_snapshot.packets %v, want %d", v, d.PacketsSent+got.doc.PacketsSent)
	}
}
