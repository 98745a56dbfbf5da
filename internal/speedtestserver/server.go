// Package speedtestserver is netpulse's built-in speed test server. It speaks
// the protocol speedtest-go (and Ookla's legacy HTTP clients) use with a
// custom server, so users can measure their LAN and tests measure against a
// real server:
//
//	GET  /speedtest/latency.txt          a tiny body, for HTTP round trips
//	GET  /speedtest/random{W}x{H}.jpg    W*H*2 incompressible bytes, streamed
//	POST /speedtest/upload.php           the body is read and discarded
//
// and, on the same TCP port, the line-based control protocol ("HI", "PING",
// "INITPLOSS", "PLOSS", "QUIT") with, on the same UDP port, the "LOSS"
// datagrams of speedtest-go's packet-loss test.
//
// It is meant to face untrusted clients: connections are capped, in all and
// per client address (extra ones are closed at once, so a client fails fast
// instead of hanging), and each lives at most MaxConnLifetime; request
// headers, image sizes and upload bodies are bounded; a transfer that moves
// less than MinProgress bytes in a StallTimeout is cut, as is a control
// connection quiet for a StallTimeout; uploads are streamed to nowhere,
// never buffered.
package speedtestserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/netpulse/netpulse/internal/tcpcc"
)

// Defaults of Options.
const (
	DefaultMaxConns       = 64
	DefaultMaxUploadBytes = 64 << 20
	DefaultMaxImageSize   = 4000 // random4000x4000.jpg: 32 MB, the largest Ookla size
	DefaultStallTimeout   = 10 * time.Second
	// A speed test client uses about connections+2: speedtest-go ~10, a
	// netpulse probe at its maximum of 32 connections ~34.
	DefaultMaxConnsPerClient = 40
	// Longer than any test: phases last seconds, a whole test under a minute.
	DefaultMaxConnLifetime = 5 * time.Minute
	// 16 KiB per 10 s (13 kbit/s): below it a speed test means nothing.
	DefaultMinProgress = 16 << 10
)

// Options bounds what one server gives its clients.
type Options struct {
	// MaxConns caps simultaneous TCP connections (HTTP and control); one
	// speed test client uses about connections+2. Extra connections are
	// closed as soon as they are accepted.
	MaxConns int
	// MaxUploadBytes caps the body of one upload request (413 above it).
	MaxUploadBytes int64
	// MaxImageSize caps W and H of random{W}x{H}.jpg (400 above it).
	MaxImageSize int
	// StallTimeout cuts a connection that sends or accepts nothing for this
	// long, and bounds how long a new connection may take to say what it is.
	// A control connection quiet for this long is closed.
	StallTimeout time.Duration
	// MinProgress is how many bytes a transfer must move in every
	// StallTimeout: a trickle (a byte every few seconds) is cut.
	MinProgress int64
	// MaxConnsPerClient caps the connections of one remote address, so one
	// client cannot take every slot.
	MaxConnsPerClient int
	// MaxConnLifetime closes any connection this long after it opened.
	MaxConnLifetime time.Duration
	// TCPCongestion is the congestion control of every accepted connection
	// (Listen sets it on the listening socket): what downloads use. Empty:
	// the system's default. Downloads name it in the tcpcc.Header header.
	TCPCongestion string
	// TLS, when set, serves HTTPS (with HTTP/2) on the same port as plain
	// HTTP: a connection that opens with a TLS handshake gets it. RPM
	// clients (Apple's networkQuality, goresponsiveness) insist on it.
	TLS    *tls.Config
	Logger *slog.Logger
}

