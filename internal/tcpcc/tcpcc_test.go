package tcpcc

import (
	"net"
	"strings"
	"testing"

	"github.com/netpulse/netpulse/internal/testutil"
)

// A listener's algorithm passes to the connections it accepts, and a
// client's is its own: both read back what was set.
func TestSetGet(t *testing.T) {
	testutil.Need(t, testutil.IsRoot(), "root, to pick any available TCP congestion control")
	testutil.Need(t, Check("cubic") == nil && Check("reno") == nil, "cubic and reno available")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := Set(l.(*net.TCPListener), "cubic"); err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := Set(c.(*net.TCPConn), "reno"); err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	defer s.Close()
	if got := Get(s.(*net.TCPConn)); got != "cubic" {
		t.Errorf("accepted connection uses %q, want the listener's cubic", got)
	}
	if got := Get(c.(*net.TCPConn)); got != "reno" {
		t.Errorf("client connection uses %q, want reno", got)
	}
}

// An algorithm the system lacks, or a malformed name, is refused with an
// error naming it and what to do.
func TestCheck(t *testing.T) {
	if err := Check(""); err != nil {
		t.Errorf("the default: %v", err)
	}
	for name, want := range map[string]string{
		"nosuchcc":              "is not available on this system (available: ",
		"Cubic; rm":             "is not an algorithm name",
		"averyveryverylongname": "is not an algorithm name",
	} {
		err := Check(name)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%q) = %v, want %q", name, err, want)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := Set(l.(*net.TCPListener), "nosuchcc"); err == nil || !strings.Contains(err.Error(), "modprobe tcp_nosuchcc") {
		t.Errorf("Set(nosuchcc) = %v, want the reason", err)
	}
}
