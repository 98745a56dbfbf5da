package main

// The netpulse ping probe and the shared ICMP engine as pingers under test.
// This is the only file that knows their constructors and the probe's
// instrument names: update it when they change.

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
	"github.com/netpulse/netpulse/internal/icmp"
	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probe/ping"
	"github.com/netpulse/netpulse/internal/testutil/icmplab"
)

// rttInstrument is the histogram the probe records each reply's RTT in.
const rttInstrument = "netpulse.ping.rtt"

// netpulseBurst runs one probe run (a burst of count echoes) with the given
// engine ("shared" or "pro-bing") and raw ("true") or datagram ("false")
// sockets, in this process's namespace (a child started inside the lab).
// The probe returns only the burst's statistics; each reply's RTT is taken
// from what it records in its RTT histogram: in arrival order with
// pro-bing, in the order sent with the shared engine (which records once
// the burst is over).
func netpulseBurst(ctx context.Context, engine, privileged string, dst netip.Addr, count int, interval time.Duration) (icmplab.Summary, error) {
	version := "4"
	if dst.Is6() {
		version = "6"
	}
	cfg := ping.Config{Settings: network.Settings{IPVersion: version}, Count: count, PacketInterval: interval,
		Size: 56, TTL: 64, Privileged: privileged, Engine: engine}
	rec := &recorder{}
	tp := tnoop.NewTracerProvider()
	shared := &probe.Shared{}
	defer shared.Close()
	p, err := ping.New(cfg, probe.Deps{Meters: recordingProvider{rec: rec}, Tracers: tp, Logger: slog.New(slog.DiscardHandler),
		Net: network.New(network.NewResolver(""), tp), Shared: shared})
	if err != nil {
		return icmplab.Summary{}, err
	}
	defer p.Close()
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
		Arrivals:  rec.rtts(),
		SendOrder: engine == "shared",
	}, nil
}

// engineBurst sends count echoes through the shared ICMP engine
// (internal/icmp) directly, with datagram or raw sockets, and reports each
// echo's RTT by sequence number.
func engineBurst(ctx context.Context, mode icmp.Mode, dst netip.Addr, count int, interval time.Duration) (icmplab.Summary, error) {
	e, err := icmp.Open(icmp.Options{Mode: mode})
	if err != nil {
		return icmplab.Summary{}, err
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Duration(count)*interval+2*time.Second)
	defer cancel()
	res, err := e.Ping(ctx, icmp.Request{Dst: dst, Count: count, Interval: interval, Size: 56, Timeout: time.Second})
	if err != nil {
		return icmplab.Summary{}, fmt.Errorf("icmp engine: %w", err)
	}
	readings := make([]time.Duration, count)
	for i := range readings {
		readings[i] = icmplab.Lost
	}
	for _, ec := range res.Echoes {
		if ec.Fate == icmp.Replied && ec.Seq >= 0 && ec.Seq < count {
			readings[ec.Seq] = ec.RTT
		}
	}
	return icmplab.Summary{Readings: readings}, nil
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
