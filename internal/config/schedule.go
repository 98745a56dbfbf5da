package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Schedule refines when a probe's runs start; the scheduler applies it to
// every target of the probe.
type Schedule struct {
	// FirstRun is when a target's first run after a start (or reload)
	// happens: "interval" at a random offset within the interval (targets
	// spread out); "soon" within a minute unless the history holds a run of
	// the target that started within the last interval, after which the
	// next comes an interval after it (a restart neither delays a daily
	// speed test by up to a day nor repeats one). Empty: the type's
	// default (speedtest: soon; others: interval).
	FirstRun string `yaml:"first_run"`
	// Windows are the local times at which runs may start, e.g.
	// "01:00-06:00", "mon-fri 18:00-08:00" (past midnight: until 08:00 the
	// next day), "sat,sun 00:00-24:00". A slot outside every window waits
	// for the next opening. Empty: any time.
	Windows []string `yaml:"windows"`
}

// First-run policies.
const (
	FirstRunInterval = "interval"
	FirstRunSoon     = "soon"
)

// Window is a parsed schedule window: on each of Days (index: time.Weekday)
// from From to To minutes after local midnight; To <= From runs on past
// midnight into the next day.
type Window struct {
	Days     [7]bool
	From, To int
}

var (
	windowRE = regexp.MustCompile(`^(?:([a-z,\-]+)\s+)?([0-9]{2}):([0-9]{2})-([0-9]{2}):([0-9]{2})$`)
	dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
)

// ParseWindow parses "[days ]HH:MM-HH:MM"; days are names (mon, tue, ...)
// and ranges (mon-fri, fri-mon) separated by commas, all days if absent.
func ParseWindow(s string) (Window, error) {
	m := windowRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return Window{}, fmt.Errorf("%q is not a window: want [days ]HH:MM-HH:MM, e.g. \"01:00-06:00\" or \"mon-fri 18:00-08:00\"", s)
	}
	var w Window
	if m[1] == "" {
		w.Days = [7]bool{true, true, true, true, true, true, true}
	} else {
		for _, part := range strings.Split(m[1], ",") {
			a, b, isRange := strings.Cut(part, "-")
			from, ok1 := dayIndex(a)
			to, ok2 := from, true
			if isRange {
				to, ok2 = dayIndex(b)
			}
			if !ok1 || !ok2 {
				return Window{}, fmt.Errorf("%q: unknown day in %q (days are %s)", s, part, strings.Join(dayNames, ", "))
			}
			for d := from; ; d = (d + 1) % 7 {
				w.Days[d] = true
				if d == to {
					break
				}
			}
		}
	}
	minutes := func(h, mm string) (int, bool) {
		hv, _ := strconv.Atoi(h)
		mv, _ := strconv.Atoi(mm)
		return hv*60 + mv, mv < 60 && (hv < 24 || hv == 24 && mv == 0)
	}
	var ok1, ok2 bool
	w.From, ok1 = minutes(m[2], m[3])
	w.To, ok2 = minutes(m[4], m[5])
	switch {
	case !ok1 || !ok2 || w.From == 24*60:
		return Window{}, fmt.Errorf("%q: times run from 00:00 to 24:00 (24:00 only as the end)", s)
	case w.From == w.To:
		return Window{}, fmt.Errorf("%q never opens: it starts and ends at the same time (a whole day is 00:00-24:00)", s)
	}
	return w, nil
}

func dayIndex(name string) (int, bool) {
	for i, d := range dayNames {
		if d == name {
			return i, true
		}
	}
	return 0, false
}

// contains reports whether local time t lies inside w.
func (w Window) contains(t time.Time) bool {
	day, m := int(t.Weekday()), t.Hour()*60+t.Minute()
	if w.From < w.To {
		return w.Days[day] && m >= w.From && m < w.To
	}
	return w.Days[day] && m >= w.From || w.Days[(day+6)%7] && m < w.To
}

// NextOpen returns the earliest time at or after t at which a run may
// start under windows (t itself without windows). Every valid window
// opens within a week, so the search is bounded.
func NextOpen(windows []Window, t time.Time) time.Time {
	if len(windows) == 0 {
		return t
	}
	var best time.Time
	for _, w := range windows {
		if w.contains(t) {
			return t
		}
		y, mo, d := t.Date()
		for off := 0; off <= 7; off++ {
			day := time.Date(y, mo, d+off, 0, 0, 0, 0, t.Location())
			if !w.Days[day.Weekday()] {
				continue
			}
			open := time.Date(y, mo, d+off, w.From/60, w.From%60, 0, 0, t.Location())
			if open.Before(t) {
				continue
			}
			if best.IsZero() || open.Before(best) {
				best = open
			}
			break
		}
	}
	return best
}

// ParsedWindows returns the schedule's windows (validated: no errors).
func (s Schedule) ParsedWindows() []Window {
	var out []Window
	for _, w := range s.Windows {
		if pw, err := ParseWindow(w); err == nil {
			out = append(out, pw)
		}
	}
	return out
}

func (s Schedule) validate(p *Problems, path string) {
	switch s.FirstRun {
	case "", FirstRunInterval, FirstRunSoon:
	default:
		p.Add(path+".first_run", "must be soon or interval, not %q", s.FirstRun)
	}
	for i, w := range s.Windows {
		if _, err := ParseWindow(w); err != nil {
			p.Add(fmt.Sprintf("%s.windows[%d]", path, i), "%v", err)
		}
	}
}
