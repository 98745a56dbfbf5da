package config

import (
	"errors"
	"reflect"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// checkKeys reports every key of n that typ has no field for, with its
// path and the nearest known key, and every value of the wrong kind
// (checkValue). yaml's own strict mode stops at the first one and names Go
// types; a user wants all of them, named as in the file.
func checkKeys(problems *Problems, path string, n *yaml.Node, typ reflect.Type) {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if n.Kind == yaml.AliasNode {
		checkKeys(problems, path, n.Alias, typ)
		return
	}
	if isNull(n) || checkValue(problems, path, n, typ) {
		return
	}
	switch {
	case typ.Kind() == reflect.Struct:
		keys := yamlKeys(typ)
		// A probe's other keys are its type's block, checked by decodeBlock.
		lenient := typ == reflect.TypeFor[Probe]()
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			ft, ok := keys[k]
			switch {
			case ok:
				checkKeys(problems, join(path, k), n.Content[i+1], ft)
			case !lenient:
				problems.Add(join(path, k), "unknown key%s", suggest(k, keyNames(keys)))
			}
		}
	case typ.Kind() == reflect.Slice || typ.Kind() == reflect.Array:
		for i, item := range n.Content {
			checkKeys(problems, path+"["+itoa(i)+"]", item, typ.Elem())
		}
	case typ.Kind() == reflect.Map:
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkKeys(problems, join(path, n.Content[i].Value), n.Content[i+1], typ.Elem())
		}
	}
}

// yamlKeys maps the keys yaml decodes into typ's fields to the fields'
// types, following yaml.v3's rules: the tag's name, else the lower-cased
// field name; inline structs contribute their keys.
func yamlKeys(typ reflect.Type) map[string]reflect.Type {
	keys := map[string]reflect.Type{}
	for k, idx := range yamlFields(typ) {
		keys[k] = typ.FieldByIndex(idx).Type
	}
	return keys
}

func keyNames(keys map[string]reflect.Type) []string {
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	return names
}

// suggest returns "; did you mean X?" for the candidate nearest to key,
// when it is near enough to be a typo.
func suggest(key string, candidates []string) string {
	best, bestDist := "", len(key)/3+2
	for _, c := range candidates {
		if d := editDistance(key, c); d < bestDist || (d == bestDist && c < best) {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return "; did you mean " + best + "?"
}

// editDistance is the Levenshtein distance of two short keys (written here:
// a dozen lines against a dependency for config messages).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// typeErrors is yaml's decoding error without its "yaml: unmarshal errors:"
// preamble, its lines joined.
func typeErrors(err error) string {
	if te, ok := errors.AsType[*yaml.TypeError](err); ok {
		return strings.Join(te.Errors, "; ")
	}
	return err.Error()
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func itoa(i int) string { return strconv.Itoa(i) }
