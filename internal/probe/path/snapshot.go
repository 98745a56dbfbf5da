package path

import (
	"cmp"
	"hash/fnv"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netpulse/netpulse/internal/icmp"
)

// sample is what became of one echo sent with a given TTL.
type sample struct {
	fate  icmp.Fate
	from  netip.Addr
	rtt   time.Duration
	round int
}

// answered: the echo got an answer (a reply from the destination, or an
// ICMP error from a router on the way).
func (s sample) answered() bool {
	return s.fate == icmp.Replied || s.fate == icmp.TTLExceeded || s.fate == icmp.Unreachable
}

// maxAddrs bounds the responders kept per hop (ECMP, or a route that
// changed during the run).
const maxAddrs = 4

// Hop is one TTL of a path.
type Hop struct {
	TTL int
	// Addrs answered for this TTL, the most frequent first; empty for a
	// silent hop (shown as *).
	Addrs          []netip.Addr
	Sent, Received int
	// RTT statistics of the answers; zero for a silent hop.
	RTTMin, RTTAvg, RTTMax time.Duration
	// Destination: the target itself answered at this TTL.
	Destination bool
	// Unreachable: the hop answered "destination unreachable": the path
	// ends here.
	Unreachable bool
	// RateLimited: the hop lost echoes that hops beyond it answered. Routers
	// limit (or never send) the ICMP errors they generate, so such loss is
	// the router's, not the path's: it is marked and not counted as loss.
	RateLimited bool
}

// Loss is the share of the hop's echoes without an answer.
func (h Hop) Loss() float64 {
	if h.Sent == 0 {
		return 0
	}
	return 1 - float64(h.Received)/float64(h.Sent)
}

// Silent: no echo sent with this TTL was answered.
func (h Hop) Silent() bool { return len(h.Addrs) == 0 }

// Snapshot is a path as one run saw it.
type Snapshot struct {
	Dst  netip.Addr
	Hops []Hop
	// Reached: the destination answered (it is the last hop).
	Reached bool
	// LossFrom is the TTL from which loss continues to the end of the
	// path (the first hop of the lossy stretch that ends at the
	// destination, or at the last hop probed when it was not reached); 0
	// when the end of the path lost nothing.
	LossFrom int
	// Rounds is the number of rounds the run completed.
	Rounds int
	// DstRTTs are the destination's round trips in round order (jitter).
	DstRTTs []time.Duration
}

// Last is the path's last hop (the destination when Reached).
func (s Snapshot) Last() Hop {
	if len(s.Hops) == 0 {
		return Hop{}
	}
	return s.Hops[len(s.Hops)-1]
}

// DstLoss is the destination's loss: its hop's loss, or 1 when it was not
// reached.
func (s Snapshot) DstLoss() float64 {
	if !s.Reached {
		return 1
	}
	return s.Last().Loss()
}

// RateLimitedHops counts the hops marked RateLimited.
func (s Snapshot) RateLimitedHops() int {
	n := 0
	for _, h := range s.Hops {
		if h.RateLimited {
			n++
		}
	}
	return n
}

// List is the hop list: per TTL the address that answered (several
// joined by |, the most frequent first) or * for a silent hop, space
// separated; "!" follows a hop that reported the destination unreachable.
func (s Snapshot) List() string {
	var b strings.Builder
	for i, h := range s.Hops {
		if i > 0 {
			b.WriteByte(' ')
		}
		if h.Silent() {
			b.WriteByte('*')
			continue
		}
		for j, a := range h.Addrs {
			if j > 0 {
				b.WriteByte('|')
			}
			b.WriteString(a.String())
		}
		if h.Unreachable {
			b.WriteByte('!')
		}
	}
	return b.String()
}