func (o *Options) applyDefaults() {
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxUploadBytes <= 0 {
		o.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if o.MaxImageSize <= 0 {
		o.MaxImageSize = DefaultMaxImageSize
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	if o.MinProgress <= 0 {
		o.MinProgress = DefaultMinProgress
	}
	if o.MaxConnsPerClient <= 0 {
		o.MaxConnsPerClient = DefaultMaxConnsPerClient
	}
	o.MaxConnsPerClient = min(o.MaxConnsPerClient, o.MaxConns)
	if o.MaxConnLifetime <= 0 {
		o.MaxConnLifetime = DefaultMaxConnLifetime
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Stats are the server's counters since it started.
type Stats struct {
	BytesSent     int64 // random*.jpg bodies written
	BytesReceived int64 // upload bodies read
	Downloads     int64 // random*.jpg requests
	Uploads       int64 // upload requests
	Refused       int64 // connections closed because MaxConns were open
	// RefusedClient counts connections closed because their address had
	// MaxConnsPerClient open.
	RefusedClient int64
}

// Server is a listening speed test server.
type Server struct {
	opts   Options
	tcp    net.Listener
	udp    net.PacketConn
	http   *http.Server
	httpLn *chanListener
	// https and httpsLn serve the connections that open with a TLS
	// handshake (nil without Options.TLS).
	https   *http.Server
	httpsLn *chanListener
	loss    *lossTable
	random  []byte

	active atomic.Int64
	stats  struct{ sent, received, downloads, uploads, refused, refusedClient atomic.Int64 }

	ipMu  sync.Mutex
	perIP map[string]int // open connections by remote address

	mu       sync.Mutex
	controls map[net.Conn]struct{}
	closed   bool
	wg       sync.WaitGroup
}

// Listen binds addr on TCP (HTTP and control protocol) and, on the same
// port, UDP (packet loss). With port 0 the UDP socket takes the TCP port.
func Listen(addr string, opts Options) (*Server, error) {
	if err := tcpcc.Check(opts.TCPCongestion); err != nil {
		return nil, err
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return tcpcc.SetRaw(c, opts.TCPCongestion)
	}}
	if opts.TCPCongestion == "" {
		lc.Control = nil
	}
	tcp, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %q: %w", addr, err)
	}
	host, _, _ := net.SplitHostPort(addr)
	port := tcp.Addr().(*net.TCPAddr).Port
	udp, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		_ = tcp.Close()
		return nil, fmt.Errorf("cannot listen on UDP port %d for the packet-loss test: %w", port, err)
	}
	return New(tcp, udp, opts), nil
}

// New serves on existing sockets; udp may be nil (no packet-loss test).
func New(tcp net.Listener, udp net.PacketConn, opts Options) *Server {
	opts.applyDefaults()
	s := &Server{opts: opts, tcp: tcp, udp: udp, loss: newLossTable(opts.MaxConns),
		random: randomBlock(), controls: map[net.Conn]struct{}{}, perIP: map[string]int{}}
	s.httpLn = newChanListener(tcp.Addr())
	s.http = s.newHTTPServer()
	if opts.TLS != nil {
		s.httpsLn = newChanListener(tcp.Addr())
		s.https = s.newHTTPServer()
		s.https.TLSConfig = opts.TLS.Clone()
		if len(s.https.TLSConfig.NextProtos) == 0 {
			s.https.TLSConfig.NextProtos = []string{"h2", "http/1.1"}
		}
	}
	return s
}

func (s *Server) newHTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: s.opts.StallTimeout,
		IdleTimeout:       2 * s.opts.StallTimeout,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
	}
}

// Addr is the bound TCP address (the UDP socket has the same port).
func (s *Server) Addr() net.Addr { return s.tcp.Addr() }

// URL is the base URL clients use: http://host:port.
func (s *Server) URL() string { return "http://" + s.tcp.Addr().String() }

// Stats returns the counters so far.
func (s *Server) Stats() Stats {
	return Stats{BytesSent: s.stats.sent.Load(), BytesReceived: s.stats.received.Load(),
		Downloads: s.stats.downloads.Load(), Uploads: s.stats.uploads.Load(), Refused: s.stats.refused.Load(),
		RefusedClient: s.stats.refusedClient.Load()}
}

// Serve accepts connections until ctx ends or the listener fails, then
// closes everything: in-flight transfers are cut, not drained (a speed test
// cut short is worthless anyway).
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, s.Close)
	defer stop()
	if s.udp != nil {
		s.wg.Go(s.serveUDP)
	}
	s.wg.Go(func() { _ = s.http.Serve(s.httpLn) })
	if s.https != nil {
		s.wg.Go(func() { _ = s.https.ServeTLS(s.httpsLn, "", "") })
	}
	err := s.accept()
	s.Close()
	s.wg.Wait()
	if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Close stops the server and cuts every connection.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for c := range s.controls {
		_ = c.Close()
	}
	s.mu.Unlock()
	_ = s.tcp.Close()
	if s.udp != nil {
		_ = s.udp.Close()
	}
	_ = s.http.Close()
	_ = s.httpLn.Close()
	if s.https != nil {
		_ = s.https.Close()
		_ = s.httpsLn.Close()
	}
}

