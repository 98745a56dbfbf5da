package telemetry

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// spanQueueSize is how many ended spans wait in front of the batcher.
const spanQueueSize = 2048

// dropCounter is the span processor in front of the OTLP batcher: it
// counts, exactly, the spans that the export queue refuses.
//
// The SDK's BatchSpanProcessor drops spans silently when its queue is full
// (v1.47.0 counts them only with the experimental OTEL_GO_X_OBSERVABILITY
// and the global meter provider). So the batcher here is built to block
// (sdktrace.WithBlocking), and dropCounter gives it spans from a bounded
// queue of its own, on its own goroutine: a probe ending a span never
// waits, and a span that finds this queue full is dropped here and counted
// in netpulse.telemetry.spans.dropped. Every sampled span is therefore
// either handed to the exporter or counted.
type dropCounter struct {
	next    sdktrace.SpanProcessor
	queue   chan sdktrace.ReadOnlySpan
	dropped metric.Int64Counter
	flush   chan chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// spansDropped creates the counter of dropped spans, at 0 from the start,
// also when no traces are exported (none are dropped then): the metric
// surface is the same with and without OTLP.
func spansDropped(mp metric.MeterProvider) (metric.Int64Counter, error) {
	dropped, err := mp.Meter(scopeName).Int64Counter("netpulse.telemetry.spans.dropped", metric.WithUnit("{span}"),
		metric.WithDescription("Spans not exported because the export queue was full (a slow or unreachable collector)."))
	if err == nil {
		dropped.Add(context.Background(), 0)
	}
	return dropped, err
}

// newDropCounter wraps next, a batcher created WithBlocking.
func newDropCounter(next sdktrace.SpanProcessor, queueSize int, dropped metric.Int64Counter) *dropCounter {
	d := &dropCounter{next: next, queue: make(chan sdktrace.ReadOnlySpan, queueSize), dropped: dropped,
		flush: make(chan chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go d.feed()
	return d
}

func (d *dropCounter) OnStart(ctx context.Context, s sdktrace.ReadWriteSpan) { d.next.OnStart(ctx, s) }

// OnEnd queues a sampled span without ever blocking; a full queue drops it
// and counts it.
func (d *dropCounter) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return // the batcher would ignore it too
	}
	select {
	case <-d.stop:
		return // after shutdown, as the batcher does
	default:
	}
	select {
	case d.queue <- s:
	default:
		d.dropped.Add(context.Background(), 1)
	}
}

// feed hands queued spans to the batcher, waiting while its queue is full.
func (d *dropCounter) feed() {
	defer close(d.done)
	for {
		select {
		case s := <-d.queue:
			d.next.OnEnd(s)
		case ack := <-d.flush:
			d.drain()
			close(ack)
		case <-d.stop:
			d.drain()
			return
		}
	}
}

func (d *dropCounter) drain() {
	for {
		select {
		case s := <-d.queue:
			d.next.OnEnd(s)
		default:
			return
		}
	}
}

// ForceFlush hands every queued span to the batcher, then flushes it.
func (d *dropCounter) ForceFlush(ctx context.Context) error {
	ack := make(chan struct{})
	select {
	case d.flush <- ack:
		select {
		case <-ack:
		case <-ctx.Done():
			return ctx.Err()
		}
	case <-d.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return d.next.ForceFlush(ctx)
}

// Shutdown hands what is queued to the batcher (within ctx), then shuts
// it down, which exports what it holds.
func (d *dropCounter) Shutdown(ctx context.Context) error {
	d.once.Do(func() { close(d.stop) })
	select {
	case <-d.done:
	case <-ctx.Done():
	}
	return d.next.Shutdown(ctx)
}
