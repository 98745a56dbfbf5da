//go:build linux

package icmp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/testutil"
)

// needMode skips (fails in CI) unless the socket kind can be opened here.
func needMode(t *testing.T, mode Mode) {
	t.Helper()
	switch mode {
	case ModeRaw:
		testutil.Need(t, testutil.IsRoot(), "raw ICMP sockets need root")
	case ModeDatagram:
		testutil.Need(t, testutil.DatagramICMPAllowed(),
			`datagram ICMP sockets need sysctl -w net.ipv4.ping_group_range="0 2147483647"`)
	default:
		testutil.NeedICMP(t)
	}
}

func openEngine(t *testing.T, mode Mode) *Engine {
	t.Helper()
	needMode(t, mode)
	e, err := Open(Options{Mode: mode})
	if err != nil {
		t.Fatalf("Open(%v): %v", mode, err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func TestLoopback(t *testing.T) {
	for _, mode := range []Mode{ModeRaw, ModeDatagram} {
		for _, dst := range []string{"127.0.0.1", "::1"} {
			t.Run(fmt.Sprintf("%v/%s", mode, dst), func(t *testing.T) {
				e := openEngine(t, mode)
				var seen []Echo
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				res, err := e.Ping(ctx, Request{Dst: netip.MustParseAddr(dst), Count: 5,
					Interval: 10 * time.Millisecond, TTL: 33, OnEcho: func(ec Echo) { seen = append(seen, ec) }})
				if err != nil {
					t.Fatal(err)
				}
				if res.Privileged != (mode == ModeRaw) {
					t.Errorf("Privileged %v with mode %v", res.Privileged, mode)
				}
				if len(res.Echoes) != 5 || len(seen) != 5 {
					t.Fatalf("%d echoes, %d seen by OnEcho, want 5: %+v", len(res.Echoes), len(seen), res.Echoes)
				}
				for i, ec := range res.Echoes {
					if ec.Seq != i || ec.Fate != Replied || ec.Duplicates != 0 {
						t.Errorf("echo %d: %+v", i, ec)
					}
					if ec.RTT <= 0 || ec.RTT > 100*time.Millisecond {
						t.Errorf("echo %d: RTT %v, want small and positive", i, ec.RTT)
					}
					// Loopback replies carry the reply's TTL (the system
					// default, 64), not the TTL we sent with.
					if ec.TTL <= 0 || ec.TTL > 255 {
						t.Errorf("echo %d: reply TTL %d", i, ec.TTL)
					}
					if ec.From != netip.MustParseAddr(dst) {
						t.Errorf("echo %d: from %v", i, ec.From)
					}
					if ec.Sent.IsZero() {
						t.Errorf("echo %d: no send time", i)
					}
				}
				t.Logf("RTTs: %v", rtts(res.Echoes))
				// Every TX timestamp the kernel queued was read: the receive
				// loop reads the error queue only while it expects one.
				s := e.socks[0]
				if netip.MustParseAddr(dst).Is6() {
					s = e.socks[1]
				}
				if s.txStamps.Load() {
					testutil.Eventually(t, 5*time.Second, func() error {
						if n := s.stampsDue.Load(); n != 0 {
							return fmt.Errorf("%d TX timestamps not read", n)
						}
						return nil
					})
				}
				st := e.Stats()
				if st.Sent != 5 || st.Received != 5 || st.Duplicates != 0 || st.Late != 0 {
					t.Errorf("stats %+v", st)
				}
			})
		}
	}
}

func rtts(echoes []Echo) []time.Duration {
	var out []time.Duration
	for _, ec := range echoes {
		out = append(out, ec.RTT)
	}
	return out
}

// TestManyConcurrentRequests: 200 destinations at once on one socket, every
// echo answered by its own destination, none crossed.
func TestManyConcurrentRequests(t *testing.T) {
	for _, mode := range []Mode{ModeRaw, ModeDatagram} {
		t.Run(mode.String(), func(t *testing.T) {
			e := openEngine(t, mode)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			results := make([]Result, 200)
			errs := make([]error, 200)
			for i := range results {
				wg.Go(func() {
					dst := netip.AddrFrom4([4]byte{127, 0, byte(i / 250), byte(i%250 + 1)})
					results[i], errs[i] = e.Ping(ctx, Request{Dst: dst, Count: 3, Interval: 5 * time.Millisecond})
				})
			}
			wg.Wait()
			for i, res := range results {
				dst := netip.AddrFrom4([4]byte{127, 0, byte(i / 250), byte(i%250 + 1)})
				if errs[i] != nil {
					t.Fatalf("%v: %v", dst, errs[i])
				}
				if len(res.Echoes) != 3 {
					t.Fatalf("%v: %d echoes", dst, len(res.Echoes))
				}
				for _, ec := range res.Echoes {
					if ec.Fate != Replied || ec.From != dst || ec.Duplicates != 0 {
						t.Errorf("%v: echo %+v", dst, ec)
					}
				}
			}
			if st := e.Stats(); st.Received != 600 || st.Late != 0 || st.Duplicates != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestRequestValidation: bad requests are refused with the field named.
func TestRequestValidation(t *testing.T) {
	e := openEngine(t, ModeAuto)
	for _, c := range []struct {
		req  Request
		want string
	}{
		{Request{Count: 1}, "Dst"},
		{Request{Dst: netip.MustParseAddr("127.0.0.1")}, "Count"},
		{Request{Dst: netip.MustParseAddr("127.0.0.1"), Count: 1, Size: 8}, "Size"},
		{Request{Dst: netip.MustParseAddr("127.0.0.1"), Count: 1, TTL: 256}, "TTL"},
		{Request{Dst: netip.MustParseAddr("127.0.0.1"), Count: 1, Source: netip.MustParseAddr("::1")}, "Source"},
	} {
		_, err := e.Ping(context.Background(), c.req)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one naming %s", c.req, err, c.want)
		}
	}
}

// TestSource: echoes leave from the requested local address; one that is
// not on this host fails the send with the errno kept.
func TestSource(t *testing.T) {
	for _, mode := range []Mode{ModeRaw, ModeDatagram} {
		t.Run(mode.String(), func(t *testing.T) {
			e := openEngine(t, mode)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res, err := e.Ping(ctx, Request{Dst: netip.MustParseAddr("127.0.0.2"), Source: netip.MustParseAddr("127.0.0.1"), Count: 2, Interval: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			for _, ec := range res.Echoes {
				if ec.Fate != Replied {
					t.Errorf("from 127.0.0.1: echo %+v", ec)
				}
			}
			// 198.18.0.0/15 is never assigned here outside test namespaces.
			res, err = e.Ping(ctx, Request{Dst: netip.MustParseAddr("127.0.0.2"), Source: netip.MustParseAddr("198.19.255.254"), Count: 1})
			if err != nil {
				t.Fatal(err)
			}
			var errno syscall.Errno
			if len(res.Echoes) != 1 || res.Echoes[0].Fate != SendFailed || !errors.As(res.Echoes[0].Err, &errno) {
				t.Fatalf("from a foreign address: %+v, want SendFailed with an errno", res.Echoes)
			}
			t.Logf("send from a foreign address: %v", res.Echoes[0].Err)
		})
	}
}
