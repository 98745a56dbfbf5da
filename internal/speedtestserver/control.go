package speedtestserver

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// helloLine answers a bare "HI"; speedtest-go reads the version after "HELLO ".
const helloLine = "HELLO 2.11 (2.11.0) netpulse\n"

// serveControl speaks the line protocol speedtest-go uses on a server's HTTP
// port for TCP latency and the packet-loss test:
//
//	HI            -> HELLO <version>
//	HI <uuid>     registers the client's id (no reply: speedtest-go reads none)
//	INITPLOSS     starts counting LOSS datagrams carrying that id (no reply)
//	PING <ns>     -> PONG <13-digit Unix milliseconds>
//	PLOSS         -> PLOSS <received> <duplicates> <highest order received>
//	QUIT          closes the connection
//
// Anything else, or a line longer than the read buffer, closes it.
func (s *Server) serveControl(c *conn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = c.Close()
		return
	}
	s.controls[c] = struct{}{}
	s.mu.Unlock()
	var id string
	defer func() {
		s.mu.Lock()
		delete(s.controls, c)
		s.mu.Unlock()
		if id != "" {
			s.loss.close(id)
		}
		_ = c.Close()
	}()
	reply := func(format string, args ...any) bool {
		_ = c.SetWriteDeadline(time.Now().Add(s.opts.StallTimeout))
		_, err := fmt.Fprintf(c, format, args...)
		return err == nil
	}
	for {
		// The packet-loss sampler asks every second and the TCP ping every
		// 200 ms: a connection quiet for a stall timeout is idle, and closed
		// so that cheap clients (a PING every 20 s) cannot hold slots.
		_ = c.SetReadDeadline(time.Now().Add(s.opts.StallTimeout))
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return
		}
		f := strings.Fields(string(line))
		if len(f) == 0 {
			continue
		}
		switch {
		case f[0] == "HI" && len(f) == 1:
			if !reply(helloLine) {
				return
			}
		case f[0] == "HI" && len(f) == 2 && len(f[1]) <= 64 && id == "":
			id = strings.ToLower(f[1])
		case f[0] == "INITPLOSS" && id != "":
			s.loss.open(id)
		case f[0] == "PING":
			if !reply("PONG %013d\n", time.Now().UnixMilli()) {
				return
			}
		case f[0] == "PLOSS":
			received, dup, highest := s.loss.stats(id)
			if !reply("PLOSS %d %d %d\n", received, dup, highest) {
				return
			}
		default: // QUIT, or not our protocol
			return
		}
	}
}

// serveUDP counts "LOSS <nonce> <order> <uuid>" datagrams of registered
// packet-loss sessions; everything else is dropped.
func (s *Server) serveUDP() {
	buf := make([]byte, 256)
	for {
		n, _, err := s.udp.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if id, order, ok := parseLoss(buf[:n]); ok {
			s.loss.record(id, order)
		}
	}
}

// parseLoss reads a "LOSS <nonce> <order> <uuid>" datagram: the session
// id (lower case) and the datagram's order.
func parseLoss(b []byte) (id string, order int, ok bool) {
	f := strings.Fields(string(b))
	if len(f) != 4 || f[0] != "LOSS" {
		return "", 0, false
	}
	order, err := strconv.Atoi(f[2])
	if err != nil {
		return "", 0, false
	}
	return strings.ToLower(f[3]), order, true
}

// maxOrder bounds the datagram numbers a session tracks: at speedtest-go's
// 15 datagrams a second, over an hour of sampling.
const maxOrder = 1 << 16

// lossTable holds the packet-loss sessions of open control connections,
// at most one per allowed connection.
type lossTable struct {
	mu       sync.Mutex
	max      int
	sessions map[string]*lossSession
}

type lossSession struct {
	seen           [maxOrder / 64]uint64
	received, dups int
	highest        int
}

func newLossTable(max int) *lossTable {
	return &lossTable{max: max, sessions: map[string]*lossSession{}}
}

func (t *lossTable) open(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.sessions[id]; !ok && len(t.sessions) < t.max {
		t.sessions[id] = &lossSession{}
	}
}

func (t *lossTable) close(id string) {
	t.mu.Lock()
	delete(t.sessions, id)
	t.mu.Unlock()
}

func (t *lossTable) record(id string, order int) {
	if order < 0 || order >= maxOrder {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ls := t.sessions[id]
	if ls == nil {
		return
	}
	word, bit := order/64, uint64(1)<<(order%64)
	if ls.seen[word]&bit != 0 {
		ls.dups++
		return
	}
	ls.seen[word] |= bit
	ls.received++
	ls.highest = max(ls.highest, order)
}

// stats returns what speedtest-go's PLOSS reply carries: datagrams
// received (duplicates included), duplicates and the highest order seen; it
// computes loss as 1 - (received - dups) / (highest + 1).
func (t *lossTable) stats(id string) (received, dups, highest int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ls := t.sessions[id]; ls != nil {
		return ls.received + ls.dups, ls.dups, ls.highest
	}
	return 0, 0, 0
}
