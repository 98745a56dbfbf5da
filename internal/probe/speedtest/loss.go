package speedtest

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"
)

// Packet-loss test settings: 100 datagrams over 2 s (1 % resolution), run
// while speedtest-go measures idle latency.
const (
	lossDuration = 2 * time.Second
	lossInterval = 20 * time.Millisecond
	// lossDrain is how long the last datagrams get to arrive before the
	// server is asked for its count.
	lossDrain     = 300 * time.Millisecond
	lossIOTimeout = 3 * time.Second
)

// lossResult is what the server counted of the datagrams sent.
type lossResult struct {
	sent, received, dups int
}

func (r lossResult) ratio() float64 {
	if r.sent == 0 {
		return 0
	}
	return max(0, 1-float64(r.received-r.dups)/float64(r.sent))
}

// measureLoss speaks speedtest-go's packet-loss protocol (its transport
// package; Ookla servers and `netpulse speedtest-server` answer it on the
// HTTP port): over TCP "HI <uuid>" and "INITPLOSS", then UDP datagrams
// "LOSS <nonce> <order> <uuid>", then "PLOSS" answered by
// "PLOSS <received> <duplicates> <highest order>". speedtest-go's own
// PacketLossAnalyzer reads that answer without a deadline (a server that
// does not answer blocks it forever), so this client is ours; it also knows
// how many datagrams it sent, so loss needs no guess from the highest order.
// An error means the server does not support the test.
func measureLoss(ctx context.Context, dial dialFunc, hostport string) (lossResult, error) {
	ctx, cancel := context.WithTimeout(ctx, lossDuration+lossDrain+2*lossIOTimeout)
	defer cancel()
	tcp, err := dial(ctx, "tcp", hostport)
	if err != nil {
		return lossResult{}, err
	}
	defer tcp.Close()
	stop := context.AfterFunc(ctx, func() { _ = tcp.SetDeadline(time.Now()) })
	defer stop()
	id := newUUID()
	_ = tcp.SetDeadline(time.Now().Add(lossIOTimeout))
	// The server does not acknowledge INITPLOSS; a first PLOSS does, and
	// tells at once whether the server supports the test, before any
	// datagram is sent that it might not yet be counting.
	if _, err := fmt.Fprintf(tcp, "HI %s\nINITPLOSS\n", id); err != nil {
		return lossResult{}, err
	}
	r := bufio.NewReaderSize(tcp, 256)
	if _, err := askLoss(tcp, r); err != nil {
		return lossResult{}, err
	}
	udp, err := dial(ctx, "udp", hostport)
	if err != nil {
		return lossResult{}, err
	}
	defer udp.Close()

	nonce := rand.Int64N(1e10)
	var res lossResult
	tick := time.NewTicker(lossInterval)
	end := time.NewTimer(lossDuration)
	defer tick.Stop()
	defer end.Stop()
send:
	for {
		if _, err := fmt.Fprintf(udp, "LOSS %d %d %s", nonce, res.sent, id); err == nil {
			res.sent++
		}
		select {
		case <-tick.C:
		case <-end.C:
			break send
		case <-ctx.Done():
			return lossResult{}, ctx.Err()
		}
	}
	select {
	case <-time.After(lossDrain):
	case <-ctx.Done():
		return lossResult{}, ctx.Err()
	}

	_ = tcp.SetDeadline(time.Now().Add(lossIOTimeout))
	counted, err := askLoss(tcp, r)
	if err != nil {
		return lossResult{}, err
	}
	_, _ = fmt.Fprint(tcp, "QUIT\n")
	res.received, res.dups = counted.received, counted.dups
	if res.received == 0 {
		// Nothing arrived: UDP is filtered on the way or the server does not
		// count; speedtest-go reports N/A in that case too.
		return lossResult{}, fmt.Errorf("the server counted none of %d datagrams", res.sent)
	}
	return res, nil
}

// askLoss sends PLOSS and parses "PLOSS <received> <duplicates> <highest>".
func askLoss(tcp net.Conn, r *bufio.Reader) (lossResult, error) {
	if _, err := fmt.Fprint(tcp, "PLOSS\n"); err != nil {
		return lossResult{}, err
	}
	// Servers may greet "HI <uuid>" with a line (speedtest-go skips lines
	// that are not PLOSS answers too).
	var line string
	var f []string
	for range 3 {
		l, err := r.ReadString('\n')
		if err != nil {
			return lossResult{}, fmt.Errorf("no answer to PLOSS: %w", err)
		}
		if line, f = l, strings.Fields(l); len(f) > 0 && f[0] == "PLOSS" {
			break
		}
	}
	var res lossResult
	if len(f) != 4 || f[0] != "PLOSS" {
		return res, fmt.Errorf("unexpected answer to PLOSS: %q", line)
	}
	var err1, err2 error
	res.received, err1 = strconv.Atoi(f[1])
	res.dups, err2 = strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return res, fmt.Errorf("unexpected answer to PLOSS: %q", line)
	}
	return res, nil
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = crand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
