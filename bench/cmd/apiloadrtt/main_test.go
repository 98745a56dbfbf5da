package main

import (
	"math"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/netpulse/netpulse/internal/testutil"
)

// TestScriptParses: bench/api-load-rtt.sh, which builds and runs this
// command (by hand: it takes minutes), is valid bash.
func TestScriptParses(t *testing.T) {
	script := filepath.Join(testutil.ModuleRoot(t), "bench", "api-load-rtt.sh")
	if out, err := exec.Command("bash", "-n", script).CombinedOutput(); err != nil {
		t.Errorf("bash -n %s: %v\n%s", script, err, out)
	}
}

// TestQuantile: nearest-rank quantiles, as the figures table prints them.
func TestQuantile(t *testing.T) {
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = float64(100 - i) // 100 … 1, unsorted on purpose
	}
	for _, c := range []struct{ p, want float64 }{{0.5, 50}, {0.99, 99}, {1, 100}, {0, 1}} {
		if got := q(xs, c.p); got != c.want {
			t.Errorf("q(1..100, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := q(nil, 0.5); !math.IsNaN(got) {
		t.Errorf("q(nil) = %v, want NaN", got)
	}
	if got := q([]float64{7}, 0.99); got != 7 {
		t.Errorf("q([7], 0.99) = %v, want 7", got)
	}
}
