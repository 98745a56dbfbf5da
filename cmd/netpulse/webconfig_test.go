package main

import (
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// A --web.config.file that cannot be read stops the agent before it
// listens, naming the flag and the file.
func TestWebConfigFileIsValidatedAtStart(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "web.yml")
	err := run([]string{"--web.listen-address", "127.0.0.1:0", "--web.config.file", missing}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--web.config.file "+missing) {
		t.Fatalf("run = %v; want an error naming --web.config.file %s", err, missing)
	}
}
