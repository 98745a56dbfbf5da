package speedtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBudgetEstimateAndCalendar(t *testing.T) {
	now := time.Date(2026, 11, 28, 23, 0, 0, 0, time.Local)
	cfg := Config{MaxBytes: 40e6, Budget: Budget{Daily: 100e6, Monthly: 150e6}}
	b, err := newBudget(cfg, "", func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	// No run yet: a run may use 2 × max_bytes = 80 MB, which fits.
	if err := b.admit(); err != nil {
		t.Fatalf("first run refused: %v", err)
	}
	_ = b.add(60e6)
	// Next estimate: 1.25 × 60 MB = 75 MB; 60 + 75 > 100.
	err = b.admit()
	if err == nil || !strings.Contains(err.Error(), "daily data budget: 60MB used of 100MB, and a run may use 75MB") {
		t.Fatalf("admit after 60 MB of 100 MB: %v", err)
	}
	now = now.Add(2 * time.Hour) // Nov 29, 01:00: a new day, the same month
	if err := b.admit(); err != nil {
		t.Fatalf("refused on a new day: %v", err)
	}
	_ = b.add(60e6)               // month: 120 MB of 150 MB
	now = now.Add(24 * time.Hour) // Nov 30
	err = b.admit()
	if err == nil || !strings.Contains(err.Error(), "monthly data budget: 120MB used of 150MB") {
		t.Fatalf("admit with 120 MB of 150 MB used this month: %v", err)
	}
	now = now.Add(24 * time.Hour) // December 1
	if err := b.admit(); err != nil {
		t.Fatalf("refused in a new month: %v", err)
	}
	if d, m := b.used(); d != 0 || m != 0 {
		t.Errorf("used %d today, %d this month; want 0 after the month changed", d, m)
	}
}

// The counters survive a restart, and a damaged state file is an error
// that names it rather than a silently reset budget.
func TestBudgetStateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "speedtest-budget-speed.json")
	cfg := Config{MaxBytes: 10e6, Budget: Budget{Daily: 100e6}}
	b, err := newBudget(cfg, path, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.add(12345678); err != nil {
		t.Fatal(err)
	}
	b2, err := newBudget(cfg, path, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if d, m := b2.used(); d != 12345678 || m != 12345678 || b2.estimate() != min(20e6, 12345678*5/4) {
		t.Errorf("after a restart: used %d/%d, estimate %d", d, m, b2.estimate())
	}
	if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := newBudget(cfg, path, time.Now); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("damaged state file: %v, want an error naming it", err)
	}
}

func TestSummarize(t *testing.T) {
	ms := func(v ...float64) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x*float64(time.Millisecond)))
		}
		return out
	}
	l := summarize(ms(10, 12, 11, 15), 0)
	if l.Samples != 4 || l.Min != 0.010 || l.Max != 0.015 || abs(l.Mean-0.012) > 1e-9 || abs(l.Jitter-(2+1+4)/3e3) > 1e-9 {
		t.Errorf("summarize = %+v", l)
	}
	// 20 samples, the slowest 5 % (one) dropped from the mean.
	rtts := ms(10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 1000)
	if l := summarize(rtts, 0.05); abs(l.Mean-0.010) > 1e-9 || l.Max != 1 {
		t.Errorf("trimmed = %+v, want mean 10 ms and max 1 s", l)
	}
	if l := summarize(nil, 0.05); l.Samples != 0 {
		t.Errorf("no samples: %+v", l)
	}
}

func TestSteadyRate(t *testing.T) {
	// 1 MB/s after a slow first second (slow start), 5 s in all.
	var s []sample
	for i := 0; i <= 100; i++ {
		at := time.Duration(i) * 50 * time.Millisecond
		b := int64(0)
		if at > time.Second {
			b = int64((at - time.Second).Seconds() * 1e6)
		}
		s = append(s, sample{at: at, bytes: b + int64(min(at, time.Second).Seconds()*1e5)})
	}
	if r := steadyRate(s, 5*time.Second, 0.25); abs(r-1e6) > 1e3 {
		t.Errorf("steady rate %g, want 1e6 (the warm-up left out)", r)
	}
	if r := steadyRate(s[:1], time.Second, 0.25); r != 0 {
		t.Errorf("one sample: %g", r)
	}
}

// A hole (a loss TCP is recovering from) at the start of the window holds
// back the in-order counter, which then jumps: the rate must not include
// the jump.
func TestSteadyRateIgnoresHoles(t *testing.T) {
	var s []sample
	for i := 0; i <= 80; i++ { // 4 s at 2.5 MB/s (20 Mbit/s)
		at := time.Duration(i) * 50 * time.Millisecond
		b := int64(at.Seconds() * 2.5e6)
		if at >= 1100*time.Millisecond && at < 1400*time.Millisecond {
			b -= int64((at - time.Second).Seconds() * 2e6) // up to 800 kB held back
		}
		s = append(s, sample{at: at, bytes: b})
	}
	if r := steadyRate(s, 4*time.Second, 0.25); abs(r-2.5e6)/2.5e6 > 0.005 {
		t.Errorf("rate %g, want 2.5e6 despite the hole", r)
	}
}

func abs(x float64) float64 { return max(x, -x) }
