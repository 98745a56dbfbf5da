package icmplab

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/testutil"
)

// TestIputilsPingAgreesWithTruth validates the lab against iputils ping,
// whose receive timestamps are the kernel's (the very ones the lab records
// as Delivered) and whose send timestamps come just before sendmsg: ping
// must read each echo's RTT as the lab's truth, up to its display rounding
// (0.05 ms between 10 and 100 ms) and the time its sendmsg takes to reach
// the device, and see exactly the lab's drops as lost.
func TestIputilsPingAgreesWithTruth(t *testing.T) {
	NeedLab(t)
	testutil.Need(t, testutil.LookPath("ping") != "", "iputils ping (apt-get install iputils-ping)")
	cases := []struct {
		name          string
		base, jitter  time.Duration
		ipv6          bool
		count         int
		interval      time.Duration
		seed          int64
		wantDropsOver int
	}{
		{name: "10ms-ipv4", base: 10 * time.Millisecond, jitter: 2 * time.Millisecond, count: 60, interval: 20 * time.Millisecond, seed: 1},
		{name: "10ms-ipv6", base: 10 * time.Millisecond, jitter: 2 * time.Millisecond, ipv6: true, count: 60, interval: 20 * time.Millisecond, seed: 2},
		{name: "40ms-ipv4", base: 40 * time.Millisecond, jitter: 8 * time.Millisecond, count: 60, interval: 20 * time.Millisecond, seed: 3},
		{name: "40ms-ipv6", base: 40 * time.Millisecond, jitter: 8 * time.Millisecond, ipv6: true, count: 60, interval: 20 * time.Millisecond, seed: 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := Start(t, Schedule{Base: c.base, Jitter: c.jitter, Loss: 0.1, Seed: c.seed})
			dst := l.Addr4
			if c.ipv6 {
				dst = l.Addr6
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			mark := l.Mark()
			readings, err := l.Iputils()(ctx, dst, c.count, c.interval)
			if err != nil {
				t.Fatal(err)
			}
			heard := l.heard(mark, dst, time.Now())
			j, err := Judge(heard, readings)
			if err != nil {
				t.Fatal(err)
			}
			// Replies ping gave up on may still be due: wait for them.
			var truth []Echo
			testutil.Eventually(t, 10*time.Second, func() error {
				truth = l.TruthSince(mark)
				for _, e := range truth {
					if !e.Dropped && e.Delivered.IsZero() {
						return fmt.Errorf("seq %d: reply not delivered yet", e.Seq)
					}
				}
				return nil
			})
			t.Logf("truth: %d sent, %d answered, mean %v std %v jitter %v", j.Truth.Sent, j.Truth.Received, j.Truth.Mean, j.Truth.Std, j.Truth.Jitter)
			t.Logf("ping error: mean %v, std %v, jitter %v; per echo min %v p50 %v p95 %v max %v",
				j.MeanErr(), j.StdErr(), j.JitterErr(), Quantile(j.Errors, 0), Quantile(j.Errors, .5), Quantile(j.Errors, .95), Quantile(j.Errors, 1))
			t.Logf("lab: reply delivered late vs schedule p50 %v p99 %v max %v", Quantile(j.Late, .5), Quantile(j.Late, .99), Quantile(j.Late, 1))

			checkLab(t, l, truth, c.count)
			if j.Unheard > 0 {
				t.Logf("%d replies came after ping had given up on them (the machine held them back)", j.Unheard)
			}
			if !j.LossExact || j.Read.Received != j.Truth.Received {
				t.Errorf("loss: ping got %d of %d replies, the lab answered %d (same echoes: %v)", j.Read.Received, j.Read.Sent, j.Truth.Received, j.LossExact)
			}
			if j.Truth.Received == j.Truth.Sent {
				t.Errorf("the schedule dropped nothing: the loss path went untested (change the seed)")
			}
			// Per echo: ping never reads below the truth beyond its rounding;
			// above it only by its send path, except when a loaded machine
			// preempts ping between its timestamp and sendmsg: hence a loose
			// cap on every echo and a tight one on most.
			within := 0
			for i, r := range readings {
				if r < 0 || heard[i].RTT() < 0 {
					continue
				}
				if e := r - heard[i].RTT(); e < -pingRounding(r)-10*time.Microsecond || e > 20*time.Millisecond {
					t.Errorf("seq %d: ping read %v, the truth is %v", heard[i].Seq, r, heard[i].RTT())
				} else if e <= time.Millisecond {
					within++
				}
			}
			if float64(within) < 0.9*float64(len(j.Errors)) {
				t.Errorf("only %d of %d echoes read within [-0.1, +1] ms of the truth", within, len(j.Errors))
			}
			if p50 := Quantile(j.Errors, .5); p50 < -50*time.Microsecond || p50 > 200*time.Microsecond {
				t.Errorf("median per-echo error %v, want within [-0.05, +0.2] ms", p50)
			}
			// Std and jitter follow from the echoes: when the load disturbed
			// ping on some echo (beyond 1 ms), they are rightly off too.
			if worst := max(Quantile(j.Errors, 1), -Quantile(j.Errors, 0)); worst <= time.Millisecond {
				for name, e := range map[string]time.Duration{"std": j.StdErr(), "jitter": j.JitterErr()} {
					if e.Abs() > 100*time.Microsecond {
						t.Errorf("%s read %v off the truth, want within 0.1 ms", name, e)
					}
				}
			}
		})
	}
}

