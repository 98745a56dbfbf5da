package icmplab

import (
	"strings"
	"testing"
	"time"
)

const ms = time.Millisecond

// echoes builds a truth, echoes sent 10 ms apart with the given RTTs
// (negative: dropped).
func echoes(rtts []time.Duration) []Echo {
	t0 := time.Unix(1000, 0)
	var out []Echo
	for i, r := range rtts {
		e := Echo{Seq: uint16(i), Sent: t0.Add(time.Duration(i) * 10 * ms)}
		if r < 0 {
			e.Dropped = true
		} else {
			e.Replied = e.Sent.Add(r - 5*time.Microsecond)
			e.Delivered = e.Sent.Add(r)
		}
		out = append(out, e)
	}
	return out
}

func TestStatsOf(t *testing.T) {
	s := StatsOf([]time.Duration{10 * ms, Lost, 14 * ms, 12 * ms})
	want := Stats{Sent: 4, Received: 3, Mean: 12 * ms, Std: 1632993, Jitter: 3 * ms}
	if s != want {
		t.Errorf("StatsOf = %+v, want %+v", s, want)
	}
	if s := StatsOf([]time.Duration{Lost}); s != (Stats{Sent: 1}) {
		t.Errorf("all lost: %+v", s)
	}
}

func TestJudge(t *testing.T) {
	truth := echoes([]time.Duration{10 * ms, -1, 30 * ms})
	j, err := Judge(truth, []time.Duration{10*ms + 20*time.Microsecond, Lost, 30*ms + 40*time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	if !j.LossExact || len(j.Errors) != 2 || j.Errors[0] != 20*time.Microsecond || j.Errors[1] != 40*time.Microsecond || j.MeanErr() != 30*time.Microsecond {
		t.Errorf("Judge = %+v (mean err %v)", j, j.MeanErr())
	}
	// A pinger that lost an answered echo and "heard" a dropped one.
	if j, _ := Judge(truth, []time.Duration{Lost, 20 * ms, 30 * ms}); j.LossExact {
		t.Errorf("loss judged exact for the wrong echoes")
	}
	if _, err := Judge(truth, []time.Duration{10 * ms}); err == nil || !strings.Contains(err.Error(), "reported 1 echoes, the lab saw 3") {
		t.Errorf("count mismatch: %v", err)
	}
}

func TestJudgeSummaryMatchesArrivalsInDeliveryOrder(t *testing.T) {
	// The second echo's reply overtakes the first's.
	truth := echoes([]time.Duration{30 * ms, 5 * ms, -1})
	read := Summary{Stats: StatsOf([]time.Duration{30*ms + 100*time.Microsecond, 5*ms + 100*time.Microsecond, Lost}),
		Arrivals: []time.Duration{5*ms + 100*time.Microsecond, 30*ms + 100*time.Microsecond}}
	j, err := JudgeSummary(truth, read)
	if err != nil {
		t.Fatal(err)
	}
	if !j.LossExact || len(j.Errors) != 2 || j.Errors[0] != 100*time.Microsecond || j.Errors[1] != 100*time.Microsecond {
		t.Errorf("JudgeSummary = %+v", j)
	}
	// The same replies recorded in the order their echoes were sent.
	inOrder := read
	inOrder.Arrivals, inOrder.SendOrder = []time.Duration{30*ms + 100*time.Microsecond, 5*ms + 100*time.Microsecond}, true
	if j, err := JudgeSummary(truth, inOrder); err != nil || len(j.Errors) != 2 ||
		j.Errors[0] != 100*time.Microsecond || j.Errors[1] != 100*time.Microsecond {
		t.Errorf("JudgeSummary in send order = %+v, %v", j, err)
	}
	read.Arrivals = read.Arrivals[:1]
	if j, err := JudgeSummary(truth, read); err != nil || j.LossExact || j.Errors != nil {
		t.Errorf("1 arrival for 2 delivered replies: %+v, %v", j, err)
	}
	// Readings take precedence over statistics.
	j, err = JudgeSummary(truth, Summary{Readings: []time.Duration{30 * ms, 5 * ms, Lost}})
	if err != nil || !j.LossExact || j.MeanErr() != 0 {
		t.Errorf("JudgeSummary with readings = %+v, %v", j, err)
	}
}

func TestUnheardRepliesCountAsLost(t *testing.T) {
	truth := echoes([]time.Duration{10 * ms, 10 * ms})
	truth[1].Unheard = true
	j, err := Judge(truth, []time.Duration{10 * ms, Lost})
	if err != nil || !j.LossExact || j.Unheard != 1 {
		t.Errorf("Judge = %+v, %v", j, err)
	}
}

func TestQuantile(t *testing.T) {
	d := []time.Duration{5, 1, 4, 2, 3}
	for q, want := range map[float64]time.Duration{0: 1, .5: 3, .8: 4, 1: 5} {
		if got := Quantile(d, q); got != want {
			t.Errorf("Quantile(%v) = %v, want %v", q, got, want)
		}
	}
	if Quantile(nil, .5) != 0 {
		t.Errorf("Quantile of nothing")
	}
}

func TestParsePing(t *testing.T) {
	out := `PING 198.18.0.1 (198.18.0.1) 56(84) bytes of data.
64 bytes from 198.18.0.1: icmp_seq=1 ttl=64 time=10.2 ms
64 bytes from 198.18.0.1: icmp_seq=3 ttl=64 time=102 ms
64 bytes from 198.18.0.1: icmp_seq=3 ttl=64 time=103 ms (DUP!)

--- 198.18.0.1 ping statistics ---
3 packets transmitted, 2 received, +1 duplicates, 33.3333% packet loss, time 40ms
`
	got, err := parsePing(out, 3)
	if err != nil || len(got) != 3 || got[0] != 10200*time.Microsecond || got[1] != Lost || got[2] != 102*ms {
		t.Errorf("parsePing = %v, %v", got, err)
	}
	if _, err := parsePing("64 bytes from x: icmp_seq=4 ttl=64 time=1 ms", 3); err == nil {
		t.Errorf("a sequence number beyond the count: no error")
	}
}

func TestParseFping(t *testing.T) {
	out := "fd00:1ab::1 : 10.2 - 9.87 0.055\n"
	got, err := parseFping(out, Addr6, 4)
	if err != nil || len(got) != 4 || got[0] != 10200*time.Microsecond || got[1] != Lost || got[2] != 9870*time.Microsecond || got[3] != 55*time.Microsecond {
		t.Errorf("parseFping = %v, %v", got, err)
	}
	if _, err := parseFping(out, Addr6, 3); err == nil {
		t.Errorf("4 results for 3 echoes: no error")
	}
	if _, err := parseFping(out, Addr4, 4); err == nil {
		t.Errorf("no line for the destination: no error")
	}
}
