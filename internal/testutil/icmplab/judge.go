package icmplab

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"time"
)

// Lost marks an echo without a reply in a pinger's readings.
const Lost time.Duration = -1

// Pinger is any pinger under test: it sends count echo requests to dst,
// interval apart, from inside the lab (see Lab.Do and Lab.Command), and
// returns the RTT of each in the order sent, Lost for those without reply.
type Pinger func(ctx context.Context, dst netip.Addr, count int, interval time.Duration) ([]time.Duration, error)

// SummaryPinger is a pinger that reports a burst's statistics, and the RTTs
// of its replies in the order they arrived if it can, but not which echo
// each belongs to.
type SummaryPinger func(ctx context.Context, dst netip.Addr, count int, interval time.Duration) (Summary, error)

// Summary is what a SummaryPinger reports.
type Summary struct {
	Stats
	// Arrivals are the replies' RTTs in the order they arrived (nil if
	// unknown). They are matched to the echoes in the order the lab
	// delivered their replies: one socket receives in that order.
	Arrivals []time.Duration
	// SendOrder: Arrivals are in the order the echoes were sent instead (a
	// pinger that records its replies once the burst is over).
	SendOrder bool
	// Readings, if the pinger knows them, are each echo's RTT in the order
	// sent (Lost for none), as a Pinger returns them: then the summary is
	// judged as a Pinger's run, and Stats and Arrivals are ignored.
	Readings []time.Duration
}

// Stats summarises a burst as pingers do: RTT mean and population standard
// deviation (ping's mdev) over the replies, and jitter as the mean absolute
// difference between consecutive replies' RTTs in the order sent.
type Stats struct {
	Sent, Received    int
	Mean, Std, Jitter time.Duration
}

// StatsOf summarises readings (Lost for no reply).
func StatsOf(rtts []time.Duration) Stats {
	s := Stats{Sent: len(rtts)}
	var sum, sq, jit float64
	prev := Lost
	for _, r := range rtts {
		if r < 0 {
			continue
		}
		s.Received++
		sum += float64(r)
		sq += float64(r) * float64(r)
		if prev >= 0 {
			jit += math.Abs(float64(r - prev))
		}
		prev = r
	}
	if s.Received == 0 {
		return s
	}
	n := float64(s.Received)
	mean := sum / n
	s.Mean = time.Duration(math.Round(mean))
	s.Std = time.Duration(math.Round(math.Sqrt(max(sq/n-mean*mean, 0))))
	if s.Received > 1 {
		s.Jitter = time.Duration(math.Round(jit / (n - 1)))
	}
	return s
}

// RTTs returns the true RTT of each echo (Lost if dropped).
func RTTs(truth []Echo) []time.Duration {
	r := make([]time.Duration, len(truth))
	for i, e := range truth {
		r[i] = e.RTT()
	}
	return r
}

// Judgement compares a pinger's run with the truth.
type Judgement struct {
	Truth, Read Stats
	// LossExact: the pinger saw exactly the echoes the lab answered as
	// answered and the dropped ones as lost (for a SummaryPinger: the same
	// numbers sent and received).
	LossExact bool
	// Errors is, per echo both saw answered, reading minus truth (nil for
	// a SummaryPinger without Arrivals).
	Errors []time.Duration
	// Late is the responder's own lateness per reply (delivered vs
	// scheduled).
	Late []time.Duration
	// Unheard counts replies delivered after the pinger had returned,
	// counted as lost in Truth (see Echo.Unheard).
	Unheard int
}

// MeanErr, StdErr and JitterErr are the errors of the pinger's statistics.
func (j Judgement) MeanErr() time.Duration   { return j.Read.Mean - j.Truth.Mean }
func (j Judgement) StdErr() time.Duration    { return j.Read.Std - j.Truth.Std }
func (j Judgement) JitterErr() time.Duration { return j.Read.Jitter - j.Truth.Jitter }

