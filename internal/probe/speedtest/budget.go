package speedtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/netpulse/netpulse/internal/config"
)

// budget counts the bytes a probe's runs moved in the current local day and
// month, and refuses a run that may not fit in what is left. A run may use
// 2 × max_bytes; once one has run, the estimate is 1.25 × the last run's
// bytes (links rarely double their speed between two runs), still at most
// 2 × max_bytes, and at least 1 MB.
//
// With a state file, the counters survive restarts (a crash loop must not
// reset the month); the file is rewritten atomically after every run.
type budget struct {
	daily, monthly int64
	maxRun         int64
	path           string
	now            func() time.Time

	mu    sync.Mutex
	state budgetState
	// saveErr is the last error writing the state file, logged once.
	saveErr error
}

type budgetState struct {
	Day       string `json:"day"` // 2006-01-02, local time
	DayUsed   int64  `json:"day_used_bytes"`
	Month     string `json:"month"` // 2006-01
	MonthUsed int64  `json:"month_used_bytes"`
	LastRun   int64  `json:"last_run_bytes"`
}

func newBudget(cfg Config, path string, now func() time.Time) (*budget, error) {
	b := &budget{daily: int64(cfg.Budget.Daily), monthly: int64(cfg.Budget.Monthly),
		maxRun: 2 * int64(cfg.MaxBytes), path: path, now: now}
	if path == "" {
		return b, nil
	}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("cannot read the speed-test budget state: %w", err)
	default:
		if err := json.Unmarshal(data, &b.state); err != nil {
			return nil, fmt.Errorf("cannot read the speed-test budget state %s: %w (fix or delete the file)", path, err)
		}
	}
	return b, nil
}

// roll starts a new day or month when the calendar has moved on.
func (b *budget) roll() {
	now := b.now()
	if d := now.Format("2006-01-02"); b.state.Day != d {
		b.state.Day, b.state.DayUsed = d, 0
	}
	if m := now.Format("2006-01"); b.state.Month != m {
		b.state.Month, b.state.MonthUsed = m, 0
	}
}

// estimate is how many bytes the next run may use.
func (b *budget) estimate() int64 {
	if b.state.LastRun <= 0 {
		return b.maxRun
	}
	return min(b.maxRun, max(1e6, b.state.LastRun*5/4))
}

// admit returns nil if a run fits in both budgets, else why not.
func (b *budget) admit() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll()
	need := b.estimate()
	if b.daily > 0 && b.state.DayUsed+need > b.daily {
		return fmt.Errorf("daily data budget: %s used of %s, and a run may use %s",
			config.ByteSize(b.state.DayUsed), config.ByteSize(b.daily), config.ByteSize(need))
	}
	if b.monthly > 0 && b.state.MonthUsed+need > b.monthly {
		return fmt.Errorf("monthly data budget: %s used of %s, and a run may use %s",
			config.ByteSize(b.state.MonthUsed), config.ByteSize(b.monthly), config.ByteSize(need))
	}
	return nil
}

// add counts a run's bytes and saves the state; the error is the save's.
func (b *budget) add(n int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll()
	b.state.DayUsed += n
	b.state.MonthUsed += n
	b.state.LastRun = n
	if b.path == "" {
		return nil
	}
	err := b.save()
	first := err != nil && b.saveErr == nil
	b.saveErr = err
	if first {
		return err
	}
	return nil
}

func (b *budget) save() error {
	data, err := json.Marshal(b.state)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(b.path), 0o755); err != nil {
		return fmt.Errorf("cannot save the speed-test budget state: %w", err)
	}
	tmp := b.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("cannot save the speed-test budget state: %w", err)
	}
	if err := os.Rename(tmp, b.path); err != nil {
		return fmt.Errorf("cannot save the speed-test budget state: %w", err)
	}
	return nil
}

// used returns the bytes used today and this month.
func (b *budget) used() (day, month int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll()
	return b.state.DayUsed, b.state.MonthUsed
}
