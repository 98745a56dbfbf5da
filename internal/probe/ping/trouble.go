package ping

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/icmp"
	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probe/path"
)

// Trouble is path_on_trouble: when a run's loss or mean round trip
// reaches its threshold, a path snapshot (MTR-like, through the path
// probe's code) is taken toward the address the run pinged, in the trace
// of that run (a span per hop), and kept with it in history for its debug
// view: the path as it was during the trouble. At most one per target per
// MinGap.
type Trouble struct {
	// Loss triggers a snapshot when a run's loss reaches it (20% or 0.2;
	// 0: loss never does). A run without any reply has a loss of 100%.
	Loss Ratio `yaml:"loss"`
	// Latency triggers a snapshot when a run's mean round trip reaches it
	// (0: latency never does).
	Latency time.Duration `yaml:"latency"`
	// MinGap is the least time between two snapshots of one target.
	MinGap time.Duration `yaml:"min_gap"`
	// MaxHops and Rounds bound a snapshot: Rounds echoes per TTL, 200 ms
	// apart, each waiting a second for its answer.
	MaxHops int `yaml:"max_hops"`
	Rounds  int `yaml:"rounds"`
}

// Snapshot defaults: three rounds give a loss figure per hop and fit in
// about 1.5 s; a router answers the three within its ICMP burst.
const (
	DefaultTroubleMinGap  = 5 * time.Minute
	DefaultTroubleMaxHops = 30
	DefaultTroubleRounds  = 3
	troubleRoundInterval  = 200 * time.Millisecond
	troubleHopTimeout     = time.Second
	// EvidencePath is the kind under which a snapshot is kept with its run.
	EvidencePath = "path_snapshot"
)

func (c *Trouble) defaults() {
	if c.MinGap == 0 {
		c.MinGap = DefaultTroubleMinGap
	}
	if c.MaxHops == 0 {
		c.MaxHops = DefaultTroubleMaxHops
	}
	if c.Rounds == 0 {
		c.Rounds = DefaultTroubleRounds
	}
}

func (c *Trouble) validate(p *config.Problems, path string) {
	if c.Loss < 0 || c.Loss > 1 {
		p.Add(path+".loss", "must be between 0%% and 100%%, not %s", c.Loss)
	}
	if c.Latency < 0 {
		p.Add(path+".latency", "must not be negative, not %s", c.Latency)
	}
	if c.Loss == 0 && c.Latency == 0 {
		p.Add(path, "set loss or latency (or both): without either no run triggers a snapshot")
	}
	if c.MinGap < 10*time.Second {
		p.Add(path+".min_gap", "must be at least 10s, not %s", c.MinGap)
	}
	if c.MaxHops < 1 || c.MaxHops > 64 {
		p.Add(path+".max_hops", "must be between 1 and 64, not %d", c.MaxHops)
	}
	if c.Rounds < 1 || c.Rounds > 10 {
		p.Add(path+".rounds", "must be between 1 and 10, not %d", c.Rounds)
	}
}

// Ratio is a share written as a percentage (20%) or a number (0.2).
type Ratio float64

// UnmarshalYAML reads 20%, 0.5% or 0.2 (the yaml.v2-style interface,
// which yaml.v3 honours: no dependency on a yaml module's node type).
func (r *Ratio) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	pct, isPct := strings.CutSuffix(strings.TrimSpace(s), "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(pct), 64)
	if err != nil {
		return fmt.Errorf("%q is not a share (a percentage such as 20%% or a number such as 0.2)", s)
	}
	if isPct {
		v /= 100
	}
	*r = Ratio(v)
	return nil
}

// MarshalYAML writes the share as a percentage.
func (r Ratio) MarshalYAML() (any, error) { return r.String(), nil }

func (r Ratio) String() string { return strconv.FormatFloat(float64(r)*100, 'f', -1, 64) + "%" }

// troubleWatch takes the snapshots of one ping probe.
type troubleWatch struct {
	cfg      Trouble
	path     path.Config
	tracer   trace.Tracer
	logger   *slog.Logger
	engine   *icmp.Handle
	own      bool // engine is the watch's own (the probe uses pro-bing)
	evidence func(ctx context.Context, kind string, v any)
	taken    metric.Int64Counter
	packets  metric.Int64Counter

	mu   sync.Mutex
	last map[*probe.Target]time.Time

	bg   context.Context // snapshots outlive their run; Close ends them
	stop context.CancelFunc
	wg   sync.WaitGroup
}

