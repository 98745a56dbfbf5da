package speedtestserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// dialFrom connects to addr from the loopback address local (127.0.0.0/8
// is all local on Linux, so each address is a distinct client).
func dialFrom(t *testing.T, addr, local string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// hello checks that c is served: HI gets HELLO.
func hello(c net.Conn, r *bufio.Reader) error {
	if _, err := fmt.Fprint(c, "HI\n"); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := r.ReadString('\n')
	if err != nil || line != helloLine {
		return fmt.Errorf("HI -> %q, %v", line, err)
	}
	return nil
}

// closedByServer waits (up to within) for the server to close c.
func closedByServer(t *testing.T, c net.Conn, r io.Reader, within time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, r)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after %s", within)
	}
}

func TestMaxConnsPerClient(t *testing.T) {
	s := start(t, Options{MaxConns: 10, MaxConnsPerClient: 2})
	addr := s.Addr().String()
	for range 2 {
		c := dialFrom(t, addr, "127.0.0.1")
		if err := hello(c, bufio.NewReader(c)); err != nil {
			t.Fatal(err)
		}
	}
	third := dialFrom(t, addr, "127.0.0.1")
	closedByServer(t, third, third, 10*time.Second)
	if got := s.Stats().RefusedClient; got != 1 {
		t.Errorf("refused per client %d, want 1", got)
	}
	other := dialFrom(t, addr, "127.0.0.2") // another client still gets in
	if err := hello(other, bufio.NewReader(other)); err != nil {
		t.Fatalf("a second client: %v", err)
	}
}

// A connection kept busy (a PING every 20 ms) still ends at its lifetime.
func TestConnectionLifetime(t *testing.T) {
	const lifetime = 300 * time.Millisecond
	s := start(t, Options{MaxConnLifetime: lifetime})
	c := dialFrom(t, s.Addr().String(), "127.0.0.1")
	r := bufio.NewReader(c)
	opened := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprint(c, "PING 1\n"); err != nil {
			break
		}
		if _, err := r.ReadString('\n'); err != nil {
			break
		}
		if time.Since(opened) > 20*time.Second {
			t.Fatal("a busy connection outlived its lifetime of 300ms by far")
		}
	}
	if took := time.Since(opened); took < lifetime {
		t.Fatalf("closed after %s, before its lifetime", took)
	}
}

// A control connection that pings less often than the stall timeout is
// idle, and closed: before, it could hold a slot for ever.
func TestIdleControlConnectionClosed(t *testing.T) {
	const stall = 300 * time.Millisecond
	s := start(t, Options{StallTimeout: stall})
	c := dialFrom(t, s.Addr().String(), "127.0.0.1")
	r := bufio.NewReader(c)
	if err := hello(c, r); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(2 * stall)
	defer tick.Stop()
	for i := range 10 {
		<-tick.C
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, werr := fmt.Fprint(c, "PING 1\n")
		if _, rerr := r.ReadString('\n'); werr != nil || rerr != nil {
			if i > 0 {
				t.Fatalf("closed only after %d pings", i)
			}
			return
		}
	}
	t.Fatal("a control connection pinging every 2 stall timeouts was kept open")
}

// An upload that trickles (here 1 byte per 50 ms against a minimum of 1 KiB
// per 400 ms; in the field 1 byte per 8 s) is cut with 408, though bytes
// keep coming in well within the stall timeout.
func TestTrickleUploadCut(t *testing.T) {
	s := start(t, Options{StallTimeout: 400 * time.Millisecond, MinProgress: 1 << 10})
	c := dialFrom(t, s.Addr().String(), "127.0.0.1")
	if _, err := fmt.Fprint(c, "POST /speedtest/upload.php HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	answered := make(chan *http.Response, 1)
	go func() {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			resp = nil
		}
		answered <- resp
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for sent := 0; ; sent++ {
		select {
		case resp := <-answered:
			if resp == nil || resp.StatusCode != http.StatusRequestTimeout {
				t.Fatalf("trickle upload answered %v, want 408", resp)
			}
			return
		case <-tick.C:
			if sent == 400 { // 20 s
				t.Fatal("a trickle upload was never cut")
			}
			_, _ = c.Write([]byte{0})
		}
	}
}

func TestMalformedChunkedUpload(t *testing.T) {
	s := start(t, Options{})
	for name, body := range map[string]string{
		"bad chunk size":     "zz\r\nhello\r\n0\r\n\r\n",
		"missing chunk CRLF": "5\r\nhelloXX5\r\nhello\r\n0\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			c := dialFrom(t, s.Addr().String(), "127.0.0.1")
			fmt.Fprint(c, "POST /speedtest/upload.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+body)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "malformed") {
				t.Fatalf("status %d %q, want 400 malformed", resp.StatusCode, msg)
			}
		})
	}
}
