package history

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/logging"
	"github.com/netpulse/netpulse/internal/probe"
)

// FuzzDecode feeds the record decoder arbitrary bytes, as a damaged file
// would: an error or a row, never a panic or a runaway allocation.
func FuzzDecode(f *testing.F) {
	tg := newTarget("wan", "ping", "gw")
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	ok := pingResult(tg, t0, 0.012)
	ok.OnDemand = true
	ok.Logs = []logging.Line{{Time: t0, Level: "DEBUG", Message: "m", Attrs: []logging.Attr{{Key: "k", Value: "v"}}}}
	failed := probe.Result{Target: tg, Start: t0, Outcome: "weird", ErrorType: "no_reply", Err: errors.New("x"),
		Values: probe.Values{"loss_ratio": 1}}
	for _, res := range []probe.Result{ok, failed} {
		f.Add(encode(nil, &res, 42, seqNames()))
	}
	f.Add([]byte{})
	f.Add([]byte{recordVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	key := binary.BigEndian.AppendUint64(nil, uint64(t0.UnixNano()))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decode(key, data, true, nil)
		if err != nil {
			return
		}
		if len(r.values) > len(data) || len(r.logs) > len(data) {
			t.Fatalf("%d values and %d log lines from %d bytes", len(r.values), len(r.logs), len(data))
		}
	})
}

// FuzzRoundTrip encodes results built from fuzzed fields and checks that
// decoding gives them back.
func FuzzRoundTrip(f *testing.F) {
	f.Add("success", "", "", int64(1500), false, 0.012, "", "")
	f.Add("failure", "no_reply", "ping: no reply", int64(0), true, -2.5, "DEBUG", "burst done")
	f.Add("odd outcome", "", "", int64(-5), false, math.Inf(1), "", "")
	f.Fuzz(func(t *testing.T, outcome, errType, errText string, durNS int64, onDemand bool, v float64, level, msg string) {
		tg := newTarget("wan", "ping", "gw")
		t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
		res := probe.Result{Target: tg, Start: t0, Duration: time.Duration(durNS), Outcome: outcome, ErrorType: errType,
			OnDemand: onDemand, TraceID: trace.TraceID{1, 2, 3}, Values: probe.Values{"v": v, "n": 7}}
		if errText != "" {
			res.Err = errors.New(errText)
		}
		if level != "" || msg != "" {
			res.Logs = []logging.Line{{Time: t0.Add(time.Millisecond), Level: level, Message: msg}}
		}
		names := seqNames()
		data := encode(nil, &res, 99, names)
		r, err := decode(binary.BigEndian.AppendUint64(nil, uint64(t0.UnixNano())), data, true, nil)
		if err != nil {
			t.Fatalf("decode of a fresh record: %v", err)
		}
		if r.outcome != outcome || r.onDemand != onDemand || r.configKey != 99 || !r.hasTrace ||
			r.duration != max(res.Duration, 0) || r.start != t0.UnixNano() {
			t.Fatalf("round trip changed the record: %+v", r)
		}
		if res.Err != nil || errType != "" {
			want := errText
			if len(want) > maxErrorText {
				want = want[:maxErrorText] + "…"
			}
			if r.errType != errType || r.errText != want {
				t.Fatalf("error %q/%q, want %q/%q", r.errType, r.errText, errType, want)
			}
		}
		got := map[uint32]float64{}
		for _, x := range r.values {
			got[x.name] = x.v
		}
		if gv := got[names("v")]; gv != v && !(math.IsNaN(v) && math.IsNaN(gv)) {
			t.Fatalf("value %v came back as %v", v, gv)
		}
		if got[names("n")] != 7 {
			t.Fatalf("value 7 came back as %v", got[names("n")])
		}
		if len(res.Logs) > 0 && (outcome != probe.OutcomeSuccess || onDemand) {
			if len(r.logs) != 1 || r.logs[0].Message != msg || r.logs[0].Level != level {
				t.Fatalf("logs %+v", r.logs)
			}
		}
	})
}

// seqNames numbers value names as the store's dictionary does.
func seqNames() func(string) uint32 {
	ids := map[string]uint32{}
	return func(name string) uint32 {
		id, ok := ids[name]
		if !ok {
			id = uint32(len(ids))
			ids[name] = id
		}
		return id
	}
}
