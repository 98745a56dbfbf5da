package scheduler

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/netpulse/netpulse/internal/testutil"
)

// TestBenchScriptParses: the per-run overhead benchmark is valid bash (it
// runs only by hand; bench/cmd/agentscale is built by go vet ./...).
func TestBenchScriptParses(t *testing.T) {
	script := filepath.Join(testutil.ModuleRoot(t), "bench", "agent-overhead.sh")
	if out, err := exec.Command("bash", "-n", script).CombinedOutput(); err != nil {
		t.Errorf("bash -n bench/agent-overhead.sh: %v\n%s", err, out)
	}
}
