//go:build linux

package icmp

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/testutil"
)

// TestICMPErrorsEndTheRequest: a router namespace answers for addresses
// behind it with ICMP errors (an unreachable or prohibit route, an nftables
// reject, TTL 1 on a forwarded packet). Each error must end the whole request
// at once — every echo with the error's fate, type, code and the router's
// address — long before the 5 s ctx would.
func TestICMPErrorsEndTheRequest(t *testing.T) {
	ns := testutil.NewNetNS(t)
	testutil.NeedNft(t)
	ns.Router(t)
	router := netip.MustParseAddr(ns.NSAddr)

	unreachable := ns.BehindRouter(t)
	ns.Route(t, "unreachable", unreachable.String()+"/32")
	prohibited := ns.BehindRouter(t)
	ns.Route(t, "prohibit", prohibited.String()+"/32")
	rejectHost, rejectAdmin, far := ns.BehindRouter(t), ns.BehindRouter(t), ns.BehindRouter(t)
	for _, a := range []netip.Addr{rejectHost, rejectAdmin, far} {
		ns.ForwardBack(t, a) // stopped by the reject rules, or by TTL 1
	}
	ns.Nft(t, fmt.Sprintf(`table inet t {
	chain relay {
		type filter hook forward priority 0;
		ip daddr %s reject with icmp type host-unreachable
		ip daddr %s reject with icmp type admin-prohibited
	}
}`, rejectHost, rejectAdmin))

	cases := []struct {
		name     string
		dst      netip.Addr
		ttl      int
		fate     Fate
		typ, cod int
	}{
		{"unreachable-route", unreachable, 0, Unreachable, 3, 1},
		{"prohibit-route", prohibited, 0, Unreachable, 3, 13},
		{"nft-host-unreachable", rejectHost, 0, Unreachable, 3, 1},
		{"nft-admin-prohibited", rejectAdmin, 0, Unreachable, 3, 13},
		{"ttl-exceeded", far, 1, TTLExceeded, 11, 0},
	}
	// Cases first, then modes: the route cases (first) come first for both
	// modes. Linux sends an unreachable or prohibit route's ICMP errors at
	// most once a second per destination after a burst of five
	// (net.ipv4.route.error_cost and error_burst, not per namespace), from
	// a per-destination bucket that every other ICMP error it sends drains
	// when icmp_ratelimit is 0. A fresh namespace starts with the burst:
	// four route errors fit; after a time exceeded, none would for a second.
	engines := map[Mode]*Engine{ModeRaw: openEngine(t, ModeRaw), ModeDatagram: openEngine(t, ModeDatagram)}
	for _, c := range cases {
		for _, mode := range []Mode{ModeRaw, ModeDatagram} {
			e := engines[mode]
			t.Run(mode.String()+"/"+c.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				start := time.Now()
				res, err := e.Ping(ctx, Request{Dst: c.dst, Count: 5, Interval: 200 * time.Millisecond, TTL: c.ttl})
				elapsed := time.Since(start)
				t.Logf("%s → %s: request ended after %.1f ms", mode, c.dst, float64(elapsed.Microseconds())/1000)
				if err != nil {
					t.Fatal(err)
				}
				if elapsed > 2*time.Second {
					t.Errorf("request took %v: the ICMP error did not end it", elapsed)
				}
				if len(res.Echoes) != 5 {
					t.Fatalf("%d echoes, want all 5 reported: %+v", len(res.Echoes), res.Echoes)
				}
				for i, ec := range res.Echoes {
					if ec.Seq != i || ec.Fate != c.fate || ec.ICMPType != c.typ || ec.ICMPCode != c.cod || ec.From != router {
						t.Errorf("echo %d: %+v, want fate %v type %d code %d from %v", i, ec, c.fate, c.typ, c.cod, router)
					}
				}
				// The answered echo has the router's round trip (what a path
				// probe reports per hop); the others none.
				if rtt := res.Echoes[0].RTT; rtt <= 0 || rtt > elapsed {
					t.Errorf("echo 0: RTT %v, want the router's round trip (0 < RTT <= %v)", rtt, elapsed)
				}
				if rtt := res.Echoes[1].RTT; rtt != 0 {
					t.Errorf("echo 1: RTT %v, want 0 (never sent)", rtt)
				}
				// One echo was sent; the rest were never sent.
				if !res.Echoes[0].Sent.After(start.Add(-time.Second)) || !res.Echoes[4].Sent.IsZero() {
					t.Errorf("send times %v … %v: want the first set, the last never sent", res.Echoes[0].Sent, res.Echoes[4].Sent)
				}
			})
		}
	}
}

