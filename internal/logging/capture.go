package logging

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Line is one log record captured during a probe run, for the run's debug
// view: every level is captured, whatever --log.level lets through.
type Line struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"msg"`
	Attrs   []Attr    `json:"attrs,omitempty"`
}

// Attr is one key=value of a captured line, the value formatted as text.
type Attr struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Capture collects the records logged with a context from WithCapture, up
// to a bound (a chatty prober cannot grow a run's record without limit).
type Capture struct {
	mu      sync.Mutex
	lines   []Line
	max     int
	dropped int
}

type captureKey struct{}

// Limits of one captured line, so a run's record stays small.
const (
	maxCapturedAttrs = 32
	maxCapturedValue = 512
)

// WithCapture returns a context whose log records (at any level) are also
// collected, up to max lines, by the returned Capture.
func WithCapture(ctx context.Context, max int) (context.Context, *Capture) {
	c := &Capture{max: max}
	return context.WithValue(ctx, captureKey{}, c), c
}

func captureFrom(ctx context.Context) *Capture {
	if ctx == nil {
		return nil
	}
	c, _ := ctx.Value(captureKey{}).(*Capture)
	return c
}

// Lines returns what was captured so far; when lines were dropped past the
// bound, a last line says how many.
func (c *Capture) Lines() []Line {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := append([]Line(nil), c.lines...)
	if c.dropped > 0 {
		out = append(out, Line{Time: time.Now(), Level: "WARN",
			Message: fmt.Sprintf("%d more lines not captured (limit %d per run)", c.dropped, c.max)})
	}
	return out
}

func (c *Capture) add(r slog.Record, bound []slog.Attr, group string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.lines) >= c.max {
		c.dropped++
		return
	}
	l := Line{Time: r.Time, Level: r.Level.String(), Message: r.Message}
	var add func(prefix string, a slog.Attr)
	add = func(prefix string, a slog.Attr) {
		if len(l.Attrs) >= maxCapturedAttrs {
			return
		}
		if a = normalize(a, false); a.Key == "" {
			return
		}
		v := a.Value.Resolve()
		if v.Kind() == slog.KindGroup {
			for _, ga := range v.Group() {
				add(prefix+a.Key+".", ga)
			}
			return
		}
		s := v.String()
		if len(s) > maxCapturedValue {
			s = s[:maxCapturedValue] + "…"
		}
		l.Attrs = append(l.Attrs, Attr{Key: prefix + a.Key, Value: s})
	}
	for _, a := range bound {
		add("", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		add(group, a)
		return true
	})
	c.lines = append(c.lines, l)
}
