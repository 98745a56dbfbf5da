package icmp

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/netpulse/netpulse/internal/testutil"
)

// TestBenchScriptsParse: the engine's benchmark scripts are valid bash (they
// run only by hand; bench/cmd/icmpscale is built by go vet ./...).
func TestBenchScriptsParse(t *testing.T) {
	root := testutil.ModuleRoot(t)
	for _, name := range []string{"icmp-loopback.sh", "icmp-scale.sh"} {
		if out, err := exec.Command("bash", "-n", filepath.Join(root, "bench", name)).CombinedOutput(); err != nil {
			t.Errorf("bash -n bench/%s: %v\n%s", name, err, out)
		}
	}
}
