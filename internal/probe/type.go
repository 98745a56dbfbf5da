package probe

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/network"
)

// Type is everything netpulse knows of a probe type, declared once in the
// type's own package: its configuration block, its constructor, its
// policy and the values it reports. Configuration, the agent, the API, the
// history and the status page read it from the Registry; none of them
// names a type.
type Type struct {
	// Name is the value of a probe's type key and the name of its block.
	Name string
	// NewConfig returns the type's configuration block with nothing set;
	// the config package decodes the probe's block into it, applies its
	// defaults and validates it.
	NewConfig func() config.Block
	// New builds the prober of one configured probe. pc.Settings holds the
	// block NewConfig returned, decoded, defaulted and validated.
	New func(pc config.Probe, deps Deps) (Prober, error)
	// Policy is how the harness, the scheduler and the history treat runs.
	Policy Policy
	// View is how the status page shows the type's targets: ViewLatency
	// (RTT, jitter, loss) or ViewThroughput (speed-test history).
	View string
	// Values are the figures a run reports (Values' keys), with their
	// units and what people call them.
	Values []Value
	// Objectives are the objectives besides availability (every type's)
	// a probe of the type may set: those whose SLI
	// prometheus/rules/slo.yml computes from the type's series
	// (config.ObjectiveLatency, ObjectiveLoss, ObjectiveSpeed).
	Objectives []string
}

// Views of Type.View.
const (
	ViewLatency    = "latency"
	ViewThroughput = "throughput"
)

// Policy is how a type's runs are scheduled, admitted and kept.
type Policy struct {
	// Exclusive types saturate the link (speed tests) and run alone: other
	// runs wait, and the slots they miss count as skipped
	// (error_type="exclusive"), because they would measure the test's load.
	Exclusive bool
	// StartJitter delays each run by up to this share of the interval
	// after its slot, so an hourly or daily run samples different times of
	// day instead of the minute its first offset picked.
	StartJitter float64
	// LongRetention keeps results for storage.speedtest_retention instead
	// of storage.retention, and trims them last: few rows, worth a year.
	LongRetention bool
	// OnDemandLimited limits on-demand runs to one per
	// api.speedtest_min_interval across the types that set it.
	OnDemandLimited bool
	// CoalesceStarts lets runs start up to scheduler.Tick after their
	// slot, together with others (scheduler.Job.Coalesce): for types whose
	// runs are timed by the kernel (ping's timestamps), where it saves a
	// third of the agent's CPU at 1,000 runs a second and costs no
	// accuracy. Types timed in user space leave it unset.
	CoalesceStarts bool
}

// Value describes one figure of Values.
type Value struct {
	// Name is the key in Values, the API and history: the quantity with its
	// unit as a suffix (rtt_avg_seconds, loss_ratio).
	Name string `json:"name"`
	// Unit is the UCUM unit: s, 1 (a ratio), By, By/s, {packet}.
	Unit string `json:"unit"`
	// Label is what the status page calls it.
	Label string `json:"label"`
	// Role is what the status page's view uses it for (Role* constants),
	// empty for values it only lists.
	Role string `json:"role,omitempty"`
}

// Roles of Value.Role, read by the status page's views.
const (
	RoleLatency     = "latency"      // the headline round-trip time
	RoleLatencyMin  = "latency_min"  // the low edge of the latency band
	RoleLatencyMax  = "latency_max"  // the high edge of the latency band
	RoleJitter      = "jitter"       // jitter
	RoleLoss        = "loss"         // loss ratio, 0-1
	RoleDownload    = "download"     // download rate
	RoleUpload      = "upload"       // upload rate
	RoleIdle        = "idle_latency" // latency on an idle link
	RoleLoadedDown  = "loaded_download"
	RoleLoadedUp    = "loaded_upload"
	RoleLoadedDelta = "bufferbloat"
	// RolePhase marks each of the parts a run's headline latency is made
	// of (connect, TLS, …), in the order they happen; the page shows the
	// last run's as a row. Unlike the others, many values carry it.
	RolePhase = "phase"
)

// Deps is what a type's constructor gets from the agent: one value, so a
// new dependency does not change every constructor.
type Deps struct {
	Meters  metric.MeterProvider
	Tracers trace.TracerProvider
	Logger  *slog.Logger
	// Net resolves, dials and classifies (the network package).
	Net *network.Net
	// StateDir keeps what must survive a restart (a speed test's budget).
	StateDir string
	// Shared holds resources the probers of one agent share, such as one
	// ICMP socket for every ping probe; the agent closes them at shutdown.
	Shared *Shared
	// Evidence, when set, keeps what a run found beside its values (a path
	// snapshot a ping run took when it saw trouble) with the run of ctx
	// (RunIDFrom), under kind, for its debug view. It may block briefly
	// (a write); nil: evidence is only logged and traced.
	Evidence func(ctx context.Context, kind string, v any)
}

// Sharer is d.Shared as an interface value, nil when there is none (a nil
// *Shared must not become a non-nil interface): a prober outside an agent
// then opens resources of its own.
func (d Deps) Sharer() interface {
	Get(key string, open func() (io.Closer, error)) (io.Closer, error)
} {
	if d.Shared == nil {
		return nil
	}
	return d.Shared
}

// Shared holds resources that probers of one agent share and that live
// as long as the agent: the first prober to ask opens one, later ones get
// the same, and Close closes them all, in reverse order of opening.
type Shared struct {
	mu    sync.Mutex
	items map[string]io.Closer
	order []string
}

// Get returns the resource under key, opening it with open the first time.
func (s *Shared) Get(key string, open func() (io.Closer, error)) (io.Closer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.items[key]; ok {
		return c, nil
	}
	c, err := open()
	if err != nil {
		return nil, err
	}
	if s.items == nil {
		s.items = map[string]io.Closer{}
	}
	s.items[key] = c
	s.order = append(s.order, key)
	return c, nil
}

// Close closes every resource and returns the first error.
func (s *Shared) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first error
	for _, k := range slices.Backward(s.order) {
		if err := s.items[k].Close(); err != nil && first == nil {
			first = fmt.Errorf("%s: %w", k, err)
		}
	}
	s.items, s.order = nil, nil
	return first
}

// Registry is the list of known probe types.
type Registry struct {
	types []*Type
}

// NewRegistry returns a registry of types, in the order given (the order
// of error messages and documentation).
func NewRegistry(types ...*Type) *Registry { return &Registry{types: types} }

// Types returns every type.
func (r *Registry) Types() []*Type { return r.types }

// Lookup returns the named type, or nil.
func (r *Registry) Lookup(name string) *Type {
	if r == nil {
		return nil
	}
	for _, t := range r.types {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Names lists the type names (config.Types).
func (r *Registry) Names() []string {
	names := make([]string, len(r.types))
	for i, t := range r.types {
		names[i] = t.Name
	}
	return names
}

// Objectives returns the objectives besides availability a probe of the
// named type may set (config.ObjectiveTypes).
func (r *Registry) Objectives(name string) []string {
	if t := r.Lookup(name); t != nil {
		return append([]string{}, t.Objectives...)
	}
	return nil
}

// NewBlock returns a new configuration block of the named type (config.Types).
func (r *Registry) NewBlock(name string) (config.Block, bool) {
	if t := r.Lookup(name); t != nil {
		return t.NewConfig(), true
	}
	return nil, false
}
