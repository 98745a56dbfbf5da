package speedtestserver

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/netpulse/netpulse/internal/tcpcc"
)

// chunkSize is how much a download writes, or an upload reads, between two
// stall deadlines.
const chunkSize = 64 << 10

// randomBlock returns 1 MiB of pseudo-random bytes, served in a loop: a link
// that compresses cannot make the test look faster.
func randomBlock() []byte {
	b := make([]byte, 1<<20)
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(rand.Uint32())
	}
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}

var imageRE = regexp.MustCompile(`^/speedtest/random([0-9]{1,6})x([0-9]{1,6})\.jpg$`)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /speedtest/latency.txt", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("test=test\n"))
	})
	mux.HandleFunc("POST /speedtest/upload.php", s.upload)
	mux.HandleFunc("GET /speedtest/", s.download)
	s.nqRoutes(mux)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "netpulse speed test server: point speedtest-go (--server), `netpulse speedtest --server` or a speedtest probe target here.")
	})
	return mux
}

// download streams W*H*2 bytes for random{W}x{H}.jpg (random4000x4000.jpg
// is 32 MB, close to Ookla's file of that name).
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	m := imageRE.FindStringSubmatch(r.URL.Path)
	if m == nil {
		http.NotFound(w, r)
		return
	}
	width, _ := strconv.Atoi(m[1])
	height, _ := strconv.Atoi(m[2])
	if width < 1 || height < 1 || width > s.opts.MaxImageSize || height > s.opts.MaxImageSize {
		http.Error(w, fmt.Sprintf("image sides must be between 1 and %d", s.opts.MaxImageSize), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	s.stream(w, r, int64(width)*int64(height)*2)
}

// stream writes size incompressible bytes, naming the connection's
// congestion control (tcpcc.Header); a client that stalls for a
// StallTimeout is cut.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, size int64) {
	s.stats.downloads.Add(1)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	if cc := congestion(r); cc != "" {
		w.Header().Set(tcpcc.Header, cc)
	}
	rc := http.NewResponseController(w)
	off := rand.IntN(len(s.random)/chunkSize) * chunkSize
	for size > 0 {
		n := min(int64(chunkSize), size, int64(len(s.random)-off))
		_ = rc.SetWriteDeadline(time.Now().Add(s.opts.StallTimeout))
		written, err := w.Write(s.random[off : off+int(n)])
		s.stats.sent.Add(int64(written))
		if err != nil {
			return // the client went away or stalled
		}
		size -= n
		off = (off + int(n)) % len(s.random)
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// upload reads the body to nowhere, chunk by chunk, and answers size=N as
// Ookla servers do; speedtest-go counts the bytes once it sees the 2xx. A
// body that is malformed (bad chunked encoding, cut short) gets 400, one
// that moves less than MinProgress bytes in a StallTimeout gets 408: no
// 2xx for bytes that did not all arrive.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	s.discard(w, r, s.opts.MaxUploadBytes)
}

// discard reads a request body of at most limit bytes to nowhere.
func (s *Server) discard(w http.ResponseWriter, r *http.Request, limit int64) {
	if r.ContentLength > limit {
		// The server closes the connection after this reply rather than read the body.
		http.Error(w, fmt.Sprintf("upload body of %d bytes exceeds the limit of %d", r.ContentLength, limit),
			http.StatusRequestEntityTooLarge)
		return
	}
	s.stats.uploads.Add(1)
	rc := http.NewResponseController(w)
	body := http.MaxBytesReader(w, r.Body, limit)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	var total, window int64
	// The deadline moves only once MinProgress bytes came in: a trickle
	// that keeps the connection busy but moves nothing runs into it.
	_ = rc.SetReadDeadline(time.Now().Add(s.opts.StallTimeout))
	for {
		n, err := body.Read(*bp)
		total += int64(n)
		s.stats.received.Add(int64(n))
		if window += int64(n); window >= s.opts.MinProgress {
			window = 0
			_ = rc.SetReadDeadline(time.Now().Add(s.opts.StallTimeout))
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.uploadFailed(w, err, limit)
			return
		}
	}
	_ = rc.SetReadDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "size=%d", total)
}

// uploadFailed answers an upload whose body could not be read whole.
func (s *Server) uploadFailed(w http.ResponseWriter, err error, limit int64) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.opts.StallTimeout))
	w.Header().Set("Connection", "close")
	if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
		http.Error(w, fmt.Sprintf("upload body exceeds the limit of %d bytes", limit),
			http.StatusRequestEntityTooLarge)
		return
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		// The client may still read the answer; it is cut either way.
		http.Error(w, fmt.Sprintf("upload too slow: less than %d bytes in %s", s.opts.MinProgress, s.opts.StallTimeout),
			http.StatusRequestTimeout)
		return
	}
	http.Error(w, "malformed upload body: "+err.Error(), http.StatusBadRequest)
}
