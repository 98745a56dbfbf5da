package config_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	yaml "go.yaml.in/yaml/v3"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/config/schema"
	"github.com/netpulse/netpulse/internal/probes"
	"github.com/netpulse/netpulse/internal/testutil"
)

var updateSchema = flag.Bool("update", false, "rewrite docs/config.schema.json from the Go types")

// SchemaFile is the shipped JSON Schema, relative to the module root.
const schemaFile = "docs/config.schema.json"

// TestSchema regenerates the configuration's JSON Schema from the Go types
// (every probe type's block from the registry) and compares it with the
// shipped file; -update rewrites the file. Then it validates every example
// configuration of the repository against the shipped file.
func TestSchema(t *testing.T) {
	root := testutil.ModuleRoot(t)
	t.Chdir(root) // doc comments are read from ./internal, named by import path
	got, err := schema.Generate(probes.Registry, "internal")
	if err != nil {
		t.Fatal(err)
	}
	if *updateSchema {
		if err := os.WriteFile(schemaFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not what the Go types generate: run go test ./internal/config -run TestSchema -update", schemaFile)
	}

	sch := compileSchema(t, schemaFile)
	examples := exampleConfigs(t)
	if len(examples) < 4 {
		t.Fatalf("found %d example configurations; the embedded default, compose/netpulse.yml, README's and testdata's are expected", len(examples))
	}
	for name, doc := range examples {
		t.Run(name, func(t *testing.T) {
			// Each example is a valid configuration, and the schema agrees.
			if _, err := config.Parse(doc, probes.Registry); err != nil {
				t.Fatalf("not a valid configuration: %v", err)
			}
			if err := sch.Validate(yamlToJSON(t, doc)); err != nil {
				t.Errorf("does not validate against %s:\n%v", schemaFile, err)
			}
		})
	}
}

// TestSchemaRejects checks that the schema catches what an editor should
// underline: unknown keys, another type's block, malformed durations.
func TestSchemaRejects(t *testing.T) {
	root := testutil.ModuleRoot(t)
	sch := compileSchema(t, filepath.Join(root, schemaFile))
	for name, doc := range map[string]string{
		"unknown key":        "probes: [{name: a, type: ping, targets: [{host: x}], ping: {sise: 56}}]",
		"other type's block": "probes: [{name: a, type: ping, targets: [{host: x}], speedtest: {}}]",
		"unknown type":       "probes: [{name: a, type: traceroute, targets: [{host: x}]}]",
		"bad duration":       "probes: [{name: a, type: ping, interval: often, targets: [{host: x}]}]",
		"bad byte size":      "probes: [{name: a, type: speedtest, targets: [{host: auto}], speedtest: {max_bytes: lots}}]",
		"top-level typo":     "globl: {}\nprobes: []",
	} {
		if err := sch.Validate(yamlToJSON(t, []byte(doc))); err == nil {
			t.Errorf("%s: %s validates", name, doc)
		}
	}
	if err := sch.Validate(yamlToJSON(t, []byte(
		"probes: [{name: a, type: ping, interval: 1h30m, targets: [{host: x}]}]\nstorage: {retention: 30d, speedtest_retention: 1y}\n"+
			"log: {max_age: 1w}"))); err != nil {
		t.Errorf("Prometheus durations: %v", err)
	}
}

func compileSchema(t *testing.T, file string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	sch, err := c.Compile(file)
	if err != nil {
		t.Fatalf("compile %s: %v", file, err)
	}
	return sch
}

// exampleConfigs returns every configuration shipped or shown: the
// embedded default, every YAML file of the repository with a top-level
// probes: key (but testdata's invalid ones), and README's YAML blocks that
// have one. Run from the module root.
func exampleConfigs(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{"embedded default.yml": config.DefaultYAML()}
	topProbes := regexp.MustCompile(`(?m)^probes:`)
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && p != "." || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		ext := filepath.Ext(p)
		if d.IsDir() || (ext != ".yml" && ext != ".yaml") || strings.HasPrefix(d.Name(), "invalid-") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if topProbes.Match(b) {
			out[p] = b
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range regexp.MustCompile("(?ms)^```ya?ml\n(.*?)^```").FindAllSubmatch(readme, -1) {
		if topProbes.Match(m[1]) {
			out["README.md block "+strconv.Itoa(i)] = m[1]
		}
	}
	return out
}

func yamlToJSON(t *testing.T, doc []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	j, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return j
}
