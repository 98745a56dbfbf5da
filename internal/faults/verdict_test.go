package faults

import (
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe"
)

// The verdict's rules on results made up per tier (pure logic; the chain
// test runs real probes through namespaces).
func TestVerdictRules(t *testing.T) {
	mk := func(name, tier string) *probe.Target {
		return probe.NewTarget(config.Probe{Name: "p", Type: "ping", Interval: time.Minute},
			config.Target{Name: name, Host: name, Tier: tier})
	}
	gw, isp, in1, in2, dns := mk("192.168.1.1", "gateway"), mk("100.64.0.1", "isp"), mk("1.1.1.1", "internet"),
		mk("9.9.9.9", "internet"), mk("192.168.1.53", "dns")
	all := []*probe.Target{gw, isp, in1, in2, dns}
	type obs map[*probe.Target]bool // target: ok
	cases := []struct {
		name    string
		targets []*probe.Target
		history []obs // in order; the last sets the state
		domain  string
		reason  string // a part of the reasoning
	}{
		{"all up", all, []obs{{gw: true, isp: true, in1: true, in2: true, dns: true}}, DomainNone, "no fault"},
		{"gateway down", all, []obs{{gw: true, isp: true, in1: true, in2: true, dns: true},
			{gw: false, isp: false, in1: false, in2: false, dns: false}}, "gateway", "192.168.1.1 fails"},
		{"isp down", all, []obs{{gw: true, isp: true, in1: true, in2: true},
			{isp: false, in1: false, in2: false}}, "isp", "100.64.0.1, CGNAT fails (no_reply)"},
		{"internet down", all, []obs{{gw: true, isp: true, in1: true, in2: true}, {in1: false, in2: false}}, "internet", "isp answers"},
		{"one far end down", all, []obs{{gw: true, isp: true, in1: true, in2: true}, {in1: false}}, "target", "the far end of 1.1.1.1"},
		{"dns down", all, []obs{{gw: true, isp: true, in1: true, in2: true, dns: true}, {dns: false}}, "dns", "resolvers do not"},
		// A gateway that limits ICMP loses runs while everything beyond answers.
		{"gateway rate-limits", all, []obs{{gw: true, isp: true, in1: true, in2: true}, {gw: false}}, DomainNone, "gateway fails while tiers beyond it answer"},
		// A gateway that never answered is unknown, never blamed.
		{"silent gateway", all, []obs{{gw: false, isp: true, in1: true, in2: true}, {gw: false, isp: false, in1: false, in2: false}},
			DomainUnknown, "never answered"},
		{"silent gateway, internet down", all, []obs{{gw: false, isp: true, in1: true, in2: true}, {in1: false, in2: false}}, "internet", "isp answers"},
		// Internet targets alone cannot say where.
		{"internet only", []*probe.Target{in1, in2}, []obs{{in1: true, in2: true}, {in1: false, in2: false}}, DomainUnknown, "no nearer tier"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j, err := NewJudge(c.targets, nil)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
			j.now = func() time.Time { return now }
			var changes []string
			j.OnChange = func(v Verdict) { changes = append(changes, v.Domain) }
			for _, o := range c.history {
				now = now.Add(time.Minute)
				for tg, ok := range o {
					r := probe.Result{Target: tg, Start: now, Duration: time.Second, Outcome: probe.OutcomeSuccess}
					if !ok {
						r.Outcome, r.ErrorType = probe.OutcomeFailure, probe.ErrNoReply
					}
					j.Observe(r)
				}
			}
			v := j.Verdict()
			t.Logf("%s: %s", v.Domain, v.Reason)
			if v.Domain != c.domain || !strings.Contains(v.Reason, c.reason) {
				t.Errorf("verdict %s (%s), want %s with %q", v.Domain, v.Reason, c.domain, c.reason)
			}
			if c.domain != DomainNone && c.domain != DomainUnknown && (len(changes) == 0 || changes[len(changes)-1] != c.domain) {
				t.Errorf("OnChange saw %v, want it to end with %s", changes, c.domain)
			}
			// Results age out: three intervals later nothing is known.
			now = now.Add(4 * time.Minute)
			if v := j.Verdict(); v.Domain != DomainNone {
				t.Errorf("with stale results: %s (%s), want none", v.Domain, v.Reason)
			}
		})
	}
}

func TestNoTieredTargets(t *testing.T) {
	j, err := NewJudge([]*probe.Target{probe.NewTarget(config.Probe{Name: "p"}, config.Target{Host: "x"})}, nil)
	if err != nil || j != nil {
		t.Fatalf("judge %v, %v: want none without tiered targets", j, err)
	}
	j.Observe(probe.Result{})
	if v := j.Verdict(); v.Domain != DomainNone {
		t.Errorf("nil judge: %+v", v)
	}
}
