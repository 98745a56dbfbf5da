// Package logging builds the agent's structured logger. Every record logged
// with a context that carries a span gets trace_id and span_id, so a log line
// leads to its trace.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/trace"
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
	for _, a := range attrs {
		bound = append(bound, slog.Attr{Key: h.group + a.Key, Value: a.Value})
	}
	return traceHandler{Handler: h.Handler.WithAttrs(attrs), bound: bound, group: h.group}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{Handler: h.Handler.WithGroup(name), bound: h.bound, group: h.group + name + "."}
}