func (s *Server) accept() error {
	var delay time.Duration
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				// Out of file descriptors and the like: back off, as net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		if s.active.Add(1) > int64(s.opts.MaxConns) {
			s.active.Add(-1)
			s.stats.refused.Add(1)
			s.opts.Logger.Debug("speedtest-server: connection refused, too many open", "remote", c.RemoteAddr().String(),
				"max_conns", s.opts.MaxConns)
			_ = c.Close()
			continue
		}
		ip := remoteIP(c)
		if !s.admitClient(ip) {
			s.active.Add(-1)
			s.stats.refusedClient.Add(1)
			s.opts.Logger.Debug("speedtest-server: connection refused, too many open from this client",
				"remote", c.RemoteAddr().String(), "max_conns_per_client", s.opts.MaxConnsPerClient)
			_ = c.Close()
			continue
		}
		s.wg.Go(func() { s.dispatch(c, ip) })
	}
}

// remoteIP is the address a connection counts against in perIP.
func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return c.RemoteAddr().String()
}

// admitClient takes a per-client slot for ip, unless it has all of its own.
func (s *Server) admitClient(ip string) bool {
	s.ipMu.Lock()
	defer s.ipMu.Unlock()
	if s.perIP[ip] >= s.opts.MaxConnsPerClient {
		return false
	}
	s.perIP[ip]++
	return true
}

// release frees the slots a connection held.
func (s *Server) release(ip string) {
	s.active.Add(-1)
	s.ipMu.Lock()
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
	s.ipMu.Unlock()
}

// controlPrefixes are the first two bytes of the control protocol's
// commands; no HTTP method starts with them.
var controlPrefixes = []string{"HI", "PI", "IN", "PL", "QU"}

// dispatch reads the first two bytes of a connection and hands it to the
// control protocol or to the HTTP server.
func (s *Server) dispatch(raw net.Conn, ip string) {
	c := &conn{Conn: raw, r: bufio.NewReaderSize(raw, 512), release: func() { s.release(ip) }}
	// However busy a connection keeps, it ends after MaxConnLifetime.
	// Closing the socket underneath wakes its owner, which then closes c.
	c.lifetime = time.AfterFunc(s.opts.MaxConnLifetime, func() { _ = raw.Close() })
	_ = c.SetReadDeadline(time.Now().Add(s.opts.StallTimeout))
	head, err := c.r.Peek(2)
	if err != nil {
		_ = c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	for _, p := range controlPrefixes {
		if string(head) == p {
			s.serveControl(c)
			return
		}
	}
	ln := s.httpLn
	if head[0] == tlsHandshake && s.httpsLn != nil {
		ln = s.httpsLn
	}
	if !ln.deliver(c) {
		_ = c.Close()
	}
}

// tlsHandshake is the first byte of a TLS record carrying a handshake.
const tlsHandshake = 0x16

// connKey holds a request's connection in its context (congestion
// control of a download).
type connKey struct{}

// congestion is the congestion control of the connection serving r.
func congestion(r *http.Request) string {
	v := r.Context().Value(connKey{})
	if tc, ok := v.(*tls.Conn); ok {
		v = tc.NetConn()
	}
	c, ok := v.(*conn)
	if !ok {
		return ""
	}
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return ""
	}
	return tcpcc.Get(sc)
}

// conn replays the bytes peeked by dispatch and releases its slots once.
type conn struct {
	net.Conn
	r        *bufio.Reader
	once     sync.Once
	release  func()
	lifetime *time.Timer
}

func (c *conn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.lifetime.Stop()
		c.release()
	})
	return err
}

// chanListener feeds the HTTP server the connections dispatch classified as HTTP.
type chanListener struct {
	addr   net.Addr
	conns  chan net.Conn
	done   chan struct{}
	closer sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closer.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
