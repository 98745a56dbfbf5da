package stacktest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// TestDockerBuildStampsRevision runs the Dockerfile's own build command
// (read with BuildKit's parser, run by sh as a RUN line is, with VERSION
// and REVISION set as build arguments are) and checks that the binary
// reports that revision, which netpulse_build_info carries. The image has
// no .git, so this argument is the revision's only way in; compose passes
// it from NETPULSE_REVISION, which `task up` takes from git.
func TestDockerBuildStampsRevision(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent as the Dockerfile does (-short)")
	}
	cmd := dockerBuildCommand(t)
	out := filepath.Join(t.TempDir(), "netpulse")
	if !strings.Contains(cmd, "/out/netpulse") {
		t.Fatalf("the build stage's go build does not write /out/netpulse: %s", cmd)
	}
	const version, revision = "v9.9.9-test", "0123456789abcdef0123456789abcdef01234567"
	build := exec.Command("sh", "-c", strings.ReplaceAll(cmd, "/out/netpulse", out))
	build.Dir = repoPath(t, ".")
	build.Env = append(os.Environ(), "VERSION="+version, "REVISION="+revision)
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, b)
	}
	got, err := exec.Command(out, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), version+" ("+revision+")") {
		t.Errorf("--version of the Docker build = %q, want version %s and revision %s", got, version, revision)
	}

	var c struct {
		Services map[string]struct {
			Build struct {
				Args map[string]string `yaml:"args"`
			} `yaml:"build"`
		} `yaml:"services"`
	}
	loadYAML(t, "compose.yaml", &c)
	if a := c.Services["netpulse"].Build.Args["REVISION"]; !strings.Contains(a, "${NETPULSE_REVISION") {
		t.Errorf("compose.yaml: the netpulse build passes REVISION %q, want ${NETPULSE_REVISION...}", a)
	}
	if !strings.Contains(string(readRepo(t, "Taskfile.yml")), `NETPULSE_REVISION="$(git rev-parse HEAD`) {
		t.Error("Taskfile.yml: task up does not set NETPULSE_REVISION from git")
	}
}

// dockerBuildCommand returns the shell command of the RUN line in the
// build stage that builds ./cmd/netpulse.
func dockerBuildCommand(t *testing.T) string {
	t.Helper()
	res, err := parser.Parse(bytes.NewReader(readRepo(t, "Dockerfile")))
	if err != nil {
		t.Fatal(err)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stages {
		for _, c := range s.Commands {
			if run, ok := c.(*instructions.RunCommand); ok && run.PrependShell {
				line := strings.Join(run.CmdLine, " ")
				if strings.Contains(line, "go build") && strings.Contains(line, "./cmd/netpulse") {
					return line
				}
			}
		}
	}
	t.Fatal("Dockerfile: no RUN line builds ./cmd/netpulse")
	return ""
}
