package server

import (
	"fmt"
	"net"
	"sync"
)

// Handoff keeps one bound socket across configuration reloads: each agent
// serves on a Listener of its own, whose Close ends only that agent's
// serving, while the socket stays bound. Connections that arrive between
// one agent's stop and the next one's start wait (in the kernel's backlog
// and here) instead of being refused, and no other process can take the
// port in the gap.
type Handoff struct {
	l     net.Listener
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	err   error // the socket's accept error, once it has failed
}

// ListenHandoff binds addr.
func ListenHandoff(addr string) (*Handoff, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on --web.listen-address %q: %w", addr, err)
	}
	h := &Handoff{l: l, conns: make(chan net.Conn), done: make(chan struct{})}
	go h.accept()
	return h, nil
}

func (h *Handoff) accept() {
	defer close(h.done)
	for {
		c, err := h.l.Accept()
		if err != nil {
			h.err = err
			return
		}
		h.conns <- c // waits for an agent that serves
	}
}

// Listener returns a listener for one agent.
func (h *Handoff) Listener() net.Listener {
	return &handoffListener{h: h, closed: make(chan struct{})}
}

// Close unbinds the socket.
func (h *Handoff) Close() error {
	var err error
	h.once.Do(func() {
		err = h.l.Close()
		// A connection accepted but never handed over is closed.
		for {
			select {
			case c := <-h.conns:
				c.Close()
			case <-h.done:
				return
			}
		}
	})
	return err
}

type handoffListener struct {
	h         *Handoff
	closed    chan struct{}
	closeOnce sync.Once
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.h.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-l.h.done:
		if l.h.err != nil {
			return nil, l.h.err
		}
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.h.l.Addr() }