// TestICMPv6ErrorsEndTheRequest is TestICMPErrorsEndTheRequest for IPv6
// (raw sockets read ICMPv6 errors, datagram sockets their error queue).
func TestICMPv6ErrorsEndTheRequest(t *testing.T) {
	ns := testutil.NewNetNS(t)
	testutil.NeedNft(t)
	r6 := ns.IPv6(t)
	unreachable, prohibited, rejected, far := r6.BehindRouter(t), r6.BehindRouter(t), r6.BehindRouter(t), r6.BehindRouter(t)
	r6.Route(t, "unreachable", unreachable.String()+"/128")
	r6.Route(t, "prohibit", prohibited.String()+"/128")
	r6.ForwardBack(t, rejected)
	r6.ForwardBack(t, far)
	ns.Nft(t, fmt.Sprintf(`table inet t6 {
	chain relay {
		type filter hook forward priority 0;
		ip6 daddr %s reject with icmpv6 type admin-prohibited
	}
}`, rejected))
	cases := []struct {
		name     string
		dst      netip.Addr
		ttl      int
		fate     Fate
		typ, cod int
	}{
		{"unreachable-route", unreachable, 0, Unreachable, 1, 0},
		{"prohibit-route", prohibited, 0, Unreachable, 1, 1},
		{"nft-admin-prohibited", rejected, 0, Unreachable, 1, 1},
		{"hop-limit-exceeded", far, 1, TTLExceeded, 3, 0},
	}
	for _, mode := range []Mode{ModeRaw, ModeDatagram} {
		e := openEngine(t, mode)
		for _, c := range cases {
			t.Run(mode.String()+"/"+c.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				start := time.Now()
				res, err := e.Ping(ctx, Request{Dst: c.dst, Count: 3, Interval: 200 * time.Millisecond, TTL: c.ttl})
				elapsed := time.Since(start)
				t.Logf("%s → %s: request ended after %.1f ms", mode, c.dst, float64(elapsed.Microseconds())/1000)
				if err != nil {
					t.Fatal(err)
				}
				if elapsed > 2*time.Second {
					t.Errorf("request took %v: the ICMPv6 error did not end it", elapsed)
				}
				if len(res.Echoes) != 3 {
					t.Fatalf("%d echoes, want all 3 reported: %+v", len(res.Echoes), res.Echoes)
				}
				for i, ec := range res.Echoes {
					if ec.Fate != c.fate || ec.ICMPType != c.typ || ec.ICMPCode != c.cod || ec.From != r6.NS {
						t.Errorf("echo %d: %+v, want fate %v type %d code %d from %v", i, ec, c.fate, c.typ, c.cod, r6.NS)
					}
				}
			})
		}
	}
}

// TestExactLoss: the responder's input hook drops every second echo request
// (the first, third, …): exactly those echoes are Lost, the others Replied.
func TestExactLoss(t *testing.T) {
	ns := testutil.NewNetNS(t)
	testutil.NeedNft(t)
	dst := netip.MustParseAddr(ns.NSAddr)
	for _, mode := range []Mode{ModeRaw, ModeDatagram} {
		t.Run(mode.String(), func(t *testing.T) {
			e := openEngine(t, mode)
			ns.Nft(t, `table inet loss
delete table inet loss
table inet loss {
	chain in {
		type filter hook input priority 0;
		icmp type echo-request numgen inc mod 2 == 0 drop
	}
}`)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := e.Ping(ctx, Request{Dst: dst, Count: 10, Interval: 20 * time.Millisecond, Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Echoes) != 10 {
				t.Fatalf("%d echoes", len(res.Echoes))
			}
			lost := 0
			for i, ec := range res.Echoes {
				want := Replied
				if i%2 == 0 {
					want = Lost
					lost++
				}
				if ec.Fate != want {
					t.Errorf("echo %d: %v, want %v", i, ec.Fate, want)
				}
			}
			if st := e.Stats(); st.Lost != 5 || st.Received != 5 || st.Sent != 10 {
				t.Errorf("stats %+v, want 10 sent, 5 received, 5 lost", st)
			}
		})
	}
}

// TestContextEndsPendingEchoesLost: echoes to an address that never answers
// are Lost when ctx ends, or at the request's Deadline, and Ping returns at
// once then, not after a poll.
func TestContextEndsPendingEchoesLost(t *testing.T) {
	ns := testutil.NewNetNS(t)
	ns.Router(t)
	silent := ns.BehindRouter(t)
	ns.Route(t, "blackhole", silent.String()+"/32") // dropped: no answer, no error
	e := openEngine(t, ModeAuto)
	for _, byDeadline := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		end := deadlineOf(ctx)
		req := Request{Dst: silent, Count: 3, Interval: 50 * time.Millisecond}
		if byDeadline {
			cancel()
			ctx, cancel = context.WithCancel(context.Background())
			req.Deadline = end
		}
		res, err := e.Ping(ctx, req)
		late := time.Since(end)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("by Deadline %v: Ping returned %v after the deadline", byDeadline, late)
		if late < 0 || late > time.Second {
			t.Errorf("by Deadline %v: Ping returned %v after the deadline", byDeadline, late)
		}
		if len(res.Echoes) != 3 {
			t.Fatalf("by Deadline %v: %d echoes: %+v", byDeadline, len(res.Echoes), res.Echoes)
		}
		for i, ec := range res.Echoes {
			if ec.Fate != Lost || ec.RTT != 0 {
				t.Errorf("by Deadline %v: echo %d: %+v", byDeadline, i, ec)
			}
		}
	}
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// TestClose: Close fails a request waiting for replies with ErrClosed at
// once, is safe to call twice, and later Pings fail with ErrClosed.
func TestClose(t *testing.T) {
	ns := testutil.NewNetNS(t)
	ns.Router(t)
	silent := ns.BehindRouter(t)
	ns.Route(t, "blackhole", silent.String()+"/32")
	needMode(t, ModeAuto)
	e, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan struct{})
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := e.Ping(context.Background(), Request{Dst: silent, Count: 3, Interval: 10 * time.Millisecond,
			OnEcho: func(Echo) {}})
		done <- outcome{res, err}
	}()
	go func() {
		defer close(sent)
		for e.Stats().Sent < 3 {
			time.Sleep(time.Millisecond)
		}
	}()
	select {
	case <-sent:
	case <-time.After(5 * time.Second):
		t.Fatal("echoes not sent within 5 s")
	}
	if err := e.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	select {
	case o := <-done:
		if o.err != ErrClosed || len(o.res.Echoes) != 3 || o.res.Echoes[2].Fate != Lost {
			t.Errorf("Ping during Close: %v, %+v", o.err, o.res.Echoes)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Ping did not return after Close")
	}
	if _, err := e.Ping(context.Background(), Request{Dst: silent, Count: 1}); err != ErrClosed {
		t.Errorf("Ping after Close: %v, want ErrClosed", err)
	}
}
