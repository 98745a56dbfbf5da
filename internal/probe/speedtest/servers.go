package speedtest

import (
	"context"
	"errors"
	"fmt"
	"time"

	st "github.com/showwin/speedtest-go/speedtest"

	"github.com/netpulse/netpulse/internal/probe"
)

// checkedServer finds host's server (a speedtest server or a
// responsiveness configuration) and checks it answers its latency URL
// (preflight); the server is returned also when the check fails, so the
// result names it.
func (p *Prober) checkedServer(ctx context.Context, sess *session, host string) (*st.Server, endpoints, error) {
	if IsNQConfig(host) {
		srv, ep, err := p.nqServer(ctx, sess, host)
		if err != nil {
			return nil, ep, err
		}
		return srv, ep, p.preflightURL(ctx, sess, ep.small)
	}
	srv, err := p.findServer(ctx, sess, host)
	if err != nil {
		return nil, endpoints{}, err
	}
	ep := speedtestEndpoints(srv)
	return srv, ep, p.preflightURL(ctx, sess, ep.small)
}

// nextServer returns the servers list's entry for this run of t: each
// run the next, in turn (from the first after a start).
func (p *Prober) nextServer(t *probe.Target) string {
	p.rotMu.Lock()
	defer p.rotMu.Unlock()
	if p.rotation == nil {
		p.rotation = map[string]int{}
	}
	i := p.rotation[t.Name] % len(p.cfg.Servers)
	p.rotation[t.Name] = i + 1
	return p.cfg.Servers[i]
}

// fastestServer checks every server of the list in turn and returns the
// one whose latency.txt answered fastest (best of N: one request each,
// a few kB, not a test each); it fails only when none answered, with the
// first failure.
func (p *Prober) fastestServer(ctx context.Context, sess *session) (*st.Server, endpoints, error) {
	var (
		best     *st.Server
		bestEP   endpoints
		bestTime time.Duration
		errs     []error
	)
	for _, host := range p.cfg.Servers {
		start := time.Now()
		srv, ep, err := p.checkedServer(ctx, sess, host)
		took := time.Since(start)
		if ctx.Err() != nil {
			return nil, endpoints{}, ctx.Err()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", host, err))
			continue
		}
		if best == nil || took < bestTime {
			best, bestEP, bestTime = srv, ep, took
		}
	}
	if best == nil {
		return nil, endpoints{}, probe.Fail(probe.ErrorType(ctx, errs[0]), fmt.Errorf("none of the %d servers answered: %w",
			len(p.cfg.Servers), errors.Join(errs...)))
	}
	return best, bestEP, nil
}