// Judge compares readings (in the order sent) with the truth of the same
// run (TruthSince a mark taken before it, for one destination).
func Judge(truth []Echo, readings []time.Duration) (Judgement, error) {
	if len(truth) != len(readings) {
		return Judgement{}, fmt.Errorf("icmplab: the pinger reported %d echoes, the lab saw %d", len(readings), len(truth))
	}
	want := RTTs(truth)
	j := Judgement{Truth: StatsOf(want), Read: StatsOf(readings), LossExact: true, Late: lateness(truth), Unheard: unheard(truth)}
	for i, r := range readings {
		switch {
		case (r < 0) != (want[i] < 0):
			j.LossExact = false
		case r >= 0:
			j.Errors = append(j.Errors, r-want[i])
		}
	}
	return j, nil
}

// JudgeSummary compares a SummaryPinger's report with the truth. Loss is
// exact if the pinger counted as many echoes and replies as the truth (and,
// with Arrivals, recorded as many RTTs).
func JudgeSummary(truth []Echo, read Summary) (Judgement, error) {
	if read.Readings != nil {
		return Judge(truth, read.Readings)
	}
	want := StatsOf(RTTs(truth))
	j := Judgement{Truth: want, Read: read.Stats, LossExact: read.Sent == want.Sent && read.Received == want.Received,
		Late: lateness(truth), Unheard: unheard(truth)}
	if read.Arrivals == nil {
		return j, nil
	}
	var delivered []Echo
	for _, e := range truth {
		if e.RTT() >= 0 {
			delivered = append(delivered, e)
		}
	}
	if len(delivered) != len(read.Arrivals) {
		// Which reply was missed or extra is unknown: no per-echo errors.
		j.LossExact = false
		return j, nil
	}
	if !read.SendOrder {
		sort.SliceStable(delivered, func(a, b int) bool { return delivered[a].Delivered.Before(delivered[b].Delivered) })
	}
	for i, r := range read.Arrivals {
		j.Errors = append(j.Errors, r-delivered[i].RTT())
	}
	return j, nil
}

func unheard(truth []Echo) int {
	n := 0
	for _, e := range truth {
		if e.Unheard {
			n++
		}
	}
	return n
}

func lateness(truth []Echo) []time.Duration {
	var l []time.Duration
	for _, e := range truth {
		if e.RTT() >= 0 {
			l = append(l, e.Late())
		}
	}
	return l
}

// Run runs p against dst inside the lab and judges it against the echoes
// the lab saw for dst during the run; replies delivered after p returned
// count as lost (Echo.Unheard).
func (l *Lab) Run(ctx context.Context, p Pinger, dst netip.Addr, count int, interval time.Duration) (Judgement, error) {
	mark := l.Mark()
	readings, err := p(ctx, dst, count, interval)
	if err != nil {
		return Judgement{}, err
	}
	return Judge(l.heard(mark, dst, time.Now()), readings)
}

// RunStats is Run for a SummaryPinger.
func (l *Lab) RunStats(ctx context.Context, p SummaryPinger, dst netip.Addr, count int, interval time.Duration) (Judgement, error) {
	mark := l.Mark()
	read, err := p(ctx, dst, count, interval)
	if err != nil {
		return Judgement{}, err
	}
	return JudgeSummary(l.heard(mark, dst, time.Now()), read)
}

// heard returns the echoes to dst since mark, those whose reply came after
// end marked Unheard.
func (l *Lab) heard(mark int, dst netip.Addr, end time.Time) []Echo {
	var out []Echo
	for _, e := range l.TruthSince(mark) {
		if e.Dst == dst {
			e.Unheard = !e.Dropped && (e.Replied.IsZero() || e.Delivered.After(end))
			out = append(out, e)
		}
	}
	return out
}

// Quantile returns the q-quantile (0–1, nearest rank) of d, 0 if empty.
func Quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, max(0, int(math.Ceil(q*float64(len(s))))-1))]
}
