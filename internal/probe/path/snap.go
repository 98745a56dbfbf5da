package path

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/icmp"
)

// Snap traces the path to dst once, as a run of a path probe with cfg
// (defaulted and valid) would, under a span named "path snapshot" with a
// span per hop, and returns what it saw as a Doc. It is for probes of
// other types that show the path when they see trouble (ping's
// path_on_trouble): the snapshot joins the trace of ctx's run.
func Snap(ctx context.Context, tracer trace.Tracer, e *icmp.Engine, cfg Config, dst, src netip.Addr) (Doc, error) {
	ctx, span := tracer.Start(ctx, "path snapshot", trace.WithAttributes(attribute.String("network.peer.address", dst.String())))
	defer span.End()
	start := time.Now()
	byTTL, rounds, sent, err := traceRounds(ctx, cfg, e, dst, src)
	end := time.Now()
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "no snapshot")
		return Doc{}, fmt.Errorf("path snapshot to %s: %w", dst, err)
	}
	snap := analyze(dst, byTTL, rounds)
	hopSpans(ctx, tracer, snap, start, end)
	span.SetAttributes(attribute.String("path.hops", snap.List()), attribute.Int("path.hop_count", len(snap.Hops)),
		attribute.Bool("path.reached", snap.Reached), attribute.Int("path.loss_from_hop", snap.LossFrom),
		attribute.Int64("path.route_hash", int64(snap.Hash())), attribute.Int("path.packets.sent", sent))
	return snap.Doc(start, end.Sub(start), sent), nil
}

// Doc is a snapshot as the history keeps it and the API shows it.
type Doc struct {
	Destination string  `json:"destination"`
	Reached     bool    `json:"reached"`
	LossFromHop int     `json:"loss_from_hop"`
	RouteHash   uint32  `json:"route_hash"`
	HopList     string  `json:"hop_list"`
	Rounds      int     `json:"rounds"`
	PacketsSent int     `json:"packets_sent"`
	Start       string  `json:"start"`
	Duration    float64 `json:"duration_seconds"`
	// Trigger says why it was taken (set by the caller).
	Trigger string   `json:"trigger,omitempty"`
	Hops    []HopDoc `json:"hops"`
}

// HopDoc is one hop of a Doc; round trips are absent for a silent hop.
type HopDoc struct {
	Hop         int      `json:"hop"`
	Addresses   []string `json:"addresses"`
	Sent        int      `json:"sent"`
	Received    int      `json:"received"`
	Loss        float64  `json:"loss_ratio"`
	RTTMin      *float64 `json:"rtt_min_seconds,omitempty"`
	RTTAvg      *float64 `json:"rtt_avg_seconds,omitempty"`
	RTTMax      *float64 `json:"rtt_max_seconds,omitempty"`
	RateLimited bool     `json:"rate_limited,omitempty"`
	Destination bool     `json:"destination,omitempty"`
	Unreachable bool     `json:"unreachable,omitempty"`
}

// Doc returns the snapshot as a Doc.
func (s Snapshot) Doc(start time.Time, took time.Duration, sent int) Doc {
	d := Doc{Destination: s.Dst.String(), Reached: s.Reached, LossFromHop: s.LossFrom, RouteHash: s.Hash(),
		HopList: s.List(), Rounds: s.Rounds, PacketsSent: sent, Start: start.UTC().Format(time.RFC3339Nano),
		Duration: took.Seconds(), Hops: make([]HopDoc, len(s.Hops))}
	for i, h := range s.Hops {
		hd := HopDoc{Hop: h.TTL, Addresses: make([]string, len(h.Addrs)), Sent: h.Sent, Received: h.Received,
			Loss: h.Loss(), RateLimited: h.RateLimited, Destination: h.Destination, Unreachable: h.Unreachable}
		for j, a := range h.Addrs {
			hd.Addresses[j] = a.String()
		}
		if h.Received > 0 {
			mn, avg, mx := h.RTTMin.Seconds(), h.RTTAvg.Seconds(), h.RTTMax.Seconds()
			hd.RTTMin, hd.RTTAvg, hd.RTTMax = &mn, &avg, &mx
		}
		d.Hops[i] = hd
	}
	return d
}
