// Package schema generates the JSON Schema of netpulse's configuration file
// from its Go types, so that editors complete and check a file as it is
// written (yaml-language-server, IntelliJ). The Go types stay the one
// source of truth: the shipped docs/config.schema.json is regenerated from
// them by `go test ./internal/config -run TestSchema -update`, and a test
// fails while it differs. It is an aid, not the validator: the agent's
// own checks (ranges, cross-field rules, "did you mean") still decide.
package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/invopop/jsonschema"
	orderedmap "github.com/pb33f/ordered-map/v2"

	"github.com/netpulse/netpulse/internal/config"
)

// Module is the import path whose doc comments become descriptions.
const Module = "github.com/netpulse/netpulse"

// DurationPattern accepts what config.ParseDuration accepts (Go and
// Prometheus durations), and a little more: a regular expression cannot
// say that units come in order.
const DurationPattern = `^(0|[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h|d|w|y))+)$`

// ByteSizePattern accepts what config.ParseByteSize accepts.
const ByteSizePattern = `^\s*[0-9]+(\.[0-9]+)?\s*([kKmMgGtT][iI]?[bB]|[bB])?\s*$`

// Generate returns the schema of a configuration whose probes have the
// given types. sourceDir, when not empty, is the module's directory of Go
// sources (as a path relative to the working directory, e.g. "internal"),
// whose doc comments become the descriptions editors show.
func Generate(types config.Types, sourceDir string) ([]byte, error) {
	defs := map[string]reflect.Type{}
	blocks := map[reflect.Type]string{}
	for _, name := range types.Names() {
		b, _ := types.NewBlock(name)
		blocks[reflect.TypeOf(b).Elem()] = name
	}
	r := &jsonschema.Reflector{
		Anonymous:                  true,
		FieldNameTag:               "yaml",
		KeyNamer:                   strings.ToLower, // yaml's name for a field without a tag
		RequiredFromJSONSchemaTags: true,            // every key may be left out
		Namer: func(t reflect.Type) string {
			// Every probe type's block is a Config: name a type by its
			// package (probe.ping.Config, config.Probe).
			if t.Name() == "" {
				return ""
			}
			pkg := strings.TrimPrefix(t.PkgPath(), Module+"/internal/")
			name := strings.ReplaceAll(pkg, "/", ".") + "." + t.Name()
			defs[name] = t
			return name
		},
		Mapper:           mapType,
		AdditionalFields: probeBlocks(types),
	}
	if sourceDir != "" {
		if err := r.AddGoComments(Module, sourceDir); err != nil {
			return nil, fmt.Errorf("cannot read doc comments: %w", err)
		}
	}
	s := r.ReflectFromType(reflect.TypeFor[config.Config]())
	s.Title = "netpulse configuration"
	s.Description = "The configuration file of the netpulse agent (--config.file). Generated from its Go types."
	for name, t := range defs {
		if def, ok := s.Definitions[name]; ok && t.Kind() == reflect.Struct {
			nullablePointers(def, t)
		}
	}
	probe, ok := s.Definitions["config.Probe"]
	if !ok {
		return nil, fmt.Errorf("no definition of config.Probe in the schema: %v", slices.Sorted(maps.Keys(s.Definitions)))
	}
	constrainBlocks(probe, types.Names())
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// mapType gives the types that decode themselves the form they take in a
// file; nil lets the reflector describe the type from its fields.
func mapType(t reflect.Type) *jsonschema.Schema {
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return &jsonschema.Schema{OneOf: []*jsonschema.Schema{
			{Type: "string", Pattern: DurationPattern, Description: config.DurationHelp},
			{Type: "integer", Const: 0},
		}}
	case t == reflect.TypeFor[config.ByteSize]():
		return &jsonschema.Schema{OneOf: []*jsonschema.Schema{
			{Type: "integer"},
			{Type: "string", Pattern: ByteSizePattern, Description: "bytes with an optional unit: 500MB, 1.5GB, 10GiB"},
		}}
	case config.OwnFormat(t):
		// Its own format (a TLS version name, a URL), checked when loaded.
		return &jsonschema.Schema{}
	}
	return nil
}

// probeBlocks adds to Probe a key per probe type, holding that type's
// block (ping:, speedtest:, ...), as decodeBlock reads them.
func probeBlocks(types config.Types) func(reflect.Type) []reflect.StructField {
	return func(t reflect.Type) []reflect.StructField {
		if t != reflect.TypeFor[config.Probe]() {
			return nil
		}
		var fields []reflect.StructField
		for _, name := range types.Names() {
			b, _ := types.NewBlock(name)
			fields = append(fields, reflect.StructField{
				Name: "Block_" + name,
				Type: reflect.TypeOf(b).Elem(),
				Tag:  reflect.StructTag(`yaml:"` + name + `"`),
			})
		}
		return fields
	}
}

// constrainBlocks lists the probe types and allows only the block of a
// probe's own type.
func constrainBlocks(probe *jsonschema.Schema, names []string) {
	if t, ok := probe.Properties.Get("type"); ok {
		t.Enum = nil
		for _, n := range names {
			t.Enum = append(t.Enum, n)
		}
	}
	for _, n := range names {
		if b, ok := probe.Properties.Get(n); ok && b.Description == "" {
			b.Description = "Settings of a probe of type " + n + "."
		}
		others := jsonschema.NewProperties()
		for _, o := range names {
			if o != n {
				others.Set(o, jsonschema.FalseSchema)
			}
		}
		probe.AllOf = append(probe.AllOf, &jsonschema.Schema{
			If: &jsonschema.Schema{
				Properties: propertiesOf("type", &jsonschema.Schema{Const: n}),
				Required:   []string{"type"},
			},
			Then: &jsonschema.Schema{Properties: others},
		})
	}
}

func propertiesOf(key string, s *jsonschema.Schema) *orderedmap.OrderedMap[string, *jsonschema.Schema] {
	p := jsonschema.NewProperties()
	p.Set(key, s)
	return p
}

// nullablePointers lets a pointer field be null: a key written without a
// value (`max:`) leaves such a setting unset, which is what it is for.
func nullablePointers(def *jsonschema.Schema, t reflect.Type) {
	if def.Properties == nil {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.Anonymous || strings.Contains(opts, "inline") {
			if f.Type.Kind() == reflect.Struct {
				nullablePointers(def, f.Type)
			}
			continue
		}
		if f.Type.Kind() != reflect.Pointer || !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if p, ok := def.Properties.Get(name); ok && !slices.ContainsFunc(p.OneOf, isNull) {
			def.Properties.Set(name, &jsonschema.Schema{
				Description: p.Description,
				OneOf:       []*jsonschema.Schema{stripDescription(p), {Type: "null"}},
			})
		}
	}
}

func isNull(s *jsonschema.Schema) bool { return s.Type == "null" }

func stripDescription(s *jsonschema.Schema) *jsonschema.Schema {
	c := *s
	c.Description = ""
	return &c
}
