package stacktest

import (
	"context"
	"slices"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
)

// TestComposeSpec loads compose.yaml with compose-go, the loader docker
// compose itself uses: the file must validate against the Compose
// specification's schema, interpolate, and resolve every path and service
// reference (depends_on, volumes, networks), as `docker compose config`
// would check it on a machine with Docker.
func TestComposeSpec(t *testing.T) {
	root := repoPath(t, ".")
	opts, err := cli.NewProjectOptions([]string{repoPath(t, "compose.yaml")},
		cli.WithWorkingDirectory(root), cli.WithOsEnv, cli.WithConsistency(true))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose.yaml does not load as a Compose project: %v", err)
	}
	names := project.ServiceNames()
	for _, want := range wantServices {
		if !slices.Contains(names, want) {
			t.Errorf("service %q missing from the loaded project (%v)", want, names)
		}
	}
	agent, err := project.GetService("netpulse")
	if err != nil {
		t.Fatal(err)
	}
	if agent.User == "" || agent.User == "root" || agent.User == "0" || !slices.Equal(agent.CapAdd, []string{"NET_RAW"}) ||
		!slices.Contains(agent.CapDrop, "ALL") {
		t.Errorf("agent runs as %q with cap_add %v, cap_drop %v; want non-root, only NET_RAW", agent.User, agent.CapAdd,
			agent.CapDrop)
	}
}
