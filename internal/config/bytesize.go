package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// ByteSize is a number of bytes, written as an integer or with a unit:
// 500MB, 1.5GB (powers of 1000), 10GiB (powers of 1024).
type ByteSize int64

var byteUnits = []struct {
	suffix string
	factor float64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12}, {"b", 1},
}

// ParseByteSize parses "500MB", "1.5GB", "10GiB" or a plain number of bytes.
func ParseByteSize(s string) (ByteSize, error) {
	str := strings.ToLower(strings.TrimSpace(s))
	factor := 1.0
	for _, u := range byteUnits {
		if strings.HasSuffix(str, u.suffix) {
			str, factor = strings.TrimSpace(strings.TrimSuffix(str, u.suffix)), u.factor
			break
		}
	}
	v, err := strconv.ParseFloat(str, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v*factor) > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is not a byte size (a number with an optional unit: 500MB, 1.5GB, 10GiB)", s)
	}
	return ByteSize(math.Round(v * factor)), nil
}

// UnmarshalYAML accepts an integer or a string with a unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %q is not a byte size (a number with an optional unit: 500MB, 1.5GB, 10GiB)", n.Line, n.Value)
	}
	*b = v
	return nil
}

// String formats b with the largest decimal unit that keeps it >= 1 (2GB, 1.5MB).
func (b ByteSize) String() string {
	v := float64(b)
	for _, u := range []struct {
		suffix string
		factor float64
	}{{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}} {
		if math.Abs(v) >= u.factor {
			return strconv.FormatFloat(v/u.factor, 'f', -1, 64) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}
