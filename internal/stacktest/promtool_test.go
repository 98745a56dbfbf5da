package stacktest

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/netpulse/netpulse/internal/testutil"
)

// run runs a command in the repository root and fails the test with its
// output when it exits non-zero.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = testutil.ModuleRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func needPromtool(t *testing.T) {
	t.Helper()
	testutil.Need(t, testutil.LookPath("promtool") != "",
		"promtool on PATH: apt-get install -y --no-install-recommends prometheus")
}

// TestPromtoolCheckConfig checks prometheus/prometheus.yml and, through its
// rule_files, the rules.
func TestPromtoolCheckConfig(t *testing.T) {
	needPromtool(t)
	run(t, "promtool", "check", "config", "prometheus/prometheus.yml")
}

// TestPromtoolCheckRules checks every rule file (syntax, PromQL, templates).
func TestPromtoolCheckRules(t *testing.T) {
	needPromtool(t)
	files, _ := filepath.Glob(repoPath(t, "prometheus/rules/*.yml"))
	run(t, "promtool", append([]string{"check", "rules"}, files...)...)
}

// TestPromtoolTestRules runs the rule unit tests.
func TestPromtoolTestRules(t *testing.T) {
	needPromtool(t)
	files, _ := filepath.Glob(repoPath(t, "prometheus/tests/*_test.yml"))
	if len(files) == 0 {
		t.Fatal("no prometheus/tests/*_test.yml")
	}
	out := run(t, "promtool", append([]string{"test", "rules"}, files...)...)
	t.Log(out)
}

// ruleTests is the part of a promtool test file the coverage check reads.
type ruleTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestEveryAlertIsTested checks that the promtool tests cover every alert
// twice: a case where it fires and one where it stays quiet.
func TestEveryAlertIsTested(t *testing.T) {
	fires, quiet := map[string]int{}, map[string]int{}
	files, _ := filepath.Glob(repoPath(t, "prometheus/tests/*_test.yml"))
	for _, f := range files {
		var rt ruleTests
		loadYAML(t, "prometheus/tests/"+filepath.Base(f), &rt)
		for _, tc := range rt.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname]++
				} else {
					quiet[a.Alertname]++
				}
			}
		}
	}
	n := 0
	for rel, rf := range ruleFiles(t) {
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				n++
				if fires[r.Alert] == 0 {
					t.Errorf("%s: alert %s has no promtool test where it fires", rel, r.Alert)
				}
				if quiet[r.Alert] == 0 {
					t.Errorf("%s: alert %s has no promtool test where it stays quiet", rel, r.Alert)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no alerts found")
	}
}

// TestAlertRules checks what promtool does not: every alert has a severity
// Alertmanager routes on, a summary and a description, a for: duration, and
// every threshold series is used by some alert.
func TestAlertRules(t *testing.T) {
	severities := []string{"critical", "warning", "info"}
	thresholds := map[string]bool{}
	var alertExprs []string
	for rel, rf := range ruleFiles(t) {
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if strings.HasPrefix(r.Record, "netpulse:threshold:") {
					thresholds[r.Record] = true
				}
				if r.Alert == "" {
					continue
				}
				alertExprs = append(alertExprs, r.Expr)
				where := fmt.Sprintf("%s: alert %s", rel, r.Alert)
				if !strings.HasPrefix(r.Alert, "Netpulse") {
					t.Errorf("%s: name it Netpulse... (Alertmanager's inhibit rules and the dashboards match that prefix)", where)
				}
				if !slices.Contains(severities, r.Labels["severity"]) {
					t.Errorf("%s: severity %q, want one of %v", where, r.Labels["severity"], severities)
				}
				for _, a := range []string{"summary", "description"} {
					if strings.TrimSpace(r.Annotations[a]) == "" {
						t.Errorf("%s: no %s annotation", where, a)
					}
				}
				if r.For == "" {
					t.Errorf("%s: no for: duration, one bad evaluation would page", where)
				}
			}
		}
	}
	for th := range thresholds {
		used := slices.ContainsFunc(alertExprs, func(e string) bool { return strings.Contains(e, th) })
		if !used {
			t.Errorf("threshold %s is used by no alert", th)
		}
	}
}

// TestAlertmanagerConfig checks compose/alertmanager.yml with amtool.
func TestAlertmanagerConfig(t *testing.T) {
	testutil.Need(t, testutil.LookPath("amtool") != "",
		"amtool on PATH: apt-get install -y --no-install-recommends prometheus-alertmanager")
	run(t, "amtool", "check-config", "compose/alertmanager.yml")
}
