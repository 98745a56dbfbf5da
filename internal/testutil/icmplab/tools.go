package icmplab

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Iputils returns a Pinger running iputils ping inside the lab. ping takes
// its send timestamp just before sendmsg and its receive timestamp from the
// kernel (SO_TIMESTAMP), so it reads close to the truth; it prints RTTs in
// µs rounded to 3 significant digits above 10 ms (e.g. 10.2 ms), which a
// per-echo comparison must allow for.
func (l *Lab) Iputils() Pinger {
	return func(ctx context.Context, dst netip.Addr, count int, interval time.Duration) ([]time.Duration, error) {
		args := []string{"-n", "-c", strconv.Itoa(count), "-i", seconds(interval), "-W", "1"}
		if dst.Is6() {
			args = append(args, "-6")
		}
		out, err := l.command(ctx, "ping", append(args, dst.String())...)
		if err != nil && !strings.Contains(out, "packets transmitted") {
			return nil, err // exit status 1 only says some echoes were lost
		}
		return parsePing(out, count)
	}
}

var pingLine = regexp.MustCompile(`icmp_seq=(\d+) .*time=([0-9.]+) ms`)

// parsePing reads ping's reply lines; its sequence numbers start at 1.
func parsePing(out string, count int) ([]time.Duration, error) {
	rtts := make([]time.Duration, count)
	for i := range rtts {
		rtts[i] = Lost
	}
	for _, m := range pingLine.FindAllStringSubmatch(out, -1) {
		seq, _ := strconv.Atoi(m[1])
		if seq < 1 || seq > count {
			return nil, fmt.Errorf("icmplab: ping reported icmp_seq=%d outside 1..%d", seq, count)
		}
		if rtts[seq-1] != Lost {
			continue // a duplicate (ping marks it DUP!)
		}
		rtt, err := millis(m[2])
		if err != nil {
			return nil, fmt.Errorf("icmplab: ping output %q: %w", m[0], err)
		}
		rtts[seq-1] = rtt
	}
	return rtts, nil
}

// Fping returns a Pinger running fping -C inside the lab. fping timestamps
// in user space and prints 3 significant digits (e.g. 10.2, or 102 above
// 100 ms).
func (l *Lab) Fping() Pinger {
	return func(ctx context.Context, dst netip.Addr, count int, interval time.Duration) ([]time.Duration, error) {
		args := []string{"-C", strconv.Itoa(count), "-p", strconv.FormatInt(interval.Milliseconds(), 10), "-q", "-t", "1000"}
		if dst.Is6() {
			args = append(args, "-6")
		}
		out, err := l.command(ctx, "fping", append(args, dst.String())...)
		if err != nil && !strings.Contains(out, " : ") {
			return nil, err // exit status 1 only says some echoes were lost
		}
		return parseFping(out, dst, count)
	}
}

// parseFping reads the -C summary line "dst : 10.1 - 10.3 ..." (- for lost).
func parseFping(out string, dst netip.Addr, count int) ([]time.Duration, error) {
	for line := range strings.Lines(out) {
		host, vals, ok := strings.Cut(line, " : ")
		if !ok || strings.TrimSpace(host) != dst.String() {
			continue
		}
		f := strings.Fields(vals)
		if len(f) != count {
			return nil, fmt.Errorf("icmplab: fping reported %d echoes, not %d: %q", len(f), count, line)
		}
		rtts := make([]time.Duration, count)
		for i, v := range f {
			if v == "-" {
				rtts[i] = Lost
				continue
			}
			var err error
			if rtts[i], err = millis(v); err != nil {
				return nil, fmt.Errorf("icmplab: fping output %q: %w", line, err)
			}
		}
		return rtts, nil
	}
	return nil, fmt.Errorf("icmplab: no fping result for %s in %q", dst, out)
}

func (l *Lab) command(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.Netns, name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("icmplab: %s: %w: %s", strings.Join(cmd.Args, " "), err, out)
	}
	return string(out), nil
}

func millis(s string) (time.Duration, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	return time.Duration(math.Round(v * float64(time.Millisecond))), nil
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }
