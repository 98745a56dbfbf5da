//go:build linux

package faults

import (
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/netpulse/netpulse/internal/testutil"
)

// BenchmarkFalseVerdicts measures false verdicts: on a healthy chain, each
// round of runs (b.N of them) one random router, or none, limits the echo
// replies it sends to one a minute (ICMP rate limiting at a single hop).
// Nothing is broken, so any verdict but none is false:
//
//	go test -run x -bench FalseVerdicts -benchtime 300x ./internal/faults
//	bash bench/false-verdicts.sh 30m
func BenchmarkFalseVerdicts(b *testing.B) {
	testutil.NeedICMP(b)
	testutil.NeedNft(b)
	c := testutil.NewChain(b)
	l := newLab(b, c)
	ctx := b.Context()
	l.round(ctx)
	routers := c.Routers()
	falseVerdicts, limited := 0, 0
	for i := 0; b.Loop(); i++ {
		k := rand.IntN(len(routers) + 1)
		if k < len(routers) {
			routers[k].Nft(b, "table inet ratelimit { chain egress { type filter hook output priority 0; icmp type echo-reply limit rate over 1/minute burst 1 packets drop; }; }")
			limited++
		}
		l.round(ctx)
		if v := l.judge.Verdict(); v.Domain != DomainNone {
			falseVerdicts++
			b.Logf("round %d (router %d limits ICMP): false verdict %s: %s", i, k, v.Domain, v.Reason)
		}
		if k < len(routers) {
			if out, err := routers[k].Exec("nft", "delete", "table", "inet", "ratelimit"); err != nil {
				b.Fatalf("%v: %s", err, out)
			}
		}
	}
	b.ReportMetric(float64(falseVerdicts), "false-verdicts")
	b.ReportMetric(float64(limited), "rate-limited-rounds")
}

// TestBenchScriptParses: bench/false-verdicts.sh (runs the benchmark above
// for 30 minutes; by hand) is valid bash.
func TestBenchScriptParses(t *testing.T) {
	script := filepath.Join(testutil.ModuleRoot(t), "bench", "false-verdicts.sh")
	if out, err := exec.Command("bash", "-n", script).CombinedOutput(); err != nil {
		t.Errorf("bash -n %s: %v\n%s", script, err, out)
	}
}
