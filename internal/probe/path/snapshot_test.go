package path

import (
	"net/netip"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/icmp"
)

// Pure logic of the hop list: built from echo fates as the engine reports
// them, per TTL and round.
var (
	r1, r2, r3 = netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.6"), netip.MustParseAddr("198.18.0.10")
	dst        = netip.MustParseAddr("198.18.0.14")
)

// rounds builds samples: per TTL a string of fates per round, e.g. "tt.t"
// (t: the router answered time exceeded, r: the destination replied, u:
// unreachable, .: lost).
func build(from []netip.Addr, fates ...string) [][]sample {
	out := make([][]sample, len(fates))
	for i, f := range fates {
		for r, c := range f {
			s := sample{round: r, rtt: time.Duration(i+1) * time.Millisecond}
			switch c {
			case 't':
				s.fate, s.from = icmp.TTLExceeded, from[i]
			case 'r':
				s.fate, s.from = icmp.Replied, dst
			case 'u':
				s.fate, s.from = icmp.Unreachable, from[i]
			default:
				s.fate, s.rtt = icmp.Lost, 0
			}
			out[i] = append(out[i], s)
		}
	}
	return out
}

func TestAnalyze(t *testing.T) {
	routers := []netip.Addr{r1, r2, r3, dst, dst, dst}
	cases := []struct {
		name     string
		fates    []string
		list     string
		reached  bool
		lossFrom int
		limited  int
		dstLoss  float64
	}{
		{"clean", []string{"tttt", "tttt", "tttt", "rrrr", "rrrr"}, "198.18.0.2 198.18.0.6 198.18.0.10 198.18.0.14", true, 0, 0, 0},
		// Hop 2 answers one echo in four, everything beyond answers: its
		// loss is the router's rate limit, not the path's.
		{"rate-limited hop", []string{"tttt", "t...", "tttt", "rrrr"}, "198.18.0.2 198.18.0.6 198.18.0.10 198.18.0.14", true, 0, 1, 0},
		// A router that never answers is a * in the middle, not loss.
		{"silent middle hop", []string{"tttt", "....", "tttt", "rrrr"}, "198.18.0.2 * 198.18.0.10 198.18.0.14", true, 0, 1, 0},
		// Broken after hop 2: the path ends with one silent hop, where loss starts.
		{"broken link", []string{"tttt", "tttt", "....", "....", "...."}, "198.18.0.2 198.18.0.6 *", false, 3, 0, 1},
		{"nothing answers", []string{"....", "....", "...."}, "*", false, 1, 0, 1},
		{"unreachable", []string{"tttt", "tttt", "uuuu", "...."}, "198.18.0.2 198.18.0.6 198.18.0.10!", false, 3, 0, 1},
		// Loss from hop 2 on to the destination: real loss, starting at 2.
		{"lossy link", []string{"tttt", "tt..", "t.t.", "r..r"}, "198.18.0.2 198.18.0.6 198.18.0.10 198.18.0.14", true, 2, 0, 0.5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := analyze(dst, build(routers, c.fates...), 4)
			if got := s.List(); got != c.list {
				t.Errorf("list %q, want %q", got, c.list)
			}
			if s.Reached != c.reached || s.LossFrom != c.lossFrom || s.RateLimitedHops() != c.limited || s.DstLoss() != c.dstLoss {
				t.Errorf("reached %v loss from %d rate-limited %d dst loss %g, want %v %d %d %g\n%s",
					s.Reached, s.LossFrom, s.RateLimitedHops(), s.DstLoss(), c.reached, c.lossFrom, c.limited, c.dstLoss, s)
			}
		})
	}
}

func TestHopStatistics(t *testing.T) {
	ss := []sample{
		{fate: icmp.TTLExceeded, from: r1, rtt: 3 * time.Millisecond},
		{fate: icmp.TTLExceeded, from: r2, rtt: 1 * time.Millisecond},
		{fate: icmp.TTLExceeded, from: r1, rtt: 2 * time.Millisecond},
		{fate: icmp.Lost},
		{fate: icmp.SendFailed},
	}
	h := hopOf(1, ss)
	if h.Sent != 4 || h.Received != 3 || h.RTTMin != time.Millisecond || h.RTTMax != 3*time.Millisecond || h.RTTAvg != 2*time.Millisecond {
		t.Errorf("hop %+v: want 4 sent (a failed send is not), 3 received, RTT 1/2/3 ms", h)
	}
	if len(h.Addrs) != 2 || h.Addrs[0] != r1 {
		t.Errorf("addresses %v, want the most frequent (%v) first", h.Addrs, r1)
	}
}

// The hash changes with the list; Changed ignores silent hops and the
// order of a hop's addresses, not a different address or length.
func TestRouteChange(t *testing.T) {
	routers := []netip.Addr{r1, r2, r3}
	base := analyze(dst, build(routers, "tt", "tt", "tt", "rr"), 2)
	silent := analyze(dst, build(routers, "tt", "..", "tt", "rr"), 2)
	other := analyze(dst, build([]netip.Addr{r1, r3, r2}, "tt", "tt", "tt", "rr"), 2)
	shorter := analyze(dst, build(routers, "tt", "tt", "rr"), 2)
	if base.Hash() == silent.Hash() || base.Hash() == other.Hash() || base.Hash() != analyze(dst, build(routers, "tt", "tt", "tt", "rr"), 2).Hash() {
		t.Error("the hash must follow the hop list")
	}
	if Changed(base, silent) {
		t.Error("a hop silent in one run is no route change")
	}
	if !Changed(base, other) || !Changed(base, shorter) {
		t.Error("another address at a hop, or another length, is a route change")
	}
}

func TestJitter(t *testing.T) {
	if got := jitter([]time.Duration{1 * time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond}); got != 1500*time.Microsecond {
		t.Errorf("jitter %v, want 1.5ms", got)
	}
}
