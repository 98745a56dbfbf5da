// Package faults answers "whose fault is it?": from the latest results of
// the targets that carry a tier (lan, gateway, isp, dns, internet) it
// states the fault domain, with its reasoning, as a metric
// (netpulse_fault_domain) and for the API; and it finds the default
// gateways in the kernel's routing table.
package faults

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/netpulse/netpulse/internal/probe"
)

// Domains are the values of the domain label: the tiers, and target (some
// internet targets fail while others answer: the far end's fault).
var Domains = []string{"lan", "gateway", "isp", "dns", "internet", "target"}

// Verdict values of Domain besides Domains.
const (
	DomainNone    = "none"    // every tier answers
	DomainUnknown = "unknown" // something fails, but the tiers cannot tell where
)

// Verdict is where the fault is, and why.
type Verdict struct {
	Domain string `json:"domain"`
	// Reason is the reasoning in one line: each tier's state, then ⇒ and
	// the conclusion.
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	// Family is set when targets pinged over both address families (ping
	// ip_version: both) fail over this one while the other answers:
	// ipv4 or ipv6 (the reason names them).
	Family string `json:"family,omitempty"`
}

// chain is the order faults propagate in: a tier fails everything beyond
// it. DNS is beside it (a resolver can fail alone).
var chain = []string{"lan", "gateway", "isp", "internet"}

// mayNeverAnswer are tiers of network devices, which may filter ICMP: a
// target of theirs that never answered since the agent started is
// unknown, not down, and never blamed.
var mayNeverAnswer = map[string]bool{"lan": true, "gateway": true, "isp": true}

// staleAfter: a result older than this many of its probe's intervals no
// longer counts.
const staleAfter = 3

type targetState struct {
	t       *probe.Target
	seen    bool
	ok      bool
	everOK  bool
	errType string
	at      time.Time
	since   time.Time // the start of the current failure
	// family is the address family that failed while the other answered
	// in the last run (ping ip_version: both), or "".
	family string
}

// Judge keeps the latest result of every tiered target and the verdict
// they give.
type Judge struct {
	now func() time.Time

	mu      sync.Mutex
	targets map[*probe.Target]*targetState
	order   []*targetState
	verdict Verdict
	// OnChange, when set, is called (outside the lock) when the domain
	// changes, with the new verdict.
	OnChange func(Verdict)
}

// NewJudge returns a judge of the targets that have a tier, and registers
// netpulse.fault.domain on mp (one series per domain). With no tiered
// target it returns nil: there is nothing to judge.
func NewJudge(targets []*probe.Target, mp metric.MeterProvider) (*Judge, error) {
	j := &Judge{now: time.Now, targets: map[*probe.Target]*targetState{}}
	for _, t := range targets {
		if t.Tier != "" {
			s := &targetState{t: t}
			j.targets[t] = s
			j.order = append(j.order, s)
		}
	}
	if len(j.order) == 0 {
		return nil, nil
	}
	j.verdict = j.judge(j.now())
	if mp == nil {
		return j, nil
	}
	m := mp.Meter("github.com/netpulse/netpulse/internal/faults")
	sets := make([]attribute.Set, len(Domains))
	for i, d := range Domains {
		sets[i] = attribute.NewSet(attribute.String("domain", d))
	}
	_, err := m.Int64ObservableGauge("netpulse.fault.domain",
		metric.WithDescription("1 for the domain the fault-domain verdict blames (lan, gateway, isp, dns, internet, target), else 0."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			v := j.Verdict()
			for i, d := range Domains {
				var x int64
				if v.Domain == d {
					x = 1
				}
				o.Observe(x, metric.WithAttributeSet(sets[i]))
			}
			return nil
		}))
	if err != nil {
		return nil, fmt.Errorf("cannot create fault metrics: %w", err)
	}
	return j, nil
}

// Observe takes a run's result (probe.Runner.OnResult) and updates the
// verdict. Skipped runs, and runs cancelled by a shutdown, measured
// nothing and are ignored.
func (j *Judge) Observe(r probe.Result) {
	if j == nil || r.Outcome == probe.OutcomeSkipped || r.ErrorType == probe.ErrCanceled {
		return
	}
	j.mu.Lock()
	s, ok := j.targets[r.Target]
	if !ok {
		j.mu.Unlock()
		return
	}
	now := r.Start.Add(r.Duration)
	wasFailing := s.seen && !s.ok
	s.seen, s.ok, s.errType, s.at = true, r.Outcome == probe.OutcomeSuccess, r.ErrorType, now
	s.family = failingFamily(r.Values)
	if s.ok {
		s.everOK = true
	} else if !wasFailing {
		s.since = r.Start
	}
	prev := j.verdict
	j.verdict = j.judge(now)
	cur, onChange := j.verdict, j.OnChange
	j.mu.Unlock()
	if onChange != nil && cur.Domain != prev.Domain {
		onChange(cur)
	}
}

