package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/netpulse/netpulse/internal/icmp"
	"github.com/netpulse/netpulse/internal/probe/ping"
	"github.com/netpulse/netpulse/internal/testutil/icmplab"
)

// Go pingers run in a child process started inside the lab (this program
// again, with childFlag), not in the process hosting the lab's responder:
// they share no Go runtime (scheduler, GC) with it, as in production.
const childFlag = "-child"

type burst func(ctx context.Context, dst netip.Addr, count int, interval time.Duration) (icmplab.Summary, error)

// children are the pingers that run in a child.
var children = map[string]burst{
	"netpulse-shared-dgram":   probeBurst(ping.EngineShared, "false"),
	"netpulse-shared-raw":     probeBurst(ping.EngineShared, "true"),
	"netpulse-pro-bing-dgram": probeBurst(ping.EngineProBing, "false"),
	"netpulse-pro-bing-raw":   probeBurst(ping.EngineProBing, "true"),
	"icmp-engine-dgram": func(ctx context.Context, dst netip.Addr, count int, interval time.Duration) (icmplab.Summary, error) {
		return engineBurst(ctx, icmp.ModeDatagram, dst, count, interval)
	},
}

func probeBurst(engine, privileged string) burst {
	return func(ctx context.Context, dst netip.Addr, count int, interval time.Duration) (icmplab.Summary, error) {
		return netpulseBurst(ctx, engine, privileged, dst, count, interval)
	}
}

// inChild runs the child pinger name inside the lab and reads its Summary.
func inChild(l *icmplab.Lab, name string) icmplab.SummaryPinger {
	return func(ctx context.Context, dst netip.Addr, count int, interval time.Duration) (icmplab.Summary, error) {
		self, err := os.Executable()
		if err != nil {
			return icmplab.Summary{}, err
		}
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.Netns, self, childFlag, name, dst.String(), strconv.Itoa(count), interval.String())
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return icmplab.Summary{}, fmt.Errorf("%s in the lab: %w: %s", name, err, strings.TrimSpace(stderr.String()))
		}
		var s icmplab.Summary
		if err := json.Unmarshal(out, &s); err != nil {
			return icmplab.Summary{}, fmt.Errorf("%s in the lab: %w: %q", name, err, out)
		}
		return s, nil
	}
}

// runChild is the child's side: args are name, dst, count, interval.
func runChild(args []string, stdout io.Writer) error {
	if len(args) != 4 {
		return fmt.Errorf("%s: want name dst count interval, not %q", childFlag, args)
	}
	b, ok := children[args[0]]
	dst, err1 := netip.ParseAddr(args[1])
	count, err2 := strconv.Atoi(args[2])
	interval, err3 := time.ParseDuration(args[3])
	if !ok || err1 != nil || err2 != nil || err3 != nil {
		return fmt.Errorf("%s: bad arguments %q", childFlag, args)
	}
	s, err := b(context.Background(), dst, count, interval)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(s)
}
