package probes

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/testutil"
)

// Every registered type comes with what users and maintainers need: a
// complete descriptor, an invalid-config fixture with its expected
// messages, a README configuration block and a metric-surface golden.
// Adding a type without them fails here.
func TestEveryTypeIsComplete(t *testing.T) {
	root := testutil.ModuleRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, typ := range Registry.Types() {
		t.Run(typ.Name, func(t *testing.T) {
			if seen[typ.Name] {
				t.Fatalf("registered twice")
			}
			seen[typ.Name] = true
			checkDescriptor(t, typ)
			if m, _ := filepath.Glob(filepath.Join(root, "internal/config/testdata", "invalid-"+typ.Name+"-*.yml")); len(m) == 0 {
				t.Errorf("no internal/config/testdata/invalid-%s-*.yml fixture (with its messages in TestInvalidConfigs)", typ.Name)
			}
			block := regexp.MustCompile(`(?m)^\s+type: ` + regexp.QuoteMeta(typ.Name) + `\b[\s\S]*?^\s+` + regexp.QuoteMeta(typ.Name) + `:`)
			if !block.Match(readme) {
				t.Errorf("README.md's configuration example has no probe of type %s with its %s: block", typ.Name, typ.Name)
			}
			if _, err := os.Stat(filepath.Join(root, "internal/agent/testdata", typ.Name+".golden")); err != nil {
				t.Errorf("no metric-surface golden: %v (add a probe of this type to surfaceConfig in internal/agent and run its TestMetricSurface with -update)", err)
			}
		})
	}
}

// checkDescriptor checks what the agent, the API and the page rely on.
func checkDescriptor(t *testing.T, typ *probe.Type) {
	if !regexp.MustCompile(`^[a-z][a-z0-9_]*$`).MatchString(typ.Name) {
		t.Errorf("name %q: lower-case letters, digits and _", typ.Name)
	}
	if typ.NewConfig == nil || typ.New == nil {
		t.Fatal("NewConfig and New are required")
	}
	if a, b := typ.NewConfig(), typ.NewConfig(); a == b {
		t.Error("NewConfig must return a new block each time")
	}
	if typ.Policy.StartJitter < 0 || typ.Policy.StartJitter > 0.5 {
		t.Errorf("StartJitter %g: between 0 and 0.5 (the scheduler caps jitter at half the interval)", typ.Policy.StartJitter)
	}
	names := map[string]bool{}
	roles := map[string]bool{}
	for _, v := range typ.Values {
		if v.Name == "" || v.Unit == "" || v.Label == "" {
			t.Errorf("value %+v: name, unit and label are required", v)
		}
		if names[v.Name] || (v.Role != "" && v.Role != probe.RolePhase && roles[v.Role]) {
			t.Errorf("value %s: name or role declared twice", v.Name)
		}
		names[v.Name], roles[v.Role] = true, true
		if v.Role == probe.RolePhase && v.Unit != "s" {
			t.Errorf("value %s: a phase is a duration, unit s", v.Name)
		}
	}
	// The latency view needs the headline latency; jitter, loss and the
	// min/max band are shown when a type has them (a TCP connect or an
	// HTTP request has no loss), "–" otherwise.
	need := map[string][]string{
		probe.ViewLatency:    {probe.RoleLatency},
		probe.ViewThroughput: {probe.RoleDownload, probe.RoleUpload, probe.RoleIdle, probe.RoleLoadedDown, probe.RoleLoadedUp},
	}
	want, ok := need[typ.View]
	if !ok {
		t.Fatalf("view %q: one of latency, throughput", typ.View)
	}
	for _, r := range want {
		if !roles[r] {
			t.Errorf("the %s view needs a value with role %s", typ.View, r)
		}
	}
	if missing := slices.DeleteFunc(slices.Clone(typ.Values), func(v probe.Value) bool { return strings.Contains(v.Name, "_") || v.Name == "bytes" }); len(missing) > 0 {
		t.Errorf("values %v: name the quantity with its unit as a suffix (rtt_avg_seconds)", missing)
	}
}
