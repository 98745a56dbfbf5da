package config

import (
	"testing"
	"time"
)

// Windows open at their start on their days, run on past midnight when
// they end before they start, and a time inside one is open at once.
func TestNextOpen(t *testing.T) {
	loc := time.FixedZone("test", 3600)
	at := func(day, hh, mm int) time.Time { return time.Date(2026, 11, day, hh, mm, 0, 0, loc) } // 2026-11-23 is a Monday
	parse := func(ss ...string) []Window {
		var ws []Window
		for _, s := range ss {
			w, err := ParseWindow(s)
			if err != nil {
				t.Fatal(err)
			}
			ws = append(ws, w)
		}
		return ws
	}
	night := parse("01:00-06:00")
	offHours := parse("mon-fri 18:00-08:00", "sat,sun 00:00-24:00")
	for _, c := range []struct {
		name    string
		windows []Window
		t, want time.Time
	}{
		{"no windows", nil, at(23, 12, 0), at(23, 12, 0)},
		{"inside", night, at(23, 3, 30), at(23, 3, 30)},
		{"before", night, at(23, 0, 59), at(23, 1, 0)},
		{"after: tomorrow", night, at(23, 6, 0), at(24, 1, 0)},
		{"work hours: this evening", offHours, at(23, 9, 0), at(23, 18, 0)},
		{"past midnight of a weekday window", offHours, at(24, 7, 59), at(24, 7, 59)},
		{"friday 08:00: the evening", offHours, at(27, 8, 0), at(27, 18, 0)},
		{"saturday noon", offHours, at(28, 12, 0), at(28, 12, 0)},
		{"monday 07:00 after the weekend (sunday's window ended at 24:00)", offHours, at(30, 7, 0), at(30, 18, 0)},
	} {
		if got := NextOpen(c.windows, c.t); !got.Equal(c.want) {
			t.Errorf("%s: NextOpen(%s) = %s, want %s", c.name, c.t.Format("Mon 15:04"), got.Format("Mon 02 15:04"), c.want.Format("Mon 02 15:04"))
		}
	}
	// Day ranges wrap around the week.
	w := parse("fri-mon 00:00-24:00")[0]
	if want := [7]bool{true, true, false, false, false, true, true}; w.Days != want {
		t.Errorf("fri-mon: %v", w.Days)
	}
}