func newTroubleWatch(cfg Config, tracer trace.Tracer, m metric.Meter, engine *icmp.Handle, deps probe.Deps) (*troubleWatch, error) {
	w := &troubleWatch{cfg: *cfg.PathOnTrouble, tracer: tracer, logger: deps.Logger, engine: engine,
		evidence: deps.Evidence, last: map[*probe.Target]time.Time{}}
	w.path = path.Config{Settings: cfg.Settings, MaxHops: w.cfg.MaxHops, Rounds: w.cfg.Rounds,
		RoundInterval: troubleRoundInterval, HopTimeout: troubleHopTimeout, Size: path.DefaultSize, Privileged: cfg.Privileged}
	if w.engine == nil {
		w.engine, w.own = icmp.NewHandle(deps.Sharer(), icmp.ModeOf(cfg.Privileged), deps.Logger), true
	}
	in := probe.Instruments{Meter: m}
	w.taken = in.Counter("netpulse.ping.path_snapshots", "{snapshot}",
		"Path snapshots taken because a run's loss or latency reached path_on_trouble's threshold, by trigger (loss, latency).")
	w.packets = in.Counter("netpulse.ping.path_snapshot.packets", "{packet}", "ICMP echo requests sent by path snapshots.")
	if in.Err != nil {
		return nil, in.Err
	}
	w.bg, w.stop = context.WithCancel(context.Background())
	return w, nil
}

// timeout bounds one snapshot: its rounds and a margin.
func (w *troubleWatch) timeout() time.Duration {
	return time.Duration(w.cfg.Rounds-1)*troubleRoundInterval + troubleHopTimeout + time.Second
}

// trigger names what in the run's summary reached a threshold, or "".
func (w *troubleWatch) trigger(s summary) string {
	switch {
	case s.sent > 0 && w.cfg.Loss > 0 && s.loss() >= float64(w.cfg.Loss):
		return "loss"
	case s.received > 0 && w.cfg.Latency > 0 && s.avg >= w.cfg.Latency:
		return "latency"
	}
	return ""
}

// check starts a snapshot toward dst when the run's summary reached a
// threshold and the target's last snapshot is older than min_gap. The
// snapshot runs after the run (a run without replies has no time left),
// in its trace, and is kept with it; it does not delay the run's result.
func (w *troubleWatch) check(ctx context.Context, t *probe.Target, dst, src netip.Addr, s summary) {
	why := w.trigger(s)
	if why == "" {
		return
	}
	now := time.Now()
	w.mu.Lock()
	last, seen := w.last[t]
	if seen && now.Sub(last) < w.cfg.MinGap {
		w.mu.Unlock()
		w.logger.DebugContext(ctx, "path snapshot not taken: one was taken less than min_gap ago", "target", t.Name,
			"trigger", why, "last", last, "min_gap", w.cfg.MinGap)
		return
	}
	w.last[t] = now
	w.mu.Unlock()
	w.logger.InfoContext(ctx, "path snapshot taken after this run", "target", t.Name, "trigger", why,
		"loss", s.loss(), "rtt_avg", s.avg)
	sctx := trace.ContextWithSpan(w.bg, trace.SpanFromContext(ctx))
	if id, ok := probe.RunIDFrom(ctx); ok {
		sctx = probe.WithRunID(sctx, id)
	}
	w.wg.Go(func() {
		sctx, cancel := context.WithTimeout(sctx, w.timeout())
		defer cancel()
		e, err := w.engine.Engine()
		if err != nil {
			w.logger.WarnContext(sctx, "path snapshot failed", "target", t.Name, "error", fmt.Errorf("icmp engine: %w", err))
			return
		}
		doc, err := path.Snap(sctx, w.tracer, e, w.path, dst, src)
		if err != nil {
			w.logger.WarnContext(sctx, "path snapshot failed", "target", t.Name, "error", err,
				"error.type", network.Classify(err))
			return
		}
		doc.Trigger = why
		attrs := metric.WithAttributeSet(t.Attrs)
		w.taken.Add(sctx, 1, attrs, metric.WithAttributes(attribute.String("trigger", why)))
		w.packets.Add(sctx, int64(doc.PacketsSent), attrs)
		w.logger.InfoContext(sctx, "path snapshot", "target", t.Name, "trigger", why, "hops", doc.HopList,
			"loss_from_hop", doc.LossFromHop, "packets_sent", doc.PacketsSent, "took", doc.Duration)
		if w.evidence != nil {
			w.evidence(sctx, EvidencePath, doc)
		}
	})
}

// Close ends the snapshots in flight, waits for them, and closes an
// engine of the watch's own.
func (w *troubleWatch) Close() error {
	w.stop()
	w.wg.Wait()
	if w.own {
		return w.engine.Close()
	}
	return nil
}
