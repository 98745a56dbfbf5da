package config

import (
	"testing"
)

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"0": 0, "1500": 1500, "500MB": 500e6, "1.5 GB": 1.5e9, "10GiB": 10 << 30, "2kb": 2000,
		"3KiB": 3072, "7b": 7, "1TB": 1e12,
	} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lots", "5XB", "MB", "NaN", "1e30GB"} {
		if got, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", bad, got)
		}
	}
	for b, want := range map[ByteSize]string{2e9: "2GB", 1.5e6: "1.5MB", 999: "999B", 250 << 20: "262.144MB"} {
		if got := b.String(); got != want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(b), got, want)
		}
	}
}
