package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probes"
)

// FuzzParse feeds arbitrary bytes to the loader: whatever the input, Parse
// returns a config or an error, never panics, and a config it returns
// validates again (defaults leave nothing invalid behind). `go test` runs
// the seeds (every testdata file); `go test -fuzz FuzzParse` explores.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(config.DefaultYAML())
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse(data, probes.Registry)
		if err != nil {
			var ve *config.ValidationError
			if errors.As(err, &ve) && len(ve.Problems) == 0 {
				t.Fatal("validation error without problems")
			}
			return
		}
		if err := cfg.Validate(probes.Registry); err != nil {
			t.Fatalf("parsed config does not validate again: %v", err)
		}
	})
}
