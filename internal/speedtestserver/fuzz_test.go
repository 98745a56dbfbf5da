package speedtestserver

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	fuzzRandomOnce sync.Once
	fuzzRandom     []byte
)

// fuzzServer is a server without sockets, for its handlers and parsers;
// small limits keep each input fast.
func fuzzServer() *Server {
	fuzzRandomOnce.Do(func() { fuzzRandom = randomBlock() })
	opts := Options{MaxImageSize: 64, MaxUploadBytes: 64 << 10, StallTimeout: time.Second}
	opts.applyDefaults()
	return &Server{opts: opts, random: fuzzRandom, loss: newLossTable(4), controls: map[net.Conn]struct{}{},
		perIP: map[string]int{}}
}

var fuzzImageRE = regexp.MustCompile(`^/speedtest/random([0-9]+)x([0-9]+)\.jpg$`)

// FuzzHTTPRequest feeds raw HTTP requests to the server's handlers: no
// panic, a status that says what happened, and a 200 that means it.
func FuzzHTTPRequest(f *testing.F) {
	for _, seed := range []string{
		"GET /speedtest/latency.txt HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /speedtest/random10x20.jpg HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /speedtest/random0x99999.jpg HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /speedtest/upload.php HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
		"POST /speedtest/upload.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"POST /speedtest/upload.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n",
		"POST /speedtest/upload.php HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n",
		"PUT /speedtest/upload.php HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	s := fuzzServer()
	h := s.routes()
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return // net/http refuses it before any handler runs
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code < 200 || w.Code > 599 {
			t.Fatalf("status %d", w.Code)
		}
		if w.Code != http.StatusOK {
			return
		}
		switch {
		case req.Method == http.MethodPost && req.URL.Path == "/speedtest/upload.php":
			n, err := strconv.Atoi(strings.TrimPrefix(w.Body.String(), "size="))
			if err != nil || n < 0 || int64(n) > s.opts.MaxUploadBytes {
				t.Fatalf("upload answered 200 %q", w.Body.String())
			}
			if req.ContentLength >= 0 && int64(n) != req.ContentLength {
				t.Fatalf("upload of Content-Length %d answered %q", req.ContentLength, w.Body.String())
			}
		case fuzzImageRE.MatchString(req.URL.Path):
			m := fuzzImageRE.FindStringSubmatch(req.URL.Path)
			width, _ := strconv.Atoi(m[1])
			height, _ := strconv.Atoi(m[2])
			if w.Body.Len() != width*height*2 {
				t.Fatalf("%s: %d bytes, want %d", req.URL.Path, w.Body.Len(), width*height*2)
			}
		}
	})
}

var controlReply = regexp.MustCompile(`^(HELLO [^\n]*|PONG [0-9]{13}|PLOSS [0-9]+ [0-9]+ [0-9]+)$`)

// FuzzControlProtocol feeds a control connection arbitrary lines (and a
// final QUIT): it must end, and answer only well-formed replies, since
// speedtest-go panics on a PLOSS reply without exactly four fields.
func FuzzControlProtocol(f *testing.F) {
	for _, seed := range []string{
		"HI\n", "HI 1234-abcd\nINITPLOSS\nPLOSS\n", "PING 1700000000000\n", "PLOSS\n",
		"HI a\nHI b\n", "INITPLOSS\n", "  \n\n", "PINGPONG\n", strings.Repeat("x", 600) + "\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		s := fuzzServer()
		server, client := net.Pipe()
		c := &conn{Conn: server, r: bufio.NewReaderSize(server, 512), release: func() {},
			lifetime: time.NewTimer(time.Hour)}
		done := make(chan struct{})
		go func() { s.serveControl(c); close(done) }()
		go func() {
			_, _ = client.Write(append(bytes.Clone(input), "\nQUIT\n"...))
		}()
		_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
		out, err := io.ReadAll(client)
		client.Close()
		if err != nil && err != io.ErrClosedPipe {
			t.Fatalf("control connection did not end: %v", err)
		}
		<-done
		for _, line := range strings.SplitAfter(string(out), "\n") {
			if line == "" {
				continue
			}
			if !strings.HasSuffix(line, "\n") || !controlReply.MatchString(strings.TrimSuffix(line, "\n")) {
				t.Fatalf("malformed reply %q", line)
			}
		}
	})
}

// FuzzLossDatagram feeds the UDP packet-loss parser and table arbitrary
// datagrams for an open session.
func FuzzLossDatagram(f *testing.F) {
	for _, seed := range []string{
		"LOSS 1 0 abc", "LOSS 1 65535 ABC", "LOSS 1 65536 abc", "LOSS 1 -1 abc", "LOSS x y z",
		"LOSS 1 99999999999999999999 abc", "LOSS  1  2  abc  ", "",
	} {
		f.Add([]byte(seed), []byte("LOSS 2 3 abc"))
	}
	f.Fuzz(func(t *testing.T, first, second []byte) {
		table := newLossTable(4)
		for _, d := range [][]byte{first, second, first} {
			id, order, ok := parseLoss(d)
			if !ok {
				continue
			}
			if strings.ToLower(id) != id || id == "" {
				t.Fatalf("parseLoss(%q) id %q", d, id)
			}
			table.open(id)
			table.record(id, order)
			received, dups, highest := table.stats(id)
			if dups < 0 || received < dups || highest < 0 || highest >= maxOrder {
				t.Fatalf("after %q: received %d dups %d highest %d", d, received, dups, highest)
			}
			if line := fmt.Sprintf("PLOSS %d %d %d", received, dups, highest); !controlReply.MatchString(line) {
				t.Fatalf("reply %q", line)
			}
		}
	})
}
