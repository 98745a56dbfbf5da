// Command rpmlab runs one speed test with a concurrent ping to the same
// host and prints, per loaded direction, netpulse's RPM (draft-09: foreign
// and loaded components, 95 % bounds, sample counts) next to what the ping
// saw in the same window (the transfer after its warm-up): its mean and
// the RPM it implies (60 s / mean RTT). bench/speedtest-rpm.sh runs it on
// a shaped link with a deep queue, for CUBIC and BBR.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probe/speedtest"
)

func main() {
	server := flag.String("server", "", "speed test server URL (netpulse speedtest-server)")
	host := flag.String("ping", "", "host to ping during the test (the server's address)")
	cc := flag.String("cc", "", "client TCP congestion control (uploads)")
	duration := flag.Duration("duration", 10*time.Second, "per direction")
	flag.Parse()
	if err := run(*server, *host, *cc, *duration, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rpmlab:", err)
		os.Exit(1)
	}
}

// pingSample is one echo: when it was received and its RTT.
type pingSample struct {
	at  time.Time
	rtt time.Duration
}

// pingLine matches iputils ping -D output: "[1700000000.123456] 64 bytes
// from 198.18.1.2: icmp_seq=1 ttl=64 time=0.123 ms".
var pingLine = regexp.MustCompile(`^\[(\d+)\.(\d+)\] .* time=([0-9.]+) ms`)

func parsePing(r io.Reader) []pingSample {
	var out []pingSample
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := pingLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		sec, _ := strconv.ParseInt(m[1], 10, 64)
		frac, _ := strconv.ParseFloat("0."+m[2], 64)
		ms, _ := strconv.ParseFloat(m[3], 64)
		out = append(out, pingSample{at: time.Unix(sec, int64(frac*1e9)),
			rtt: time.Duration(ms * float64(time.Millisecond))})
	}
	return out
}

// window returns the RTTs of the samples received in [from, to).
func window(s []pingSample, from, to time.Time) []time.Duration {
	var out []time.Duration
	for _, x := range s {
		if !x.at.Before(from) && x.at.Before(to) {
			out = append(out, x.rtt)
		}
	}
	return out
}

// trimmedMean drops the slowest 5 %, as the draft does.
func trimmedMean(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	s = s[:max(1, len(s)-len(s)/20)]
	var sum time.Duration
	for _, x := range s {
		sum += x
	}
	return sum / time.Duration(len(s))
}

func run(server, host, cc string, duration time.Duration, w io.Writer) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ping := exec.CommandContext(ctx, "ping", "-D", "-n", "-i", "0.05", host)
	out, err := ping.StdoutPipe()
	if err != nil {
		return err
	}
	if err := ping.Start(); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	var samples []pingSample
	var wg sync.WaitGroup
	wg.Go(func() { samples = parsePing(out) })

	var mu sync.Mutex
	starts := map[string]time.Time{}
	no := false
	cfg := speedtest.Config{Settings: network.Settings{IPVersion: network.IPAuto}, Duration: duration, MaxBytes: 1e12,
		Connections: 4, LatencyInterval: 100 * time.Millisecond, PacketLoss: &no, TCPCongestion: cc}
	tp := tracenoop.NewTracerProvider()
	p, err := speedtest.New("rpmlab", cfg, probe.Deps{Meters: metricnoop.NewMeterProvider(), Tracers: tp,
		Logger: slog.New(slog.DiscardHandler), Net: network.New(network.NewResolver(""), tp)},
		speedtest.Options{Progress: func(pr speedtest.Progress) {
			mu.Lock()
			if _, ok := starts[pr.Phase]; !ok {
				starts[pr.Phase] = time.Now().Add(-pr.Elapsed)
			}
			mu.Unlock()
		}})
	if err != nil {
		return err
	}
	t := probe.NewTarget(config.Probe{Name: "rpmlab", Type: speedtest.TypeName}, config.Target{Name: "lab", Host: server})
	r, err := p.Measure(ctx, t)
	cancel()
	wg.Wait()
	_ = ping.Wait()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "cc\tdirection\tsender cc\tRPM\tforeign\tloaded\t95%% low\t95%% high\tsamples tcp/http/loaded\tprobe ms\tping ms\tping RPM\tping n\t\n")
	for _, d := range []*speedtest.Direction{r.Download, r.Upload} {
		mu.Lock()
		start := starts[d.Name]
		mu.Unlock()
		rtts := window(samples, start.Add(duration/4), start.Add(duration))
		pm := trimmedMean(rtts)
		pingRPM := 0.0
		if pm > 0 {
			pingRPM = 60 / pm.Seconds()
		}
		rp := d.Responsiveness
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%d/%d/%d\t%.1f\t%.1f\t%.0f\t%d\t\n", cc, d.Name, d.TCPCongestion,
			rp.RPM, rp.ForeignRPM, rp.LoadedRPM, rp.Low, rp.High, rp.Samples.TCP, rp.Samples.HTTP, rp.Samples.Loaded,
			d.Loaded.Mean*1e3, pm.Seconds()*1e3, pingRPM, len(rtts))
	}
	return tw.Flush()
}
