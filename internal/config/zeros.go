package config

import (
	"reflect"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// checkZeros reports every number the file sets to zero that a default has
// since replaced: `count: 0` would otherwise silently send 10 echoes. A
// zero that stays zero means what the field says it means (`daily: 0`: no
// budget) and is not reported. It walks the file's nodes beside the decoded
// values, so every field of every probe type is covered without a list.
func checkZeros(problems *Problems, path string, n *yaml.Node, v reflect.Value) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	switch {
	case n.Kind == yaml.MappingNode && v.Kind() == reflect.Struct:
		fields := yamlFields(v.Type())
		var probe *Probe
		if v.CanAddr() {
			probe, _ = v.Addr().Interface().(*Probe)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i].Value, n.Content[i+1]
			if idx, ok := fields[k]; ok {
				checkZeros(problems, join(path, k), val, v.FieldByIndex(idx))
			} else if probe != nil && k == probe.Type && probe.Settings != nil {
				checkZeros(problems, join(path, k), val, reflect.ValueOf(probe.Settings))
			}
		}
	case n.Kind == yaml.MappingNode && v.Kind() == reflect.Map:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := reflect.New(v.Type().Key())
			if n.Content[i].Decode(key.Interface()) != nil {
				continue
			}
			if mv := v.MapIndex(key.Elem()); mv.IsValid() {
				checkZeros(problems, join(path, n.Content[i].Value), n.Content[i+1], mv)
			}
		}
	case n.Kind == yaml.SequenceNode && (v.Kind() == reflect.Slice || v.Kind() == reflect.Array):
		for i, item := range n.Content {
			if i < v.Len() {
				checkZeros(problems, path+"["+itoa(i)+"]", item, v.Index(i))
			}
		}
	case n.Kind == yaml.ScalarNode && isNumber(v.Kind()) && !v.IsZero():
		written := reflect.New(v.Type())
		if n.Decode(written.Interface()) == nil && written.Elem().IsZero() && !isNull(n) {
			problems.Add(path, "must not be 0; omit the key for the default (%v)", v.Interface())
		}
	}
}

func isNumber(k reflect.Kind) bool {
	return k >= reflect.Int && k <= reflect.Float64
}

// yamlFields maps the keys yaml decodes into typ's fields to the fields'
// indexes, as yamlKeys maps them to their types.
func yamlFields(typ reflect.Type) map[string][]int {
	fields := map[string][]int{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-":
		case strings.Contains(opts, "inline"):
			for k, idx := range yamlFields(f.Type) {
				fields[k] = append([]int{i}, idx...)
			}
		case name == "":
			fields[strings.ToLower(f.Name)] = []int{i}
		default:
			fields[name] = []int{i}
		}
	}
	return fields
}

// withoutRepeats drops the problems after the first n whose path is, or is
// inside, a path reported among the first n: a value already reported as
// malformed (and cleared) is not reported again as missing or out of range.
func withoutRepeats(p Problems, n int) Problems {
	reported := map[string]bool{}
	for _, pr := range p[:n] {
		path, _, _ := strings.Cut(pr, ": ")
		reported[path] = true
	}
	out := p[:n:n]
	for _, pr := range p[n:] {
		if !inReported(pr, reported) {
			out = append(out, pr)
		}
	}
	return out
}

func inReported(problem string, reported map[string]bool) bool {
	path, _, _ := strings.Cut(problem, ": ")
	for {
		if reported[path] {
			return true
		}
		i := strings.LastIndexAny(path, ".[")
		if i <= 0 {
			return false
		}
		path = path[:i]
	}
}