// Verdict returns the current verdict, with stale results aged out.
func (j *Judge) Verdict() Verdict {
	if j == nil {
		return Verdict{Domain: DomainNone, Reason: "no target has a tier"}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	now := j.now()
	if v := j.judge(now); v.Domain != j.verdict.Domain || v.Reason != j.verdict.Reason {
		j.verdict = v
	}
	return j.verdict
}

// Seed tells the judge whether t answered before the agent started (its
// last success in history): a gateway that answered before a restart and
// fails now is down, not a device that never answers.
func (j *Judge) Seed(t *probe.Target, answered bool) {
	if j == nil || !answered {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if s, ok := j.targets[t]; ok {
		s.everOK = true
	}
}

// neverAnswered reports whether t is a network device's target (lan,
// gateway, isp) that has not answered since the agent started (nor
// before, as seeded): unknown, not down.
func (j *Judge) neverAnswered(t *probe.Target) bool {
	if j == nil || !mayNeverAnswer[t.Tier] {
		return false
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	s, ok := j.targets[t]
	return ok && !s.everOK
}

// tiered is the number of tiered targets.
func (j *Judge) tiered() int { return len(j.order) }

// maxInterval is the longest interval of the tiered targets' probes.
func (j *Judge) maxInterval() time.Duration {
	d := time.Second
	for _, s := range j.order {
		d = max(d, s.t.Config.Interval)
	}
	return d
}

// Settled reports whether every tiered target has a result: before that
// (after a start), the verdict may lack the tier at fault.
func (j *Judge) Settled() bool {
	if j == nil {
		return false
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, s := range j.order {
		if !s.seen {
			return false
		}
	}
	return true
}

// Tier states.
const (
	stateAbsent  = "absent"  // no target of the tier is configured
	stateUnknown = "unknown" // no recent result, or a device that never answered
	stateUp      = "up"      // every known target answers
	statePartial = "partial" // some answer, some fail
	stateDown    = "down"    // every known target fails
)

type tierView struct {
	state       string
	up, down    []*targetState
	neverAnswer []*targetState
}

func (j *Judge) tiers(now time.Time) map[string]*tierView {
	out := map[string]*tierView{}
	for _, s := range j.order {
		v := out[s.t.Tier]
		if v == nil {
			v = &tierView{}
			out[s.t.Tier] = v
		}
		stale := !s.seen || now.Sub(s.at) > staleAfter*max(s.t.Config.Interval, time.Second)
		switch {
		case stale:
		case s.ok:
			v.up = append(v.up, s)
		case mayNeverAnswer[s.t.Tier] && !s.everOK:
			v.neverAnswer = append(v.neverAnswer, s)
		default:
			v.down = append(v.down, s)
		}
	}
	for _, v := range out {
		switch {
		case len(v.up) > 0 && len(v.down) > 0:
			v.state = statePartial
		case len(v.up) > 0:
			v.state = stateUp
		case len(v.down) > 0:
			v.state = stateDown
		default:
			v.state = stateUnknown
		}
	}
	return out
}

func (j *Judge) state(views map[string]*tierView, tier string) string {
	if v, ok := views[tier]; ok {
		return v.state
	}
	return stateAbsent
}

// judge states the verdict. Walking the chain from the host outwards, the
// fault is at the first tier whose targets all fail while nothing beyond it
// answers, provided the nearest configured tier before it answers (or, for
// the LAN and the gateway, that there is none: the host itself is the
// last good point). A tier that fails while a tier beyond it answers is not
// blamed: its devices filter or rate-limit ICMP. Then: some internet
// targets failing while others answer is the far end's fault (target); DNS
// resolvers failing while the internet answers is DNS.
func (j *Judge) judge(now time.Time) Verdict {
	views := j.tiers(now)
	var parts []string
	for _, tier := range Domains[:5] {
		if v, ok := views[tier]; ok {
			parts = append(parts, describe(tier, v, now))
		}
	}
	verdict := func(domain, why string) Verdict {
		v := Verdict{Domain: domain, Reason: strings.Join(parts, "; ") + " ⇒ " + why, At: now}
		j.familyLine(&v, now)
		return v
	}
	lastGood, lastConfigured := "the host", ""
	for i, tier := range chain {
		st := j.state(views, tier)
		switch st {
		case stateUp, statePartial:
			lastGood, lastConfigured = tier, tier
			continue
		case stateAbsent:
			continue
		case stateUnknown:
			lastConfigured = tier
			continue
		}
		// Down: blamed unless something beyond answers.
		// DNS is not "beyond": resolvers may sit on the LAN or at the ISP.
		beyond := slices.ContainsFunc(chain[i+1:], func(b string) bool {
			s := j.state(views, b)
			return s == stateUp || s == statePartial
		})
		if beyond {
			parts = append(parts, tier+" fails while tiers beyond it answer: its devices filter or rate-limit ICMP (not blamed)")
			lastConfigured = tier
			continue
		}
		switch {
		case lastConfigured != "" && lastConfigured != lastGood:
			return verdict(DomainUnknown, fmt.Sprintf("%s fails, but %s before it is unknown: the fault is at or before %s", tier, lastConfigured, tier))
		case lastGood == "the host" && tier != "lan" && tier != "gateway":
			return verdict(DomainUnknown, fmt.Sprintf("%s fails and no nearer tier answers to tell where", tier))
		}
		return verdict(tier, fmt.Sprintf("%s (%s answers; %s and everything beyond it fail)", tier, lastGood, tier))
	}
	if v := views["internet"]; v != nil && v.state == statePartial {
		return verdict("target", fmt.Sprintf("the far end of %s (other internet targets answer)", names(v.down)))
	}
	if j.state(views, "dns") == stateDown {
		if s := j.state(views, "internet"); s == stateUp || s == statePartial {
			return verdict("dns", "dns (the internet answers, the resolvers do not)")
		}
		return verdict(DomainUnknown, "dns fails and no internet target answers to tell where")
	}
	return verdict(DomainNone, "no fault")
}

// failingFamily is the address family that got no reply while the other
// did, from a ping run over both (its ipv4_ and ipv6_ values), or "".
func failingFamily(v probe.Values) string {
	r4, ok4 := v["ipv4_packets_received"]
	r6, ok6 := v["ipv6_packets_received"]
	switch {
	case !ok4 || !ok6:
		return ""
	case r4 == 0 && r6 > 0:
		return "ipv4"
	case r6 == 0 && r4 > 0:
		return "ipv6"
	}
	return ""
}

// familyLine says which targets fail over one family while the other
// answers, and sets v.Family.
func (j *Judge) familyLine(v *Verdict, now time.Time) {
	by := map[string][]*targetState{}
	for _, s := range j.order {
		if s.family != "" && s.seen && now.Sub(s.at) <= staleAfter*max(s.t.Config.Interval, time.Second) {
			by[s.family] = append(by[s.family], s)
		}
	}
	for _, fam := range []string{"ipv4", "ipv6"} {
		if ss := by[fam]; len(ss) > 0 {
			other := map[string]string{"ipv4": "ipv6", "ipv6": "ipv4"}[fam]
			v.Reason += fmt.Sprintf("; %s fails while %s answers: %s", fam, other, names(ss))
			if v.Family == "" {
				v.Family = fam
			}
		}
	}
}

func describe(tier string, v *tierView, now time.Time) string {
	var b []string
	if len(v.up) == 1 {
		b = append(b, names(v.up)+" answers")
	} else if len(v.up) > 1 {
		b = append(b, names(v.up)+" answer")
	}
	for _, s := range v.down {
		f := fmt.Sprintf("%s fails (%s)", label(s), s.errType)
		if d := now.Sub(s.since).Round(time.Second); d > 0 {
			f += " for " + d.String()
		}
		b = append(b, f)
	}
	if len(v.neverAnswer) > 0 {
		b = append(b, names(v.neverAnswer)+" never answered (unknown: ICMP filtered?)")
	}
	if len(b) == 0 {
		b = append(b, "no recent result")
	}
	return tier + " " + strings.Join(b, ", ")
}

func label(s *targetState) string {
	host := s.t.Host
	// An ISP hop in the shared address space (RFC 6598) is the carrier's
	// NAT: an ISP's, not a LAN's, private address.
	if a, err := netip.ParseAddr(host); err == nil && cgnat.Contains(a) {
		host += ", CGNAT"
	}
	if s.t.Name == s.t.Host {
		return host
	}
	return fmt.Sprintf("%s (%s)", s.t.Name, host)
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

func names(ss []*targetState) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = label(s)
	}
	return strings.Join(out, ", ")
}
