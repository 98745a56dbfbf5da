// Package probe defines the contract every probe type implements and the
// harness that runs it: one span per run, the common run metrics (outcome,
// duration, last success) and failure classification. Each probe type lives
// in its own sub-package and records its protocol metrics itself.
package probe

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/network"
)

// Attribute keys shared by every probe's series and spans. In Prometheus they
// read probe_name, probe_type, target_name, outcome and error_type.
const (
	KeyProbeName  = attribute.Key("probe.name")
	KeyProbeType  = attribute.Key("probe.type")
	KeyTargetName = attribute.Key("target.name")
	KeyOutcome    = attribute.Key("outcome")
	KeyErrorType  = attribute.Key("error.type")
	// KeyTier is the target's tier (config.Tiers), on its series when set.
	KeyTier = attribute.Key("tier")
)

// Target is one configured (probe, target) pair, with the attributes that
// identify its series computed once.
type Target struct {
	Probe  string
	Type   string
	Name   string
	Host   string
	Labels map[string]string
	// Tier is the target's tier (config.Tiers), empty when not set.
	Tier string
	// Attrs identify the pair's series: probe, type, target and user labels.
	Attrs attribute.Set
	// Key is the pair's stable series key (SeriesKey), the first half of
	// its run ids.
	Key uint64
	// Config is the probe's configuration with this target alone: what a
	// run ran with, for its debug view.
	Config config.Probe
	// Policy is the type's (set by whoever knows the type: the agent).
	Policy Policy
	// Maintenance lists the windows that cover the target, the top-level
	// ones included (set by the agent: config.Config.MaintenanceFor).
	Maintenance []config.Maintenance
	// Thresholds are the probe's with the target's own over them: past
	// them a target that answers is degraded (Degraded).
	Thresholds config.Thresholds
	// retired is set when a reload removed or changed the target: a run
	// still in flight may finish, but the target's last-result state is
	// dropped and no longer kept. A pointer, shared by the copies a type
	// derives from the target (ping's per-family targets), so they retire
	// with it.
	retired *atomic.Bool
	// measure holds the options of t's measurements (measure.go).
	measure *measureOpts
}

// Retire marks t as gone from the configuration (a reload removed or
// changed it): the last-result stores (Last, the harness's) drop its
// entry and ignore what a run still in flight would set, so its gauges
// disappear at once and cannot come back.
func (t *Target) Retire() {
	if t.retired != nil {
		t.retired.Store(true)
	}
}

// Retired reports whether Retire was called.
func (t *Target) Retired() bool { return t.retired != nil && t.retired.Load() }

// NewTarget builds the Target for target t of probe p.
func NewTarget(p config.Probe, t config.Target) *Target {
	kvs := []attribute.KeyValue{
		KeyProbeName.String(p.Name),
		KeyProbeType.String(p.Type),
		KeyTargetName.String(t.Name),
	}
	for _, k := range slices.Sorted(maps.Keys(t.Labels)) {
		kvs = append(kvs, attribute.String(k, t.Labels[k]))
	}
	if t.Tier != "" {
		kvs = append(kvs, KeyTier.String(t.Tier))
	}
	one := p
	one.Targets = []config.Target{t}
	target := &Target{
		retired: new(atomic.Bool),
		Probe:   p.Name, Type: p.Type, Name: t.Name, Host: t.Host,
		Labels: t.Labels, Tier: t.Tier, Attrs: attribute.NewSet(kvs...),
		Key: SeriesKey(p.Name, t.Name), Config: one, Thresholds: p.ThresholdsOf(t),
	}
	target.measure = newMeasureOpts(target)
	return target
}

// Values are the figures one run measured, by name with their unit as a
// suffix (rtt_avg_seconds, loss_ratio). They are kept for logs, the API and
// history; metrics are recorded by the prober itself.
type Values map[string]float64

// Prober executes one run against a target. It records its protocol metrics
// with ctx (so histogram exemplars link to the run's span), may add child
// spans for its phases, and returns a *Error when the run failed.
type Prober interface {
	Probe(ctx context.Context, t *Target) (Values, error)
}

// Error types: a bounded vocabulary used as the error.type attribute, never
// the error text. The network ones come from the network package, which
// classifies OS errors for every type; probe types may add their own.
const (
	ErrResolve     = network.ErrResolve     // the host name did not resolve
	ErrNoReply     = network.ErrNoReply     // the target did not answer
	ErrPermission  = network.ErrPermission  // the OS refused the socket or the send
	ErrNetwork     = network.ErrNetwork     // sending failed: no route, interface down
	ErrRefused     = network.ErrRefused     // the target refused the connection
	ErrUnreachable = network.ErrUnreachable // an ICMP destination unreachable answered
	ErrTTLExceeded = network.ErrTTLExceeded // an ICMP time exceeded answered
	ErrInternal    = network.ErrInternal    // anything unexpected: a bug or an unknown OS error
	ErrTimeout     = "timeout"              // the run did not finish within its timeout
	ErrCanceled    = "canceled"             // the agent is shutting down
)

// Error is a classified run failure.
type Error = network.Error

// Fail wraps err as a failure of the given type.
func Fail(errType string, err error) error { return network.Fail(errType, err) }

// ErrorType classifies err for the error.type attribute. A run whose context
// expired is a timeout whatever the prober returned; an error with an
// ErrorType method says its type; anything else is internal.
func ErrorType(ctx context.Context, err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return ErrTimeout
	case errors.Is(ctx.Err(), context.Canceled) || errors.Is(err, context.Canceled):
		return ErrCanceled
	}
	if te, ok := errors.AsType[typedError](err); ok {
		return te.ErrorType()
	}
	return ErrInternal
}

// typedError is an error that knows its error type.
type typedError interface {
	error
	ErrorType() string
}

// Service is implemented by probers that run a loop for as long as the
// agent runs (a shared receive loop): the agent runs it beside the
// scheduler until its context ends. Probers that own resources implement
// io.Closer too; the agent closes them after the last run.
type Service interface {
	Run(ctx context.Context) error
}
