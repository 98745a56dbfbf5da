package speedtestserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/showwin/speedtest-go/speedtest"
	"github.com/showwin/speedtest-go/speedtest/transport"

	"github.com/netpulse/netpulse/internal/testutil"
)

func start(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := Listen("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

// The real speedtest-go client runs its latency, download and upload tests
// against the server, as `speedtest-go --custom-url` would.
func TestSpeedtestGoClient(t *testing.T) {
	s := start(t, Options{})
	client := speedtest.New(speedtest.WithDoer(&http.Client{Timeout: 30 * time.Second}))
	srv, err := client.CustomServer(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := srv.PingTestContext(ctx, nil); err != nil {
		t.Fatalf("latency test: %v", err)
	}
	if srv.Latency <= 0 || srv.Latency > 100*time.Millisecond {
		t.Errorf("latency %v on loopback", srv.Latency)
	}
	client.SetCaptureTime(time.Second)
	if err := srv.DownloadTestContext(ctx); err != nil {
		t.Fatalf("download: %v", err)
	}
	client.Reset()
	if err := srv.UploadTestContext(ctx); err != nil {
		t.Fatalf("upload: %v", err)
	}
	st := s.Stats()
	t.Logf("loopback, 1 s each: download %.0f Mbit/s, upload %.0f Mbit/s; %+v", srv.DLSpeed.Mbps(), srv.ULSpeed.Mbps(), st)
	if srv.DLSpeed <= 0 || srv.ULSpeed <= 0 {
		t.Errorf("download %v, upload %v: want both > 0", srv.DLSpeed, srv.ULSpeed)
	}
	if st.Downloads == 0 || st.BytesSent == 0 || st.Uploads == 0 || st.BytesReceived == 0 {
		t.Errorf("server saw %+v; want downloads and uploads", st)
	}
}

func TestTCPPingAndPacketLoss(t *testing.T) {
	s := start(t, Options{})
	host := s.Addr().String()
	client := speedtest.New(speedtest.WithUserConfig(&speedtest.UserConfig{PingMode: speedtest.TCP}),
		speedtest.WithDoer(&http.Client{}))
	srv, err := client.CustomServer(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	lat, err := srv.TCPPing(t.Context(), 3, time.Millisecond, nil)
	if err != nil || len(lat) != 3 {
		t.Fatalf("TCP ping: %v, %d samples, want 3", err, len(lat))
	}

	pla := speedtest.NewPacketLossAnalyzer(&speedtest.PacketLossAnalyzerOptions{
		RemoteSamplingInterval: 200 * time.Millisecond, PacketSendingInterval: 5 * time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	var last transport.PLoss
	if err := pla.RunWithContext(ctx, host, func(pl *transport.PLoss) { last = *pl }); err != nil {
		t.Fatalf("packet loss test: %v", err)
	}
	if last.Sent < 50 || last.Loss() != 0 {
		t.Errorf("packet loss %+v (loss %g); want >= 50 datagrams and no loss on loopback", last, last.Loss())
	}
}

func TestHello(t *testing.T) {
	s := start(t, Options{})
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "HI\n")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != helloLine {
		t.Errorf("HI -> %q, %v; want %q", line, err, helloLine)
	}
}

func TestRequestBounds(t *testing.T) {
	s := start(t, Options{MaxUploadBytes: 1 << 20, MaxImageSize: 100})
	base := s.URL() + "/speedtest/"
	cases := []struct {
		name   string
		req    func() (*http.Request, error)
		status int
	}{
		{"image too large", func() (*http.Request, error) { return http.NewRequest("GET", base+"random101x10.jpg", nil) }, 400},
		{"image size zero", func() (*http.Request, error) { return http.NewRequest("GET", base+"random0x0.jpg", nil) }, 400},
		{"unknown file", func() (*http.Request, error) { return http.NewRequest("GET", base+"random.jpg", nil) }, 404},
		{"upload declared too large", func() (*http.Request, error) {
			return http.NewRequest("POST", base+"upload.php", io.LimitReader(zeros{}, 2<<20))
		}, 413},
		{"upload chunked too large", func() (*http.Request, error) {
			// No Content-Length: the limit applies while reading.
			return http.NewRequest("POST", base+"upload.php", io.NopCloser(io.LimitReader(zeros{}, 2<<20)))
		}, 413},
		{"upload wrong method", func() (*http.Request, error) { return http.NewRequest("PUT", base+"upload.php", nil) }, 405},
		{"image ok", func() (*http.Request, error) { return http.NewRequest("GET", base+"random100x10.jpg", nil) }, 200},
		{"latency", func() (*http.Request, error) { return http.NewRequest("GET", base+"latency.txt", nil) }, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := c.req()
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Errorf("status %d (%s), want %d", resp.StatusCode, strings.TrimSpace(string(body)), c.status)
			}
			if c.name == "image ok" && len(body) != 2000 {
				t.Errorf("random100x10.jpg has %d bytes, want 100*10*2", len(body))
			}
		})
	}
}

// An upload is streamed: the server allocates a small, constant amount
// whatever the body size.
func TestUploadNotBuffered(t *testing.T) {
	const size = 48 << 20
	s := start(t, Options{})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp, err := http.Post(s.URL()+"/speedtest/upload.php", "application/octet-stream", io.LimitReader(zeros{}, size))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	runtime.ReadMemStats(&after)
	if string(body) != fmt.Sprintf("size=%d", size) {
		t.Errorf("reply %q", body)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/8 {
		t.Errorf("a %d MB upload allocated %d MB: the body is being buffered", size>>20, alloc>>20)
	}
}

// Connections over the limit are closed at once, so clients fail fast; a
// freed slot is usable again.
func TestMaxConns(t *testing.T) {
	s := start(t, Options{MaxConns: 3})
	var held []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	refusedQuickly := func() error {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			return fmt.Errorf("connection over the limit: read gave %v, want EOF (closed by the server)", err)
		}
		return nil
	}
	if err := refusedQuickly(); err != nil {
		t.Fatal(err)
	}
	if s.Stats().Refused != 1 {
		t.Errorf("refused %d, want 1", s.Stats().Refused)
	}
	held[0].Close()
	testutil.Eventually(t, 5*time.Second, func() error {
		resp, err := http.Get(s.URL() + "/speedtest/latency.txt")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}

// A connection that never says anything is dropped after the stall timeout.
func TestSilentConnectionDropped(t *testing.T) {
	s := start(t, Options{StallTimeout: 200 * time.Millisecond})
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("read on a silent connection: %v, want EOF once the server drops it", err)
	}
}

func TestControlGarbageCloses(t *testing.T) {
	s := start(t, Options{})
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "PINGPONG"+strings.Repeat("x", 1000)+"\n")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	// Closed (EOF, or a reset since our line was not read), not left open.
	if _, err := io.ReadAll(c); err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("an over-long control line: %v, want the connection closed", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
