package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netpulse/netpulse/internal/testutil"
)

// TestCheckConfig drives `netpulse check-config` as a user would: exit 0 on
// a valid file; on a bad one a non-zero exit listing every problem with the
// path of its field, in one pass.
func TestCheckConfig(t *testing.T) {
	t.Parallel()
	bin := testutil.BuildAgent(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	checkConfig := func(file string) (string, int) {
		out, err := exec.Command(bin, "check-config", "--config.file", file).CombinedOutput()
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("check-config: %v", err)
		}
		return string(out), 0
	}

	good := write("good.yml", `
global: {labels: {site: lab}}
probes:
  - name: lan
    type: ping
    interval: 10s
    targets: [{host: 127.0.0.1, name: v4}, {host: "::1"}]
`)
	if out, code := checkConfig(good); code != 0 || !strings.Contains(out, "OK (1 probes, 2 targets)") {
		t.Errorf("valid file: exit %d, output:\n%s", code, out)
	}

	bad := write("bad.yml", `
telemetry:
  otlp: {protocol: carrier-pigeon}
probes:
  - name: dup
    type: ping
    targets: [{host: 127.0.0.1}]
  - name: dup
    type: ping
    interval: 500ms
    targets: [{host: ""}]
    ping: {count: 5000}
`)
	out, code := checkConfig(bad)
	if code == 0 {
		t.Fatalf("invalid file: exit 0, output:\n%s", out)
	}
	for _, want := range []string{
		"bad.yml: invalid config:",
		`telemetry.otlp.protocol: must be grpc or http, not "carrier-pigeon"`,
		`probes[1].name: "dup" is already used by probes[0]`,
		"probes[1].interval: must be at least 1s, not 500ms",
		"probes[1].targets[0].host: is required",
		"probes[1].ping.count: must be between 1 and 1000, not 5000",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check-config output lacks %q:\n%s", want, out)
		}
	}
}
