package main

// The netpulse ping probe as a pinger under test. This is the only file that
// knows the probe's constructor and instrument names: update it when they
// change.

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	mnoop "go.opentelemetry.io/otel/metric/noop"
	tnoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probe/ping"
	"github.com/netpulse/netpulse/internal/resolver"
	"github.com/netpulse/netpulse/internal/testutil/icmplab"
)

// rttInstrument is the histogram the probe records each reply's RTT in.
const rttInstrument = "netpulse.ping.rtt"

// netpulseBurst runs one probe run (a burst of count echoes) with raw
// ("true") or datagram ("false") sockets, in this process's namespace (a
// child started inside the lab). The probe returns only the burst's
// statistics; each reply's RTT, in arrival order, is taken from what it
// records in its RTT histogram.
func netpulseBurst(ctx context.Context, privileged string, dst netip.Addr, count int, interval time.Duration) (icmplab.Summary, error) {
	version := "4"
	if dst.Is6() {
		version = "6"
	}
	cfg := config.Ping{Count: count, PacketInterval: interval, Size: 56, TTL: 64, IPVersion: version, Privileged: privileged}
	rec := &recorder{}
	p, err := ping.New(cfg, resolver.New(""), recordingProvider{rec: rec}, tnoop.NewTracerProvider(), slog.New(slog.DiscardHandler))
	if err != nil {
		return icmplab.Summary{}, err
	}
	target := probe.NewTarget(config.Probe{Name: "lab", Type: "ping"}, config.Target{Name: "lab", Host: dst.String()})
	// A run's deadline as the agent would set it: the burst plus room for
	// the last reply.
	ctx, cancel := context.WithTimeout(ctx, time.Duration(count)*interval+2*time.Second)
	defer cancel()
	v, err := p.Probe(ctx, target)
	if err != nil {
		return icmplab.Summary{}, fmt.Errorf("netpulse ping probe: %w", err)
	}
	sec := func(k string) time.Duration { return time.Duration(v[k] * float64(time.Second)) }
	return icmplab.Summary{
		Stats: icmplab.Stats{Sent: int(v["packets_sent"]), Received: int(v["packets_received"]),
			Mean: sec("rtt_avg_seconds"), Std: sec("rtt_stddev_seconds"), Jitter: sec("jitter_seconds")},
		Arrivals: rec.rtts(),
	}, nil
}

// recordingProvider is a no-op MeterProvider except for the RTT histogram,
// whose recordings it keeps in order.
type recordingProvider struct {
	mnoop.MeterProvider
	rec *recorder
}

func (p recordingProvider) Meter(string, ...metric.MeterOption) metric.Meter {
	return recordingMeter{rec: p.rec}
}

type recordingMeter struct {
	mnoop.Meter
	rec *recorder
}

func (m recordingMeter) Float64Histogram(name string, _ ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	if name == rttInstrument {
		return m.rec, nil
	}
	return mnoop.Float64Histogram{}, nil
}

type recorder struct {
	mnoop.Float64Histogram
	mu sync.Mutex
	v  []time.Duration
}

func (r *recorder) Record(_ context.Context, seconds float64, _ ...metric.RecordOption) {
	r.mu.Lock()
	r.v = append(r.v, time.Duration(seconds*float64(time.Second)))
	r.mu.Unlock()
}

func (r *recorder) rtts() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.v == nil {
		return []time.Duration{}
	}
	return append([]time.Duration(nil), r.v...)
}
