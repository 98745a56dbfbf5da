package probe

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// Admitter is implemented by probers that may refuse a run before it
// starts, having measured nothing: a speed test over its data budget.
type Admitter interface {
	// Admit returns "" to let the run go ahead, or a bounded reason (a
	// constant of the probe type) and an error saying why not.
	Admit(t *Target) (reason string, err error)
}

// ErrRateLimit is the refusal reason of an on-demand run asked for sooner
// than api.speedtest_min_interval after the last one of a limited type.
const ErrRateLimit = "rate_limit"

// Refusal says why a run did not start: a bounded reason (the error.type
// of the skipped run) and, for a rate limit, when to ask again.
type Refusal struct {
	Reason     string
	Err        error
	RetryAfter time.Duration
}

func (r *Refusal) Error() string { return fmt.Sprintf("run refused (%s): %v", r.Reason, r.Err) }
func (r *Refusal) Unwrap() error { return r.Err }

// RetryAfterSeconds is RetryAfter rounded up, for a Retry-After header.
func (r *Refusal) RetryAfterSeconds() int { return int(math.Ceil(r.RetryAfter.Seconds())) }

// admission is the harness's one decision whether a run may start, the
// same for scheduled and on-demand runs: the prober's own refusal (a data
// budget) first, then, for on-demand runs of a limited type, the rate
// limit. (Exclusivity and overlap are the scheduler's: a run refused there
// never reaches the harness.)
type admission struct {
	// minInterval is the least time between on-demand runs of types with
	// Policy.OnDemandLimited.
	minInterval time.Duration

	mu         sync.Mutex
	lastDemand time.Time
}

// admit decides; with reserve, an admitted on-demand run of a limited type
// takes the rate limit's slot (at the run's start, so that two requests
// cannot both pass, and a request refused later by the scheduler takes
// none).
func (a *admission) admit(p Prober, t *Target, onDemand, reserve bool, now time.Time) *Refusal {
	if ad, ok := p.(Admitter); ok {
		if reason, err := ad.Admit(t); reason != "" {
			return &Refusal{Reason: reason, Err: err}
		}
	}
	if !onDemand || !t.Policy.OnDemandLimited {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if wait := a.minInterval - now.Sub(a.lastDemand); !a.lastDemand.IsZero() && wait > 0 {
		return &Refusal{Reason: ErrRateLimit, RetryAfter: wait, Err: fmt.Errorf(
			"on-demand %s runs are limited to one every %s (api.speedtest_min_interval); retry in %ds",
			t.Type, a.minInterval, int(math.Ceil(wait.Seconds())))}
	}
	if reserve {
		a.lastDemand = now
	}
	return nil
}