// Hash is a 32-bit FNV-1a hash of the hop list with each hop's addresses
// sorted (so ECMP answering in another order is the same path): exact as
// a float64 value and a gauge. It changes whenever the list does.
func (s Snapshot) Hash() uint32 {
	h := fnv.New32a()
	for _, hop := range s.Hops {
		addrs := slices.Clone(hop.Addrs)
		slices.SortFunc(addrs, netip.Addr.Compare)
		for _, a := range addrs {
			h.Write(a.AsSlice())
		}
		h.Write([]byte{'/', byte(hop.TTL), boolByte(hop.Unreachable)})
	}
	h.Write([]byte{boolByte(s.Reached)})
	return h.Sum32()
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// Changed tells whether the route differs from prev: the destination was
// reached in one and not the other, the paths have different lengths, or
// at some TTL both saw answers and no address in common. A hop silent in
// one of them is no change (a router limiting its ICMP errors answers in
// some runs only).
func Changed(prev, cur Snapshot) bool {
	if prev.Reached != cur.Reached || len(prev.Hops) != len(cur.Hops) {
		return true
	}
	for i := range cur.Hops {
		a, b := prev.Hops[i].Addrs, cur.Hops[i].Addrs
		if len(a) > 0 && len(b) > 0 && !slices.ContainsFunc(a, func(x netip.Addr) bool { return slices.Contains(b, x) }) {
			return true
		}
	}
	return false
}

// analyze builds the snapshot from the samples of TTL 1, 2, … (byTTL[0] is
// TTL 1). The path ends at the first TTL the destination answered, or at
// the first that reported it unreachable, or else one silent hop after the
// last hop that answered (where the trouble starts).
func analyze(dst netip.Addr, byTTL [][]sample, rounds int) Snapshot {
	snap := Snapshot{Dst: dst, Rounds: rounds}
	end, lastAnswer := 0, 0
	for i, ss := range byTTL {
		for _, s := range ss {
			if s.answered() {
				lastAnswer = i + 1
			}
			if s.fate == icmp.Replied || s.fate == icmp.Unreachable {
				end = i + 1
			}
		}
		if end > 0 {
			break
		}
	}
	if end == 0 {
		end = min(lastAnswer+1, len(byTTL))
	}
	for i := range end {
		snap.Hops = append(snap.Hops, hopOf(i+1, byTTL[i]))
	}
	if last := snap.Last(); last.Destination {
		snap.Reached = true
		snap.DstRTTs = dstRTTs(byTTL[end-1])
	}
	markRateLimited(snap.Hops)
	snap.LossFrom = lossFrom(snap)
	return snap
}

func hopOf(ttl int, ss []sample) Hop {
	h := Hop{TTL: ttl}
	count := map[netip.Addr]int{}
	var sum time.Duration
	for _, s := range ss {
		if s.fate == icmp.SendFailed || s.fate == icmp.Pending {
			continue
		}
		h.Sent++
		if !s.answered() {
			continue
		}
		h.Received++
		count[s.from]++
		h.Destination = h.Destination || s.fate == icmp.Replied
		h.Unreachable = h.Unreachable || s.fate == icmp.Unreachable
		if h.Received == 1 || s.rtt < h.RTTMin {
			h.RTTMin = s.rtt
		}
		h.RTTMax = max(h.RTTMax, s.rtt)
		sum += s.rtt
	}
	if h.Received > 0 {
		h.RTTAvg = sum / time.Duration(h.Received)
	}
	for a := range count {
		h.Addrs = append(h.Addrs, a)
	}
	slices.SortFunc(h.Addrs, func(a, b netip.Addr) int {
		return cmp.Or(count[b]-count[a], a.Compare(b))
	})
	if len(h.Addrs) > maxAddrs {
		h.Addrs = h.Addrs[:maxAddrs]
	}
	return h
}

func dstRTTs(ss []sample) []time.Duration {
	ss = slices.Clone(ss)
	slices.SortStableFunc(ss, func(a, b sample) int { return a.round - b.round })
	var out []time.Duration
	for _, s := range ss {
		if s.fate == icmp.Replied {
			out = append(out, s.rtt)
		}
	}
	return out
}

// markRateLimited marks the hops whose loss does not continue: a hop that
// lost more than the best hop beyond it.
func markRateLimited(hops []Hop) {
	best := 2.0 // the lowest loss beyond the hop
	for i := len(hops) - 1; i >= 0; i-- {
		h := &hops[i]
		if h.Sent > 0 && h.Loss() > best {
			h.RateLimited = true
		}
		if h.Sent > 0 {
			best = min(best, h.Loss())
		}
	}
}

// lossFrom is the first TTL of the stretch of lossy hops that ends the
// path, or 0 when the last hop lost nothing. A hop that reported the
// destination unreachable is where it is lost.
func lossFrom(s Snapshot) int {
	last := s.Last()
	if len(s.Hops) == 0 {
		return 0
	}
	if last.Unreachable {
		return last.TTL
	}
	if last.Loss() == 0 && last.Sent > 0 {
		return 0
	}
	from := last.TTL
	for i := len(s.Hops) - 2; i >= 0; i-- {
		if s.Hops[i].Loss() == 0 {
			break
		}
		from = s.Hops[i].TTL
	}
	return from
}

// String is the path as a log line: "1 198.18.0.1 0.3ms 0% | 2 * …".
func (s Snapshot) String() string {
	var b strings.Builder
	for i, h := range s.Hops {
		if i > 0 {
			b.WriteString(" | ")
		}
		b.WriteString(strconv.Itoa(h.TTL))
		b.WriteByte(' ')
		if h.Silent() {
			b.WriteString("*")
			continue
		}
		b.WriteString(h.Addrs[0].String())
		b.WriteString(" " + strconv.FormatFloat(float64(h.RTTAvg.Microseconds())/1000, 'f', 2, 64) + "ms")
		b.WriteString(" loss " + strconv.FormatFloat(100*h.Loss(), 'f', 0, 64) + "%")
		if h.RateLimited {
			b.WriteString(" (rate-limited)")
		}
		if h.Unreachable {
			b.WriteString(" (unreachable)")
		}
	}
	return b.String()
}
