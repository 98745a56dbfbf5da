package ping

import (
	"math"
	"slices"
	"time"
)

// reply is one echo reply: its sequence number and round-trip time.
type reply struct {
	seq int
	rtt time.Duration
}

// summary is what one burst measured.
type summary struct {
	sent, received, duplicates int
	min, avg, max, stddev      time.Duration
	// jitter is the mean absolute difference between the RTTs of
	// consecutive replies, in sequence order (the "mean deviation of
	// successive RTTs" that smokeping and most speed tests report; RFC 3550's
	// interarrival jitter is the same quantity without the 1/16 smoothing).
	jitter time.Duration
	// quantiles are the RTT distribution of the run (p10, p25, median,
	// p75, p90), kept in history so a chart can draw every run's spread
	// (SmokePing's smoke) without storing each echo.
	quantiles [len(quantileLevels)]time.Duration
	// echoes are the run's echoes as evidence, late the replies that came
	// after their echo was given up (shared engine).
	echoes []echoRecord
	late   int
}

// quantileLevels and the value names they are kept under.
var (
	quantileLevels = [...]float64{0.10, 0.25, 0.50, 0.75, 0.90}
	quantileNames  = [...]string{"rtt_p10_seconds", "rtt_p25_seconds", "rtt_median_seconds", "rtt_p75_seconds", "rtt_p90_seconds"}
)

// loss is the share of sent packets that got no reply (0–1). With nothing
// sent (the name did not resolve, the socket failed) nothing got through: 1.
func (s summary) loss() float64 {
	if s.sent == 0 {
		return 1
	}
	return float64(s.sent-s.received) / float64(s.sent)
}

// smallBurst is the most echoes of a run whose replies are summarized in
// arrays on the stack: most runs send a few (count 1 to 10), and their
// copies were allocations per run.
const smallBurst = 16

// summarize computes the statistics of one burst's replies. The standard
// deviation is the population one, as ping(8) reports it.
func summarize(sent int, replies []reply, duplicates int) summary {
	s := summary{sent: sent, received: len(replies), duplicates: duplicates}
	if len(replies) == 0 {
		return s
	}
	var sortBuf [smallBurst]reply // a copy on the stack for a small count
	replies = append(sortBuf[:0], replies...)
	slices.SortFunc(replies, func(a, b reply) int { return a.seq - b.seq })
	s.min, s.max = replies[0].rtt, replies[0].rtt
	var sum, sumDiff float64
	for i, r := range replies {
		s.min, s.max = min(s.min, r.rtt), max(s.max, r.rtt)
		sum += float64(r.rtt)
		if i > 0 {
			sumDiff += math.Abs(float64(r.rtt - replies[i-1].rtt))
		}
	}
	mean := sum / float64(len(replies))
	var sq float64
	for _, r := range replies {
		d := float64(r.rtt) - mean
		sq += d * d
	}
	s.avg = time.Duration(mean)
	s.stddev = time.Duration(math.Sqrt(sq / float64(len(replies))))
	if len(replies) > 1 {
		s.jitter = time.Duration(sumDiff / float64(len(replies)-1))
	}
	var rttBuf [smallBurst]time.Duration
	rtts := rttBuf[:0]
	for _, r := range replies {
		rtts = append(rtts, r.rtt)
	}
	slices.Sort(rtts)
	for i, q := range quantileLevels {
		s.quantiles[i] = quantile(rtts, q)
	}
	return s
}

// quantile of sorted values, linearly interpolated between the two nearest
// ranks (the method numpy and Prometheus' quantile_over_time use).
func quantile(sorted []time.Duration, q float64) time.Duration {
	pos := q * float64(len(sorted)-1)
	lo := int(pos)
	if lo+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	frac := pos - float64(lo)
	return sorted[lo] + time.Duration(frac*float64(sorted[lo+1]-sorted[lo]))
}
