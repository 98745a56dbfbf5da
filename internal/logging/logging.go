// Package logging builds the agent's structured logger. Every record logged
// with a context that carries a span gets trace_id and span_id, so a log line
// leads to its trace. Credentials in URLs are hidden in every record, its
// message and its attributes (redact.URLs), before it is written or captured.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/redact"
)

// New returns a logger writing level and above to w as "json" or "text".
func New(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log.level: must be debug, info, warn or error, not %q", level)
	}
	var h slog.Handler
	switch strings.ToLower(format) {
	case "json":
		h = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl, ReplaceAttr: replaceAttr(true)})
	case "text", "logfmt":
		h = slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl, ReplaceAttr: replaceAttr(false)})
	default:
		return nil, fmt.Errorf("--log.format: must be json or text, not %q", format)
	}
	return slog.New(traceHandler{Handler: h}), nil
}

// traceHandler adds the trace context of the record's context. It also
// feeds the Capture of a context from WithCapture (capture.go), at every
// level, so a run's debug view has its log lines.
type traceHandler struct {
	slog.Handler
	// bound are the attributes bound with With, keys prefixed with their
	// group, kept for captures (the inner handler has them preformatted).
	bound []slog.Attr
	group string
}

func (h traceHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return captureFrom(ctx) != nil || h.Handler.Enabled(ctx, level)
}

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	r = redactRecord(r)
	if c := captureFrom(ctx); c != nil {
		c.add(r, h.bound, h.group)
		if !h.Handler.Enabled(ctx, r.Level) {
			return nil
		}
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	bound := slices.Clone(h.bound)
	attrs = redactAttrs(attrs)
	for _, a := range attrs {
		bound = append(bound, slog.Attr{Key: h.group + a.Key, Value: a.Value})
	}
	return traceHandler{Handler: h.Handler.WithAttrs(attrs), bound: bound, group: h.group}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{Handler: h.Handler.WithGroup(name), bound: h.bound, group: h.group + name + "."}
}

// redactRecord is r with the userinfo of URLs hidden in its message and
// attributes (an error's text included).
func redactRecord(r slog.Record) slog.Record {
	out := slog.NewRecord(r.Time, r.Level, redact.URLs(r.Message), r.PC)
	attrs := make([]slog.Attr, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a)
		return true
	})
	out.AddAttrs(redactAttrs(attrs)...)
	return out
}

func redactAttrs(attrs []slog.Attr) []slog.Attr {
	out := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		out[i] = redactAttr(a)
	}
	return out
}

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		v = slog.StringValue(redact.URLs(v.String()))
	case slog.KindGroup:
		v = slog.GroupValue(redactAttrs(v.Group())...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			v = slog.AnyValue(redact.Error(x))
		case fmt.Stringer:
			if s := x.String(); redact.URLs(s) != s {
				v = slog.StringValue(redact.URLs(s))
			}
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
