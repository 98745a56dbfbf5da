// Command pingaccuracy sets pingers side by side against the ICMP lab
// (internal/testutil/icmplab), whose responder knows each echo's true RTT
// and fate, on emulated paths with delay, jitter and loss, and prints each
// pinger's error: mean, standard deviation and jitter read minus truth,
// per-echo error quantiles where the pinger reports each echo, and whether
// it lost exactly the echoes the lab dropped ("unheard": replies the
// machine held back until after the pinger had returned, counted as lost).
// Needs root.
//
// A pinger joins by adding an entry to pingers (per-echo, icmplab.Pinger)
// or summaries (statistics only, icmplab.SummaryPinger). Go pingers are
// best run in a child process inside the lab (see children in child.go),
// so that they share nothing with the responder's process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/netpulse/netpulse/internal/testutil/icmplab"
)

// pingers report each echo's RTT.
var pingers = []struct {
	name string
	new  func(*icmplab.Lab) icmplab.Pinger
}{
	{"iputils-ping", (*icmplab.Lab).Iputils},
	{"fping", (*icmplab.Lab).Fping},
}

// summaries report a burst's statistics (and replies in arrival order), or
// their readings: the Go pingers, each run in a child (see child.go).
var summaries = []string{
	"icmp-engine-dgram",
	"netpulse-shared-dgram", "netpulse-shared-raw",
	"netpulse-pro-bing-dgram", "netpulse-pro-bing-raw",
}

func main() {
	run := run
	if len(os.Args) > 1 && os.Args[1] == childFlag {
		run = func(args []string, w io.Writer) error { return runChild(args[1:], w) }
	}
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "pingaccuracy:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("pingaccuracy", flag.ContinueOnError)
	paths := fs.String("paths", "10ms/2ms,40ms/8ms,100ms/20ms", "comma-separated paths, base/jitter (uniform ±jitter)")
	loss := fs.Float64("loss", 0.1, "share of echoes the lab drops")
	count := fs.Int("count", 200, "echoes per pinger and path")
	interval := fs.Duration("interval", 20*time.Millisecond, "interval between echoes")
	family := fs.String("family", "4", "4, 6 or 46")
	only := fs.String("tools", "", "comma-separated pinger names to run (default: all)")
	seed := fs.Int64("seed", 1, "schedule seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var scheds []icmplab.Schedule
	for i, p := range strings.Split(*paths, ",") {
		base, jitter, _ := strings.Cut(strings.TrimSpace(p), "/")
		b, err := time.ParseDuration(base)
		if err != nil {
			return fmt.Errorf("-paths: %q: base: %w", p, err)
		}
		j := time.Duration(0)
		if jitter != "" {
			if j, err = time.ParseDuration(jitter); err != nil {
				return fmt.Errorf("-paths: %q: jitter: %w", p, err)
			}
		}
		s := icmplab.Schedule{Base: b, Jitter: j, Loss: *loss, Seed: *seed + int64(i)}
		if err := s.Validate(); err != nil {
			return fmt.Errorf("-paths: %q: %w", p, err)
		}
		scheds = append(scheds, s)
	}
	if *count < 2 || *interval <= 0 {
		return fmt.Errorf("-count must be at least 2 and -interval positive, not %d and %v", *count, *interval)
	}
	var dsts []netip.Addr
	for _, f := range *family {
		switch f {
		case '4':
			dsts = append(dsts, icmplab.Addr4)
		case '6':
			dsts = append(dsts, icmplab.Addr6)
		default:
			return fmt.Errorf("-family: %q: want 4, 6 or 46", *family)
		}
	}
	want := func(name string) bool {
		return *only == "" || strings.Contains(","+*only+",", ","+name+",")
	}

	fmt.Fprintf(stdout, "%d echoes %v apart per pinger and path, %.0f %% loss; errors are read minus truth, in ms\n",
		*count, *interval, *loss*100)
	// SIGINT and SIGTERM end the run through ctx, so the labs are removed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, s := range scheds {
		l, err := icmplab.New(s)
		if err != nil {
			return err
		}
		err = func() (err error) {
			defer func() { err = errors.Join(err, l.Close()) }()
			tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "path\tdst\tpinger\tlost (lab)\tunheard\texact\tmean err\tstd err\tjitter err\techo err p5\tp50\tp95\tlab late p50\tp99\t")
			for _, dst := range dsts {
				path := fmt.Sprintf("%v±%v", s.Base, s.Jitter)
				for _, p := range pingers {
					if !want(p.name) {
						continue
					}
					j, err := l.Run(ctx, p.new(l), dst, *count, *interval)
					if err != nil {
						return fmt.Errorf("%s %s: %w", p.name, path, err)
					}
					row(tw, path, dst, p.name, j)
				}
				for _, name := range summaries {
					if !want(name) {
						continue
					}
					j, err := l.RunStats(ctx, inChild(l, name), dst, *count, *interval)
					if err != nil {
						return fmt.Errorf("%s %s: %w", name, path, err)
					}
					row(tw, path, dst, name, j)
				}
			}
			return tw.Flush() // a path's rows as soon as they are known
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

func row(w io.Writer, path string, dst netip.Addr, name string, j icmplab.Judgement) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%+.3f", float64(d)/1e6) }
	echo := "-\t-\t-"
	if j.Errors != nil {
		echo = ms(icmplab.Quantile(j.Errors, .05)) + "\t" + ms(icmplab.Quantile(j.Errors, .5)) + "\t" + ms(icmplab.Quantile(j.Errors, .95))
	}
	fmt.Fprintf(w, "%s\tIPv%d\t%s\t%d (%d)\t%d\t%v\t%s\t%s\t%s\t%s\t%s\t%s\t\n", path, map[bool]int{true: 4, false: 6}[dst.Is4()], name,
		j.Read.Sent-j.Read.Received, j.Truth.Sent-j.Truth.Received, j.Unheard, j.LossExact,
		ms(j.MeanErr()), ms(j.StdErr()), ms(j.JitterErr()), echo,
		ms(icmplab.Quantile(j.Late, .5)), ms(icmplab.Quantile(j.Late, .99)))
}
