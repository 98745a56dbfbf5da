package stacktest

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/netpulse/netpulse/internal/testutil"
)

// taskVersion is the go-task release .ci/run installs and the Taskfile's
// header names.
const taskVersion = "3.54.0"

// taskPlan says, for every task of Taskfile.yml, whether TestTaskfile runs
// it and with which arguments. A task added to the Taskfile without an entry
// here fails the test, so each new task gets a decision.
var taskPlan = map[string]struct {
	args []string // nil: not run (only dry-run), for the reason below
	why  string
}{
	"up":    {why: "needs a Docker engine"},
	"down":  {why: "needs a Docker engine"},
	"logs":  {why: "needs a Docker engine (and follows logs forever)"},
	"test":  {why: "runs go test ./..., which includes this test: it would recurse"},
	"ci":    {why: "runs .ci/run, which runs this test: it would recurse"},
	"bench": {why: "runs every benchmark: minutes, and timing belongs to bench/, not to tests"},
	"fuzz":  {why: "minutes of fuzzing; CI runs each fuzz target briefly itself"},
	"soak":  {why: "an hour at 1,000 ping targets (bench/soak.sh), and timing belongs to bench/"},
	// Without arguments the agent would run until stopped; --version
	// checks that CLI_ARGS reach it.
	"run":   {args: []string{"run", "--", "--version"}},
	"lint":  {args: []string{"lint"}},
	"check": {args: []string{"check"}},
}

// needTask skips (or fails under NETPULSE_REQUIRE_REAL=1) without go-task.
func needTask(t *testing.T) string {
	t.Helper()
	path := testutil.LookPath("task")
	testutil.Need(t, path != "", "go-task on PATH: go install github.com/go-task/task/v3/cmd/task@v"+taskVersion)
	return path
}

// runTask runs go-task in the repository root and returns its combined
// output, failing the test when it exits non-zero.
func runTask(t *testing.T, task string, args ...string) string {
	t.Helper()
	cmd := exec.Command(task, args...)
	cmd.Dir = testutil.ModuleRoot(t)
	cmd.Env = append(os.Environ(), "NO_COLOR=1") // plain error excerpts in the test log
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("task %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestTaskfile loads Taskfile.yml with the pinned go-task: it must list
// every task with a description, expand every task's commands (--dry), and
// run the tasks that need no Docker engine and finish quickly.
func TestTaskfile(t *testing.T) {
	task := needTask(t)
	if v := strings.TrimSpace(runTask(t, task, "--version")); !strings.Contains(v, taskVersion) {
		t.Errorf("task --version = %q, want %s (the version .ci/run pins)", v, taskVersion)
	}
	if h := string(readRepo(t, "Taskfile.yml")); !strings.Contains(h, "task@v"+taskVersion) {
		t.Errorf("Taskfile.yml: the install line does not name v%s", taskVersion)
	}
	runTask(t, task, "--list")

	var listed struct {
		Tasks []struct {
			Name string `json:"name"`
			Desc string `json:"desc"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal([]byte(runTask(t, task, "--list-all", "--json")), &listed); err != nil {
		t.Fatalf("task --list-all --json: %v", err)
	}
	var names []string
	for _, tk := range listed.Tasks {
		names = append(names, tk.Name)
		if tk.Desc == "" {
			t.Errorf("task %s has no desc: `task --list` would not show it", tk.Name)
		}
		if _, ok := taskPlan[tk.Name]; !ok {
			t.Errorf("task %s is not in taskPlan: decide whether this test runs it", tk.Name)
		}
	}
	for name := range taskPlan {
		if !slices.Contains(names, name) {
			t.Errorf("taskPlan names %s, which Taskfile.yml does not define (it has %v)", name, names)
		}
	}
	if len(names) < len(taskPlan) {
		t.Fatalf("task --list-all listed %v", names)
	}

	for _, name := range slices.Sorted(maps.Keys(taskPlan)) {
		p := taskPlan[name]
		t.Run(name, func(t *testing.T) {
			// --dry prints the commands with templates expanded, without
			// running them: every task, Docker ones included.
			runTask(t, task, "--dry", name)
			if p.args == nil {
				t.Skipf("not run: %s", p.why)
			}
			for _, tool := range toolsOf(name) {
				testutil.Need(t, testutil.LookPath(tool) != "", tool+" on PATH (bash .ci/run installs it)")
			}
			out := runTask(t, task, p.args...)
			if name == "run" && !strings.Contains(out, "netpulse") {
				t.Errorf("task run -- --version printed %q, want the agent's version line", out)
			}
		})
	}
}

// toolsOf lists the programs a task needs besides Go.
func toolsOf(task string) []string {
	switch task {
	case "lint":
		return []string{"staticcheck"}
	case "check":
		return []string{"promtool", "amtool"}
	}
	return nil
}
