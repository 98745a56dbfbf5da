package stacktest

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"github.com/netpulse/netpulse/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// repoPath returns the absolute path of a file of the repository.
func repoPath(t testing.TB, rel string) string {
	t.Helper()
	return filepath.Join(testutil.ModuleRoot(t), filepath.FromSlash(rel))
}

func readRepo(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, rel))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return b
}

// loadYAML decodes a repository YAML file into v.
func loadYAML(t testing.TB, rel string, v any) {
	t.Helper()
	if err := yaml.Unmarshal(readRepo(t, rel), v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

// writeYAML encodes v into a new file in dir and returns its path.
func writeYAML(t testing.TB, dir, name string, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatalf("encode %s: %v", name, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// goldenMetric is one family of internal/agent/testdata/*.golden (one file
// per probe type and one for the agent's own series), the contract of the
// agent's metric surface.
type goldenMetric struct {
	typ    string
	labels map[string]bool // union of the label names of its series
}

// golden reads the metric surface: family name → type and label names.
func golden(t testing.TB) map[string]*goldenMetric {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(testutil.ModuleRoot(t), "internal/agent/testdata/*.golden"))
	out := map[string]*goldenMetric{}
	for _, file := range files {
		rel, _ := filepath.Rel(testutil.ModuleRoot(t), file)
		readGolden(t, rel, out)
	}
	if len(out) == 0 {
		t.Fatal("internal/agent/testdata/*.golden: none, or empty")
	}
	return out
}

func readGolden(t testing.TB, rel string, out map[string]*goldenMetric) {
	sc := bufio.NewScanner(strings.NewReader(string(readRepo(t, rel))))
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 || !strings.HasPrefix(f[2], "{") || !strings.HasSuffix(f[2], "}") {
			t.Fatalf("%s:%d: want `name type {labels}`, got %q", rel, n, sc.Text())
		}
		m := out[f[0]]
		if m == nil {
			m = &goldenMetric{typ: f[1], labels: map[string]bool{}}
			out[f[0]] = m
		}
		for _, l := range strings.Split(strings.Trim(f[2], "{}"), ",") {
			if l != "" {
				m.labels[l] = true
			}
		}
	}
}
