package config_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probes"
)

// A target's objectives replace the probe's key by key; unset windows are
// 30 days.
func TestTargetObjectivesOverrideKeyByKey(t *testing.T) {
	cfg, err := config.Parse([]byte(`
probes:
  - name: internet
    type: ping
    objectives:
      availability: {target: 99.9%, window: 7d}
      latency: {target: 99%, max: 40ms}
    targets:
      - host: 127.0.0.1
      - host: 127.0.0.2
        objectives:
          availability: {target: 99.5%}
          loss: {target: 99%, max: 1%, window: 28d}
`), probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Probes[0]
	first, second := p.TargetObjectives(0), p.TargetObjectives(1)
	if got := *first.Availability; got.Target != 0.999 || time.Duration(got.Window) != 7*24*time.Hour {
		t.Errorf("target 0 availability = %+v, want the probe's 99.9%% over 7d", got)
	}
	if got := *second.Availability; got.Target != 0.995 || time.Duration(got.Window) != 7*24*time.Hour {
		t.Errorf("target 1 availability = %+v, want its own 99.5%% over the probe's 7d", got)
	}
	if second.Latency == nil || second.Latency.Max != 40*time.Millisecond || time.Duration(second.Latency.Window) != config.DefaultObjectiveWindow {
		t.Errorf("target 1 latency = %+v, want the probe's 40ms over the default 30d", second.Latency)
	}
	if first.Loss != nil || second.Loss == nil || second.Loss.Max != 0.01 {
		t.Errorf("loss: target 0 %+v (want none), target 1 %+v (want max 1%%)", first.Loss, second.Loss)
	}
	names := []string{}
	for _, o := range second.Each() {
		names = append(names, o.Name)
	}
	if strings.Join(names, ",") != "availability,latency,loss" {
		t.Errorf("Each() = %v", names)
	}
}

func TestMaintenanceActiveAt(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	weekly := config.Maintenance{Start: at("2026-11-29T02:00:00+01:00"), End: at("2026-11-29T04:00:00+01:00"), Repeat: "weekly"}
	once := weekly
	once.Repeat = ""
	cases := []struct {
		m      config.Maintenance
		now    string
		active bool
		until  string
	}{
		{once, "2026-11-29T01:59:59+01:00", false, ""},
		{once, "2026-11-29T02:00:00+01:00", true, "2026-11-29T04:00:00+01:00"},
		{once, "2026-11-29T04:00:00+01:00", false, ""},
		{once, "2026-12-06T03:00:00+01:00", false, ""},
		{weekly, "2026-12-06T03:00:00+01:00", true, "2026-12-06T04:00:00+01:00"},
		{weekly, "2026-12-07T03:00:00+01:00", false, ""},
		{weekly, "2026-11-22T03:00:00+01:00", false, ""}, // before the first
	}
	for _, c := range cases {
		active, until := c.m.ActiveAt(at(c.now))
		if active != c.active || (c.active && !until.Equal(at(c.until))) {
			t.Errorf("%s window at %s: active %v until %v, want %v until %s", c.m.Repeat, c.now, active, until, c.active, c.until)
		}
	}
}

func TestMaintenanceFor(t *testing.T) {
	cfg, err := config.Parse([]byte(`
maintenance:
  - {reason: ISP works, start: 2026-12-01T02:00:00Z, end: 2026-12-01T04:00:00Z, probes: [internet], targets: [b]}
  - {reason: everything, start: 2026-12-02T02:00:00Z, end: 2026-12-02T04:00:00Z}
probes:
  - name: internet
    type: ping
    maintenance:
      - {reason: router, start: 2026-12-03T02:00:00Z, end: 2026-12-03T04:00:00Z, targets: [a]}
    targets: [{host: 127.0.0.1, name: a}, {host: 127.0.0.2, name: b}]
  - name: other
    type: ping
    targets: [{host: 127.0.0.3, name: b}]
`), probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	reasons := func(probe, target string) string {
		var r []string
		for _, m := range cfg.MaintenanceFor(probe, target) {
			r = append(r, m.Reason)
		}
		return strings.Join(r, ",")
	}
	for _, c := range [][3]string{
		{"internet", "a", "everything,router"},
		{"internet", "b", "ISP works,everything"},
		{"other", "b", "everything"},
	} {
		if got := reasons(c[0], c[1]); got != c[2] {
			t.Errorf("MaintenanceFor(%s, %s) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}

func TestPercentageNeedsSign(t *testing.T) {
	for in, want := range map[string]float64{"99.9%": 0.999, " 1 %": 0.01, "0%": 0} {
		got, err := config.ParsePercentage(in)
		if err != nil || float64(got) != want {
			t.Errorf("ParsePercentage(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"99.9", "0.999", "%", "NaN%", "ninety%"} {
		if _, err := config.ParsePercentage(in); err == nil {
			t.Errorf("ParsePercentage(%q): no error", in)
		}
	}
}

func TestObjectivesRoundTrip(t *testing.T) {
	for _, in := range []string{"30d", "7d", "4w", "720h", "90m"} {
		w, err := config.ParseObjectiveWindow(in)
		if err != nil {
			t.Fatal(err)
		}
		back, err := config.ParseObjectiveWindow(w.String())
		if err != nil || back != w {
			t.Errorf("%s -> %s -> %v, %v", in, w, back, err)
		}
	}
	_, err := config.Parse([]byte("probes: [{name: p, type: ping, targets: [{host: a}], objectives: {availability: {target: 99%, window: 0x}}}]"), probes.Registry)
	if want := `probes[0].objectives.availability.window: "0x" is not a window (30d, 4w, 720h)`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("window 0x: err %v, want %q", err, want)
	}
}

// The README's objectives example is a configuration the agent accepts.
func TestREADMEObjectivesExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Objectives, burn-rate alerts")
	_, block, ok2 := strings.Cut(section, "```yaml\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README.md has no yaml block in its Objectives section")
	}
	cfg, err := config.Parse([]byte(block), probes.Registry)
	if err != nil {
		t.Fatalf("README.md's objectives example: %v", err)
	}
	if o := cfg.Probes[0].TargetObjectives(0); o.Availability == nil || o.Availability.Target != 0.995 || o.Latency == nil {
		t.Errorf("README.md's example: cloudflare's objectives %+v", o)
	}
	if len(cfg.MaintenanceFor("internet", "cloudflare")) != 2 {
		t.Errorf("README.md's example: cloudflare is covered by %d windows, want 2", len(cfg.MaintenanceFor("internet", "cloudflare")))
	}
}

// A time that is not RFC 3339 is named with its path; quoted or not, a
// good one is read.
func TestMaintenanceTimes(t *testing.T) {
	good := "maintenance: [{reason: r, start: \"2026-12-01T02:00:00Z\", end: 2026-12-01T04:00:00+01:00}]\n" +
		"probes: [{name: p, type: ping, targets: [{host: 127.0.0.1}]}]\n"
	cfg, err := config.Parse([]byte(good), probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	if m := cfg.Maintenance[0]; !m.Start.Equal(time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)) || !m.End.Equal(time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)) {
		t.Errorf("start %v end %v", m.Start, m.End)
	}
	bad := "maintenance:\n  - {reason: r, start: tomorrow, end: 2026-12-01T03:00:00Z}\n" +
		"probes: [{name: p, type: ping, targets: [{host: 127.0.0.1}]}]\n"
	_, err = config.Parse([]byte(bad), probes.Registry)
	if want := `maintenance[0].start: must be an RFC 3339 time such as 2026-12-01T02:00:00+01:00, not "tomorrow"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want %q", err, want)
	}
}
