package speedtest

import (
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/testutil"
)

// The lab: a speed test server in a network namespace of the test's own,
// behind a veth pair on 198.18.0.0/15 whose two ends are rate-limited with
// tbf (the kernel has no netem): the namespace's end shapes downloads, the
// host's end uploads. Nothing else is routed; everything goes at cleanup.

func TestMain(m *testing.M) { testutil.Main(m) }

type shape struct{ rate, burst, latency string }

// newLab creates the namespace, shapes both directions and starts server
// (a command to run inside the namespace, given its listen address); it
// returns the server's URL once it answers.
func newLab(t *testing.T, s shape, server func(listen string) []string) string {
	t.Helper()
	testutil.NeedNetNS(t)
	testutil.Need(t, testutil.LookPath("tc") != "", "tc (iproute2) to shape the lab link")
	ns := testutil.NewNetNS(t)
	tbf := func(dev string) []string {
		return []string{"qdisc", "add", "dev", dev, "root", "tbf", "rate", s.rate, "burst", s.burst, "latency", s.latency}
	}
	if out, err := ns.Exec("tc", tbf(ns.NSIf)...); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if out, err := exec.Command("tc", tbf(ns.HostIf)...).CombinedOutput(); err != nil {
		t.Fatalf("tc on %s: %v: %s", ns.HostIf, err, out)
	}
	addr := net.JoinHostPort(ns.NSAddr, "8080")
	testutil.StartProcess(t, "speedtest-server", exec.Command("ip", append([]string{"netns", "exec", ns.Name}, server(addr)...)...))
	testutil.Eventually(t, 15*time.Second, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	return "http://" + addr
}

// netpulseServer runs `netpulse speedtest-server` with extra flags.
func netpulseServer(t *testing.T, flags ...string) func(string) []string {
	bin := testutil.BuildAgent(t)
	return func(listen string) []string {
		return append([]string{bin, "speedtest-server", "--listen", listen}, flags...)
	}
}

// Download and upload through a 20 and a 100 Mbit/s link read within 10 %
// of the limit. (TCP's goodput through tbf is at most 95.6 % of the rate:
// tbf counts Ethernet headers, 1514 bytes on the wire per 1448 of payload.)
func TestLabAccuracy(t *testing.T) {
	for _, c := range []struct {
		mbit     float64
		s        shape
		duration time.Duration
	}{
		{20, shape{"20mbit", "32kbit", "50ms"}, 4 * time.Second},
		{100, shape{"100mbit", "128kb", "50ms"}, 3 * time.Second},
	} {
		t.Run(fmt.Sprintf("%gMbit", c.mbit), func(t *testing.T) {
			r := measureLab(t, newLab(t, c.s, netpulseServer(t)), c.duration)
			for _, d := range []*Direction{r.Download, r.Upload} {
				got := d.Rate * 8 / 1e6
				t.Logf("%s: %.2f Mbit/s through %g Mbit/s (%+.1f %%), %d bytes; loaded latency %.1f ms (idle %.2f ms)",
					d.Name, got, c.mbit, (got/c.mbit-1)*100, d.Bytes, d.Loaded.Mean*1e3, r.Idle.Mean*1e3)
				if got < 0.9*c.mbit || got > 1.1*c.mbit {
					t.Errorf("%s: %.2f Mbit/s, want within 10 %% of %g", d.Name, got, c.mbit)
				}
			}
			if r.PacketLoss == nil || *r.PacketLoss > 0.02 {
				t.Errorf("packet loss %v on an idle link", r.PacketLoss)
			}
		})
	}
}

// measureLab runs one speed test through the lab's shaped link: 4
// connections, loaded latency sampled every 100 ms, duration per direction.
func measureLab(t *testing.T, url string, duration time.Duration) *Result {
	t.Helper()
	cfg := testConfig(duration)
	cfg.Connections = 4
	cfg.LatencyInterval = 100 * time.Millisecond
	p, _ := newTestProber(t, cfg, Options{})
	r, err := p.Measure(t.Context(), target(url))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Behind a deep queue (tbf holding 500 ms), a classic (CUBIC) download
// fills it: the loaded latency must rise clearly above the idle latency.
func TestLabBufferbloat(t *testing.T) {
	// CUBIC fills a deep queue as classic senders do; BBR (the default
	// here) keeps it short by design.
	url := newLab(t, shape{"20mbit", "32kbit", "500ms"}, netpulseServer(t, "--tcp-congestion", "cubic"))
	r := measureLab(t, url, 3*time.Second)
	idle := r.Idle.Mean
	for _, d := range []*Direction{r.Download, r.Upload} {
		rp := d.Responsiveness
		t.Logf("%s: idle %.2f ms, loaded %.1f ms (+%.1f ms, %d samples, jitter %.1f ms), %.0f RPM (foreign %.0f, loaded %.0f, 95 %% %.0f-%.0f, samples %+v), %.2f Mbit/s",
			d.Name, idle*1e3, d.Loaded.Mean*1e3, d.LatencyIncrease*1e3, d.Loaded.Samples, d.Loaded.Jitter*1e3, d.RPM,
			rp.ForeignRPM, rp.LoadedRPM, rp.Low, rp.High, rp.Samples, d.Rate*8/1e6)
	}
	d := r.Download
	// CUBIC with autotuned receive windows keeps 0.2-0.6 MB queued here
	// (iperf3 -C cubic -P 4: ~530 kB, ping +180 ms); the test's HTTP
	// request gaps leave a little less.
	if d.Loaded.Samples < 5 || d.LatencyIncrease < 0.05 || d.Loaded.Mean < 10*idle {
		t.Errorf("download through a 500 ms queue: loaded %.1f ms over %d samples, idle %.2f ms; want +50 ms or more",
			d.Loaded.Mean*1e3, d.Loaded.Samples, idle*1e3)
	}
}
