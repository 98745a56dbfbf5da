package config

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Maintenance is planned downtime: while it is active, a covered target's
// netpulse_maintenance_active is 1, which mutes its alerts and leaves its
// results out of the SLIs (prometheus/rules/slo.yml), and the status page
// and API show the reason and the end.
//
// Windows are set at the top level (probes and targets name what they
// cover; none: everything) or on a probe (targets name what they cover;
// none: every target of the probe).
type Maintenance struct {
	// Reason is shown on the status page and in the API.
	Reason string `yaml:"reason"`
	// Start and End bound the window (RFC 3339: 2026-12-01T02:00:00+01:00);
	// with Repeat, the first occurrence.
	Start time.Time `yaml:"start"`
	End   time.Time `yaml:"end"`
	// Repeat: "" (once), daily or weekly, from Start. The period is fixed
	// (24 h, 7 × 24 h): a window written with a UTC offset keeps that
	// offset across daylight saving changes.
	Repeat string `yaml:"repeat,omitempty"`
	// Probes (top level only) and Targets name what the window covers.
	Probes  []string `yaml:"probes,omitempty"`
	Targets []string `yaml:"targets,omitempty"`
}

// Repeat periods of Maintenance.Repeat.
var repeatPeriods = map[string]time.Duration{"": 0, "daily": 24 * time.Hour, "weekly": 7 * 24 * time.Hour}

// ActiveAt returns whether the window is active at now and, if it is, when
// the current occurrence ends.
func (m Maintenance) ActiveAt(now time.Time) (bool, time.Time) {
	if now.Before(m.Start) {
		return false, time.Time{}
	}
	start := m.Start
	if period := repeatPeriods[m.Repeat]; period > 0 {
		start = start.Add(now.Sub(m.Start) / period * period)
	}
	end := start.Add(m.End.Sub(m.Start))
	if now.Before(end) {
		return true, end
	}
	return false, time.Time{}
}

// MaintenanceFor returns the windows that cover a probe's target: the
// top-level ones that name the probe (or no probe) and the target (or no
// target), and the probe's own that name the target (or none).
func (c *Config) MaintenanceFor(probe, target string) []Maintenance {
	var out []Maintenance
	covers := func(names []string, name string) bool { return len(names) == 0 || slices.Contains(names, name) }
	for _, m := range c.Maintenance {
		if covers(m.Probes, probe) && covers(m.Targets, target) {
			out = append(out, m)
		}
	}
	for _, p := range c.Probes {
		if p.Name != probe {
			continue
		}
		for _, m := range p.Maintenance {
			if covers(m.Targets, target) {
				out = append(out, m)
			}
		}
	}
	return out
}

// validateMaintenance checks the top-level windows and the probes' own.
func (c *Config) validateMaintenance(p *Problems) {
	probeIndex := map[string]int{}
	for i, pr := range c.Probes {
		probeIndex[pr.Name] = i
	}
	targetsOf := func(probes []string) map[string]bool {
		names := map[string]bool{}
		for _, pr := range c.Probes {
			if len(probes) == 0 || slices.Contains(probes, pr.Name) {
				for _, t := range pr.Targets {
					names[t.Name] = true
				}
			}
		}
		return names
	}
	for i, m := range c.Maintenance {
		path := fmt.Sprintf("maintenance[%d]", i)
		m.validate(p, path)
		for j, name := range m.Probes {
			if _, ok := probeIndex[name]; !ok {
				p.Add(fmt.Sprintf("%s.probes[%d]", path, j), "no probe is named %q", name)
			}
		}
		known := targetsOf(m.Probes)
		for j, name := range m.Targets {
			if !known[name] {
				p.Add(fmt.Sprintf("%s.targets[%d]", path, j), "no target of %s is named %q", probesPhrase(m.Probes), name)
			}
		}
	}
	for i, pr := range c.Probes {
		for j, m := range pr.Maintenance {
			path := fmt.Sprintf("probes[%d].maintenance[%d]", i, j)
			m.validate(p, path)
			if len(m.Probes) > 0 {
				p.Add(path+".probes", "is only allowed in the top-level maintenance list: this window is the probe's own")
			}
			known := targetsOf([]string{pr.Name})
			for k, name := range m.Targets {
				if !known[name] {
					p.Add(fmt.Sprintf("%s.targets[%d]", path, k), "probe %s has no target named %q", pr.Name, name)
				}
			}
		}
	}
}

func probesPhrase(probes []string) string {
	if len(probes) == 0 {
		return "any probe"
	}
	return "probes " + strings.Join(probes, ", ")
}

func (m Maintenance) validate(p *Problems, path string) {
	if strings.TrimSpace(m.Reason) == "" {
		p.Add(path+".reason", "is required (the status page shows it)")
	}
	if m.Start.IsZero() {
		p.Add(path+".start", "is required (RFC 3339: 2026-12-01T02:00:00+01:00)")
	}
	if m.End.IsZero() {
		p.Add(path+".end", "is required (RFC 3339: 2026-12-01T04:00:00+01:00)")
	}
	period, ok := repeatPeriods[m.Repeat]
	if !ok {
		p.Add(path+".repeat", "must be daily, weekly or empty (once), not %q", m.Repeat)
	}
	switch {
	case m.Start.IsZero() || m.End.IsZero():
	case !m.End.After(m.Start):
		p.Add(path+".end", "must be after start (%s), not %s", m.Start.Format(time.RFC3339), m.End.Format(time.RFC3339))
	case period > 0 && m.End.Sub(m.Start) >= period:
		p.Add(path+".end", "a %s window must be shorter than its period (%s), not %s", m.Repeat, period, m.End.Sub(m.Start))
	}
}
