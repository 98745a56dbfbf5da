package stacktest

import (
	"bytes"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// TestDockerfileParses runs the Dockerfile through BuildKit's own parser
// and instruction checker, as `docker build` would before building: syntax,
// instruction names and flags, stage references. It has the stages compose
// builds (netpulse, otelcol) and no parser warnings.
func TestDockerfileParses(t *testing.T) {
	res, err := parser.Parse(bytes.NewReader(readRepo(t, "Dockerfile")))
	if err != nil {
		t.Fatalf("Dockerfile does not parse: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile line %d: %s", w.Location.Start.Line, w.Short)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("Dockerfile instructions: %v", err)
	}
	names := map[string]bool{}
	for _, s := range stages {
		names[s.Name] = true
	}
	for _, want := range []string{"netpulse", "otelcol"} {
		if !names[want] {
			t.Errorf("no stage %q (compose.yaml builds it); stages: %v", want, names)
		}
	}
}
