package config

import (
	"encoding"
	"fmt"
	"reflect"
	"regexp"
	"time"

	"github.com/prometheus/common/model"
	yaml "go.yaml.in/yaml/v3"
)

// A value of the wrong kind is reported with its path, in the file's words
// (`probes[0].interval: must be a duration ..., not "often"`), not as yaml's
// `cannot unmarshal !!str into time.Duration`; the value is then cleared so
// that decoding goes on and the file's other problems are listed too.

var (
	durationType        = reflect.TypeFor[time.Duration]()
	unmarshalerType     = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	// obsoleteUnmarshaler is yaml.v2's interface, which yaml.v3 still calls
	// (prometheus/common's TLS settings implement it).
	obsoleteUnmarshalerType = reflect.TypeFor[interface {
		UnmarshalYAML(unmarshal func(any) error) error
	}]()
	linePrefix = regexp.MustCompile(`^(yaml: )?line \d+: `)
)

// DurationHelp says which durations a configuration accepts.
const DurationHelp = "a duration such as 250ms, 30s, 1h30m, 30d or 1w"

// ParseDuration accepts Go durations (1.5s, 250ms, 1h30m) and Prometheus
// durations, which add days, weeks and years (30d, 1w, 1y = 365d), so
// that a retention reads as it does in Prometheus.
func ParseDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not %s", s, DurationHelp)
	}
	return time.Duration(d), nil
}

// checkValue checks a node that is not walked key by key: a scalar for a
// leaf field, or a value in a type's own format. It reports false when
// typ is a struct, map or slice that checkKeys walks.
func checkValue(problems *Problems, path string, n *yaml.Node, typ reflect.Type) bool {
	own := OwnFormat(typ)
	kind := typ.Kind()
	switch {
	case !own && (kind == reflect.Struct || kind == reflect.Map) && n.Kind == yaml.MappingNode,
		!own && (kind == reflect.Slice || kind == reflect.Array) && n.Kind == yaml.SequenceNode:
		return false
	case typ == durationType:
		if n.Kind != yaml.ScalarNode {
			dropValue(problems, path, n, typ, "must be %s, not %s", DurationHelp, describe(n))
		} else if d, err := ParseDuration(n.Value); err != nil {
			dropValue(problems, path, n, typ, "must be %s, not %q", DurationHelp, n.Value)
		} else {
			// yaml decodes Go durations only: hand it this one in Go's form.
			n.Value, n.Tag, n.Style = d.String(), "!!str", 0
		}
	case own && n.Kind != yaml.ScalarNode:
		dropValue(problems, path, n, typ, "must be a single value, not %s", describe(n))
	case own:
		if err := n.Decode(reflect.New(typ).Interface()); err != nil {
			dropValue(problems, path, n, typ, "%s", linePrefix.ReplaceAllString(typeErrors(err), ""))
		}
	case kind == reflect.Struct || kind == reflect.Map:
		dropValue(problems, path, n, typ, "must be a mapping of keys to values, not %s", describe(n))
	case kind == reflect.Slice || kind == reflect.Array:
		dropValue(problems, path, n, typ, "must be a list, not %s", describe(n))
	default:
		want, ok := kindNames[kind]
		if !ok {
			return true // an interface: anything goes
		}
		if err := n.Decode(reflect.New(typ).Interface()); err != nil {
			dropValue(problems, path, n, typ, "must be %s, not %s", want, describe(n))
		}
	}
	return true
}

// OwnFormat reports whether a type reads a value of its own format (a byte
// size, a URL, a TLS version) rather than a mapping of its fields: it
// decodes itself and has no yaml-tagged fields.
func OwnFormat(typ reflect.Type) bool {
	if !decodesItself(typ) {
		return false
	}
	if typ.Kind() == reflect.Struct {
		for i := range typ.NumField() {
			if typ.Field(i).Tag.Get("yaml") != "" {
				return false
			}
		}
	}
	return true
}

var kindNames = map[reflect.Kind]string{
	reflect.Bool: "true or false", reflect.String: "a string",
	reflect.Int: "an integer", reflect.Int8: "an integer", reflect.Int16: "an integer",
	reflect.Int32: "an integer", reflect.Int64: "an integer",
	reflect.Uint: "a non-negative integer", reflect.Uint8: "a non-negative integer",
	reflect.Uint16: "a non-negative integer", reflect.Uint32: "a non-negative integer",
	reflect.Uint64:  "a non-negative integer",
	reflect.Float32: "a number", reflect.Float64: "a number",
}

func decodesItself(typ reflect.Type) bool {
	p := reflect.PointerTo(typ)
	return p.Implements(unmarshalerType) || p.Implements(obsoleteUnmarshalerType) ||
		p.Implements(textUnmarshalerType)
}

// dropValue reports a problem at path and replaces n with the zero value
// of typ, so that one bad value does not stop the decoding (nor, in a
// list, shift the items after it: yaml drops a null item).
func dropValue(problems *Problems, path string, n *yaml.Node, typ reflect.Type, format string, args ...any) {
	problems.Add(path, format, args...)
	line, col := n.Line, n.Column
	switch kind := typ.Kind(); {
	case OwnFormat(typ):
		*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"} // its decoder is not called for null
	case kind == reflect.Struct || kind == reflect.Map:
		*n = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	case kind == reflect.Slice || kind == reflect.Array:
		*n = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	default:
		var zero yaml.Node
		if err := zero.Encode(reflect.Zero(typ).Interface()); err == nil && zero.Kind == yaml.ScalarNode {
			*n = zero
		} else {
			*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
		}
	}
	n.Line, n.Column = line, col
}

// describe names a node as a user wrote it.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }
