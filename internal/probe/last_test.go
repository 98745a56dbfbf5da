package probe

import (
	"testing"

	"github.com/netpulse/netpulse/internal/config"
)

func TestLast(t *testing.T) {
	a := NewTarget(config.Probe{Name: "p"}, config.Target{Name: "a"})
	b := NewTarget(config.Probe{Name: "p"}, config.Target{Name: "b"})
	var l Last[int]
	if _, had := l.Set(a, 1); had {
		t.Error("first Set reports a previous value")
	}
	if prev, had := l.Set(a, 2); !had || prev != 1 {
		t.Errorf("second Set: previous %d (%v), want 1", prev, had)
	}
	l.Set(b, 3)
	l.Delete(b)
	got := map[*Target]int{}
	for tg, v := range l.All() {
		got[tg] = v
	}
	if len(got) != 1 || got[a] != 2 {
		t.Errorf("All yields %v, want only a = 2", got)
	}
}
