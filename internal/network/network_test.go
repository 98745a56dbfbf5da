package network

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/netpulse/netpulse/internal/testutil"
)

func testNet(dns string) *Net { return New(NewResolver(dns), noop.NewTracerProvider()) }

// Literal addresses need no lookup but must be of the allowed family;
// names resolve to the allowed families, preferred family first.
func TestResolve(t *testing.T) {
	dns := testutil.DNSServer(t, map[string]netip.Addr{"v4only.test": netip.MustParseAddr("127.0.0.3")})
	n := testNet(dns)
	ctx := context.Background()
	for _, c := range []struct {
		host, version, want, wantErr string
	}{
		{"127.0.0.1", IPAuto, "127.0.0.1", ""},
		{"::1", IPv6, "::1", ""},
		{"::ffff:127.0.0.1", IPv4, "127.0.0.1", ""},
		{"::1", IPv4, "", "::1 is not an IPv4 address"},
		{"v4only.test", IPAuto, "127.0.0.3", ""},
		{"v4only.test", IPv6, "", "has no IPv6 address"},
		{"gone.test", IPAuto, "", "resolve gone.test"},
	} {
		addrs, err := n.Resolve(ctx, c.host, Settings{IPVersion: c.version})
		switch {
		case c.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || Classify(err) != ErrResolve {
				t.Errorf("Resolve(%s, %s) = %v, %v; want a resolve error containing %q", c.host, c.version, addrs, err, c.wantErr)
			}
		case err != nil || len(addrs) == 0 || addrs[0].String() != c.want:
			t.Errorf("Resolve(%s, %s) = %v, %v; want %s first", c.host, c.version, addrs, err, c.want)
		}
	}
}

func TestFallbacks(t *testing.T) {
	in := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"),
		netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")}
	want := []netip.Addr{in[0], in[2]}
	if got := Fallbacks(in); !slices.Equal(got, want) {
		t.Errorf("Fallbacks = %v, want %v", got, want)
	}
	if got := Fallbacks(in[2:]); !slices.Equal(got, in[2:3]) {
		t.Errorf("Fallbacks(IPv6 only) = %v", got)
	}
}

// The dialer sends from the configured source: an address, or the
// address of an interface in the target's family.
func TestDialerSource(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peers := make(chan string, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			peers <- c.RemoteAddr().(*net.TCPAddr).IP.String()
			c.Close()
		}
	}()
	n := testNet("")
	for source, want := range map[string]string{"127.0.0.2": "127.0.0.2", "lo": "127.0.0.1"} {
		c, err := n.Dialer(Settings{IPVersion: IPAuto, Source: source}).DialContext(context.Background(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatalf("source %s: %v", source, err)
		}
		c.Close()
		if got := <-peers; got != want {
			t.Errorf("source %s: the server saw %s, want %s", source, got, want)
		}
	}
}

// One classification for every probe type: what the kernel said, not the
// error text.
func TestClassify(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	_, refused := net.Dial("tcp", closed)
	_, dnsErr := testNet(testutil.DNSServer(t, nil)).Dialer(Settings{IPVersion: IPAuto}).DialContext(
		context.Background(), "tcp", "gone.test:80")
	for err, want := range map[error]string{
		refused:                                 ErrRefused,
		dnsErr:                                  ErrResolve,
		&net.OpError{Err: syscall.EHOSTUNREACH}: ErrUnreachable,
		&net.OpError{Err: syscall.ENETUNREACH}:  ErrNetwork,
		&net.OpError{Err: syscall.EPERM}:        ErrPermission,
		Fail(ErrTTLExceeded, errors.New("x")):   ErrTTLExceeded,
		errors.New("something else"):            ErrInternal,
	} {
		if got := Classify(err); got != want {
			t.Errorf("Classify(%v) = %s, want %s", err, got, want)
		}
	}
}

// A TCP connection to an address behind an "unreachable" route fails at
// once as unreachable, and one behind a "prohibit" route as permission (in
// a namespace of the test's; the dial runs there through setns).
func TestDialUnreachableRoute(t *testing.T) {
	ns := testutil.NewNetNS(t)
	for _, route := range []string{"unreachable 198.18.7.0/24", "prohibit 198.18.8.0/24"} {
		if out, err := ns.Exec("ip", append([]string{"route", "add"}, strings.Fields(route)...)...); err != nil {
			t.Fatalf("ip route add %s: %v %s", route, err, out)
		}
	}
	for addr, want := range map[string]string{"198.18.7.1:80": ErrUnreachable, "198.18.8.1:80": ErrPermission} {
		var err error
		ns.Do(t, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err = testNet("").Dialer(Settings{IPVersion: IPAuto}).DialContext(ctx, "tcp", addr)
		})
		if got := Classify(err); got != want {
			t.Errorf("dial %s: %v classified %q, want %q", addr, err, got, want)
		}
	}
}
