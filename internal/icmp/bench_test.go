//go:build linux

package icmp

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// BenchmarkLoopbackRTT pings 127.0.0.1 with the engine (bursts of 10 echoes
// 1 ms apart, as internal/probe/ping's BenchmarkLoopbackRTT does with
// pro-bing) and reports the median RTT of all echoes; bench/icmp-loopback.sh
// sets it against iputils ping and pro-bing. The "-usertx" variants take the
// send time in userspace just before sendmsg instead of the kernel's TX
// software timestamp.
func BenchmarkLoopbackRTT(b *testing.B) {
	for _, v := range []struct {
		mode   Mode
		userTx bool
	}{{ModeRaw, false}, {ModeDatagram, false}, {ModeRaw, true}, {ModeDatagram, true}} {
		name := v.mode.String()
		if v.userTx {
			name += "-usertx"
		}
		b.Run(name, func(b *testing.B) {
			e, err := Open(Options{Mode: v.mode})
			if err != nil {
				b.Skip(err)
			}
			defer e.Close()
			e.mu.Lock()
			e.userTx = v.userTx // before the first Ping opens the socket
			e.mu.Unlock()
			var rtts []float64
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				res, err := e.Ping(ctx, Request{Dst: netip.MustParseAddr("127.0.0.1"), Count: 10, Interval: time.Millisecond})
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				for _, ec := range res.Echoes {
					if ec.Fate != Replied {
						b.Fatalf("echo %+v", ec)
					}
					rtts = append(rtts, float64(ec.RTT.Nanoseconds())/1e3)
				}
			}
			slices.Sort(rtts)
			b.ReportMetric(rtts[len(rtts)/2], "µs-median-rtt")
		})
	}
}
