package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probes"
	"github.com/netpulse/netpulse/internal/testutil"
)

// seriesConfig is one healthy ping target (two, so that a per-probe series
// is told apart from a per-target one) in a telemetry profile.
const seriesConfig = `
global: {labels: {site: lab}}
telemetry: {profile: %s}
probes:
  - name: lan
    type: ping
    interval: 1m
    timeout: 2s
    targets:
      - {name: loopback, host: 127.0.0.1, labels: {role: self}}
      - {name: loopback2, host: 127.0.0.2}
    ping: {count: 3, packet_interval: 10ms}
storage: {path: %q}
`

// leanSeriesGoal is the most series a healthy ping target may cost in the
// lean profile (issue 13).
const leanSeriesGoal = 15

// TestSeriesPerTarget counts the series one healthy ping target costs a
// store with native histograms, per metric, in each telemetry profile, and
// pins them in testdata/series-per-target.txt (the README's sizing table quotes the
// totals). Run with -update after an intended change.
func TestSeriesPerTarget(t *testing.T) {
	testutil.NeedICMP(t)
	var golden strings.Builder
	golden.WriteString("# series of one healthy ping target (probe lan, target loopback) as a store with native histograms\n" +
		"# keeps them: a classic histogram costs a series per bucket (+Inf included) plus _sum and _count, a native one 1;\n" +
		"# per probe: shared by the probe's targets\n")
	totals := map[string]int{}
	for _, profile := range []string{config.ProfileDefault, config.ProfileLean} {
		cfg, err := config.Parse(fmt.Appendf(nil, seriesConfig, profile, t.TempDir()), probes.Registry)
		if err != nil {
			t.Fatal(err)
		}
		a := newTestAgent(t, cfg)
		for _, j := range jobsOf(a) {
			j.Run(t.Context())
		}
		families, err := a.telemetry.Gatherer.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, mf := range families {
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				scope := ""
				switch {
				case labels["target_name"] == "loopback":
					scope = "target"
				case labels["probe_name"] == "lan" && labels["target_name"] == "":
					scope = "probe"
				default:
					continue
				}
				n, kind := storedSeries(mf.GetType(), m)
				if scope == "target" {
					totals[profile] += n
				}
				lines = append(lines, fmt.Sprintf("%s %s %s %s %d", profile, scope, mf.GetName(), kind, n))
			}
		}
		slices.Sort(lines)
		golden.WriteString(strings.Join(lines, "\n") + "\n")
		fmt.Fprintf(&golden, "%s total per target %d\n", profile, totals[profile])
	}
	if totals[config.ProfileLean] > leanSeriesGoal {
		t.Errorf("lean profile: %d series per healthy ping target, want at most %d", totals[config.ProfileLean], leanSeriesGoal)
	}
	if totals[config.ProfileLean] >= totals[config.ProfileDefault] {
		t.Errorf("lean profile: %d series per target, default %d: lean saves nothing", totals[config.ProfileLean], totals[config.ProfileDefault])
	}
	// The README's sizing table quotes the totals.
	readme, err := os.ReadFile(filepath.Join(testutil.ModuleRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for profile, n := range totals {
		row := "\n| `" + profile + "` |"
		i := strings.Index(string(readme), row)
		if i < 0 {
			t.Errorf("README.md: no sizing table row for profile %s", profile)
			continue
		}
		line, _, _ := strings.Cut(string(readme[i+1:]), "\n")
		if !strings.Contains(line, fmt.Sprintf("**%d**", n)) {
			t.Errorf("README.md: sizing row %q does not say **%d** series per target", line, n)
		}
	}
	file := filepath.Join("testdata", "series-per-target.txt")
	if *update {
		if err := os.WriteFile(file, []byte(golden.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/agent -run TestSeriesPerTarget -update)", err)
	}
	if golden.String() != string(want) {
		t.Errorf("series per target changed; if intended, run with -update and update the README's sizing table.\n--- want\n%s--- got\n%s",
			want, golden.String())
	}
}

// storedSeries is how many series a store keeps for one exposed metric, and
// its kind: a classic histogram stores a series per bucket (+Inf included),
// _sum and _count; a native histogram (with no classic buckets) one.
func storedSeries(typ dto.MetricType, m *dto.Metric) (int, string) {
	if typ != dto.MetricType_HISTOGRAM {
		return 1, strings.ToLower(typ.String())
	}
	h := m.GetHistogram()
	classic := len(h.GetBucket())
	if h.Schema != nil && classic == 0 {
		return 1, "native_histogram"
	}
	return classic + 1 + 2, fmt.Sprintf("histogram_%d_buckets", classic)
}
