package probe

import (
	"iter"
	"sync"
)

// Last holds each target's last-run figures (or running totals, through
// Update) for a prober's observable instruments. It has one entry per configured target, so a callback observes a
// set of series bounded by the configuration; a target whose entry is
// deleted loses its gauges until its next entry. Safe for concurrent use;
// the zero value is ready.
type Last[T any] struct {
	mu sync.Mutex
	m  map[*Target]T
}

// Set records t's last figures and returns the previous ones, if any. A
// retired target's figures are not kept.
func (l *Last[T]) Set(t *Target, v T) (prev T, had bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.Retired() {
		prev, had = l.m[t]
		delete(l.m, t)
		return prev, had
	}
	if l.m == nil {
		l.m = map[*Target]T{}
	}
	prev, had = l.m[t]
	l.m[t] = v
	return prev, had
}

// Update replaces t's figures with f of them (the zero value and false
// when it has none), under the lock: for totals a run adds to. A retired
// target's figures are not kept.
func (l *Last[T]) Update(t *Target, f func(v T, had bool) T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.Retired() {
		delete(l.m, t)
		return
	}
	if l.m == nil {
		l.m = map[*Target]T{}
	}
	v, had := l.m[t]
	l.m[t] = f(v, had)
}

// Delete forgets t's figures: its gauges are absent until the next Set.
func (l *Last[T]) Delete(t *Target) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, t)
}

// All yields every target's figures, holding the lock while it does (a
// metric callback observes them all in one consistent pass). Retired
// targets are dropped on the way.
func (l *Last[T]) All() iter.Seq2[*Target, T] {
	return func(yield func(*Target, T) bool) {
		l.mu.Lock()
		defer l.mu.Unlock()
		for t, v := range l.m {
			if t.Retired() {
				delete(l.m, t)
				continue
			}
			if !yield(t, v) {
				return
			}
		}
	}
}
