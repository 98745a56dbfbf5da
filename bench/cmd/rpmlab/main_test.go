package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/testutil"
)

// TestScriptParses: bench/speedtest-rpm.sh, which builds and runs this
// command (as root, by hand), is valid bash; so are speedtest-veth.sh and the
// veth pair both source.
func TestScriptParses(t *testing.T) {
	for _, name := range []string{"speedtest-rpm.sh", "speedtest-veth.sh", "lib/veth-pair.sh"} {
		script := filepath.Join(testutil.ModuleRoot(t), "bench", name)
		if out, err := exec.Command("bash", "-n", script).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", script, err, out)
		}
	}
}

// iputils ping -D lines are read with their receive time; other lines
// are skipped; the window and the trimmed mean are the ones printed.
func TestParsePing(t *testing.T) {
	out := `PING 198.18.1.2 (198.18.1.2) 56(84) bytes of data.
[1700000000.500000] 64 bytes from 198.18.1.2: icmp_seq=1 ttl=64 time=10.0 ms
[1700000001.000000] 64 bytes from 198.18.1.2: icmp_seq=2 ttl=64 time=20.0 ms
[1700000001.500000] 64 bytes from 198.18.1.2: icmp_seq=3 ttl=64 time=400 ms
--- 198.18.1.2 ping statistics ---`
	s := parsePing(strings.NewReader(out))
	if len(s) != 3 || s[1].rtt != 20*time.Millisecond || !s[0].at.Equal(time.Unix(1700000000, 5e8)) {
		t.Fatalf("parsed %+v", s)
	}
	w := window(s, time.Unix(1700000001, 0), time.Unix(1700000002, 0))
	if len(w) != 2 {
		t.Errorf("window: %v", w)
	}
	if m := trimmedMean(w); m != 210*time.Millisecond {
		t.Errorf("trimmed mean of 2 samples %v, want 210ms (nothing to drop)", m)
	}
}