// pingRounding is half the resolution ping prints an RTT with: 3
// significant digits (10.2 ms), 0.001 ms below 1 ms, whole ms from 100 ms.
func pingRounding(rtt time.Duration) time.Duration {
	switch {
	case rtt >= 100*time.Millisecond-50*time.Microsecond:
		return 500 * time.Microsecond
	case rtt >= 10*time.Millisecond-5*time.Microsecond:
		return 50 * time.Microsecond
	case rtt >= time.Millisecond:
		return 5 * time.Microsecond
	}
	return 500 * time.Nanosecond
}

// checkLab checks the lab's own bookkeeping for one run of count echoes.
func checkLab(t *testing.T, l *Lab, truth []Echo, count int) {
	t.Helper()
	if len(truth) != count {
		t.Errorf("the lab saw %d echo requests, the pinger sent %d", len(truth), count)
	}
	for _, e := range truth {
		want, drop := l.Schedule.Draw(e.Dst, e.Seq)
		switch {
		case e.Delay != want || e.Dropped != drop:
			t.Errorf("seq %d: applied delay %v drop %v, the schedule says %v %v", e.Seq, e.Delay, e.Dropped, want, drop)
		case !e.Dropped && e.Delivered.IsZero():
			t.Errorf("seq %d: answered, but the tap saw no delivery of the reply", e.Seq)
		case !e.Dropped && e.RTT() < e.Delay:
			t.Errorf("seq %d: RTT %v shorter than its scheduled delay %v", e.Seq, e.RTT(), e.Delay)
		}
	}
	// The responder's lateness does not make the truth wrong, but a lab far
	// off its schedule emulates another path than asked.
	var late []time.Duration
	for _, e := range truth {
		if !e.Dropped {
			late = append(late, e.Late())
		}
	}
	if p50 := Quantile(late, .5); p50 > time.Millisecond {
		t.Errorf("replies were delivered %v late (median) against the schedule", p50)
	}
}

func TestCleanupRemovesNamespace(t *testing.T) {
	NeedLab(t)
	var name string
	t.Run("lab", func(t *testing.T) {
		name = Start(t, Schedule{Base: time.Millisecond}).Netns
		// Ends the subtest the way t.Fatal does (runtime.Goexit).
		t.SkipNow()
	})
	if name == "" {
		t.Fatal("no lab was started")
	}
	if _, err := os.Stat("/run/netns/" + name); !os.IsNotExist(err) {
		t.Errorf("/run/netns/%s still exists after cleanup (stat: %v)", name, err)
	}
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	if strings.Contains(string(out), name) {
		t.Errorf("namespace %s still listed after cleanup:\n%s", name, out)
	}
}

func TestDoRunsInsideTheLab(t *testing.T) {
	l := Start(t, Schedule{})
	var local netip.Addr
	err := l.Do(func() error {
		if _, err := net.InterfaceByName(tunName); err != nil {
			return err
		}
		c, err := net.Dial("udp", netip.AddrPortFrom(l.Addr4, 9).String())
		if err != nil {
			return err
		}
		defer c.Close()
		local = c.LocalAddr().(*net.UDPAddr).AddrPort().Addr()
		return nil
	})
	if err != nil {
		t.Fatalf("inside the lab: %v", err)
	}
	if local != Local4 {
		t.Errorf("a socket opened in Do routes from %v, want the lab's %v", local, Local4)
	}
	if _, err := net.InterfaceByName(tunName); err == nil {
		t.Errorf("%s is visible outside Do: the test's own thread joined the lab", tunName)
	}
}

func TestScheduleDraws(t *testing.T) {
	s := Schedule{Base: 40 * time.Millisecond, Jitter: 8 * time.Millisecond, Loss: 0.1, Seed: 7}
	var drops, below, above int
	for seq := range 10000 {
		d, drop := s.Draw(Addr4, uint16(seq))
		if d2, drop2 := s.Draw(Addr4, uint16(seq)); d2 != d || drop2 != drop {
			t.Fatalf("seq %d: two draws differ: %v %v, then %v %v", seq, d, drop, d2, drop2)
		}
		if d < s.Base-s.Jitter || d > s.Base+s.Jitter {
			t.Fatalf("seq %d: delay %v outside %v±%v", seq, d, s.Base, s.Jitter)
		}
		if drop {
			drops++
		}
		if d < s.Base-s.Jitter/2 {
			below++
		}
		if d > s.Base+s.Jitter/2 {
			above++
		}
	}
	// Deterministic for this seed; the bounds say the draws are uniform.
	if math.Abs(float64(drops)/10000-s.Loss) > 0.01 {
		t.Errorf("dropped %d of 10000, want about %v", drops, s.Loss)
	}
	if math.Abs(float64(below)/10000-0.25) > 0.02 || math.Abs(float64(above)/10000-0.25) > 0.02 {
		t.Errorf("%d below and %d above half the jitter, want about 2500 each", below, above)
	}
	if d1, _ := s.Draw(Addr4, 1); d1 == func() time.Duration {
		d, _ := (Schedule{Base: s.Base, Jitter: s.Jitter, Seed: 8}).Draw(Addr4, 1)
		return d
	}() {
		t.Errorf("another seed drew the same delay %v", d1)
	}
}

func TestScheduleValidate(t *testing.T) {
	err := Schedule{Base: -1, Jitter: time.Second, Loss: 1.5}.Validate()
	for _, want := range []string{"Schedule.Base", "Schedule.Jitter", "Schedule.Loss"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
	if err := (Schedule{Base: time.Millisecond, Jitter: time.Millisecond, Loss: 1}).Validate(); err != nil {
		t.Errorf("a valid schedule: %v", err)
	}
	if _, err := New(Schedule{Loss: -1}); err == nil || !strings.Contains(err.Error(), "Schedule.Loss") {
		t.Errorf("New with a bad schedule: %v", err)
	}
}
