package stacktest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/netpulse/netpulse/internal/testutil"
)

const (
	fleetComposeRel    = "compose.fleet.yaml"
	fleetAgentRel      = "compose/fleet-agent.yml"
	gatewayRel         = "otel-collector/gateway.yaml"
	fleetPrometheusRel = "prometheus/prometheus.fleet.yml"
)

// fleetProject loads compose.fleet.yaml with compose-go, the loader of
// docker compose: schema, interpolation, merge keys, references.
func fleetProject(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{repoPath(t, fleetComposeRel)},
		cli.WithWorkingDirectory(repoPath(t, ".")), cli.WithOsEnv, cli.WithConsistency(true))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("%s does not load as a Compose project: %v", fleetComposeRel, err)
	}
	return project
}

// fleetAgent is one agent service of the fleet stack: its identity and site
// from OTEL_RESOURCE_ATTRIBUTES.
type fleetAgent struct {
	service, instance, site string
}

func fleetAgents(t *testing.T, project *types.Project) []fleetAgent {
	t.Helper()
	var agents []fleetAgent
	for _, name := range project.ServiceNames() {
		s := project.Services[name]
		if !strings.HasPrefix(name, "agent-") {
			continue
		}
		a := fleetAgent{service: name}
		if v := s.Environment["OTEL_RESOURCE_ATTRIBUTES"]; v != nil {
			for kv := range strings.SplitSeq(*v, ",") {
				k, val, _ := strings.Cut(kv, "=")
				switch k {
				case "service.instance.id":
					a.instance = val
				case "site":
					a.site = val
				}
			}
		}
		agents = append(agents, a)
	}
	slices.SortFunc(agents, func(a, b fleetAgent) int { return strings.Compare(a.service, b.service) })
	return agents
}

// TestFleetCompose checks compose.fleet.yaml as docker compose loads it: three
// agents with distinct sites and stable instances, unprivileged but for
// NET_RAW, not waiting for the pipeline; the gateway, Prometheus with the
// remote-write receiver and native histograms, Tempo and Grafana; pinned
// images; every mounted file in the repository, and each loaded by the tool
// that reads it (the agent's check-config, the collector's validate,
// promtool).
func TestFleetCompose(t *testing.T) {
	project := fleetProject(t)
	for _, want := range []string{"gateway", "prometheus", "tempo", "grafana"} {
		if _, ok := project.Services[want]; !ok {
			t.Errorf("%s: no %q service", fleetComposeRel, want)
		}
	}
	agents := fleetAgents(t, project)
	sites, instances := map[string]bool{}, map[string]bool{}
	for _, a := range agents {
		if a.site == "" || a.instance == "" || sites[a.site] || instances[a.instance] {
			t.Errorf("%s: %s: site %q, instance %q: want its own of each (OTEL_RESOURCE_ATTRIBUTES)", fleetComposeRel, a.service, a.site, a.instance)
		}
		sites[a.site], instances[a.instance] = true, true
		s := project.Services[a.service]
		if s.User == "" || s.User == "root" || s.User == "0" || !slices.Equal(s.CapAdd, []string{"NET_RAW"}) || !slices.Contains(s.CapDrop, "ALL") {
			t.Errorf("%s: %s runs as %q with cap_add %v: want non-root, only NET_RAW", fleetComposeRel, a.service, s.User, s.CapAdd)
		}
		if len(s.DependsOn) > 0 {
			t.Errorf("%s: %s depends on %v: probing must not wait for the pipeline", fleetComposeRel, a.service, s.DependsOn)
		}
	}
	var agentCfg map[string]any
	loadYAML(t, fleetAgentRel, &agentCfg)
	storage, _ := dig(agentCfg, "storage", "path").(string)
	volumes := map[string]bool{}
	for _, a := range agents {
		kept := false
		for _, v := range project.Services[a.service].Volumes {
			if v.Type == types.VolumeTypeVolume && v.Target == storage && !volumes[v.Source] {
				kept, volumes[v.Source] = true, true
			}
		}
		if !kept {
			t.Errorf("%s: %s keeps its history (%s, storage.path of %s) on no volume of its own", fleetComposeRel, a.service, storage, fleetAgentRel)
		}
	}
	if len(sites) < 3 {
		t.Errorf("%s: %d agents with distinct sites, want 3", fleetComposeRel, len(sites))
	}
	if cmd := strings.Join(project.Services["prometheus"].Command, " "); !strings.Contains(cmd, "--web.enable-remote-write-receiver") ||
		!strings.Contains(cmd, "native-histograms") {
		t.Errorf("%s: prometheus %s: the gateway writes to it (remote-write receiver) native histograms (lean profile)", fleetComposeRel, cmd)
	}
	mounted := map[string]bool{}
	for name, s := range project.Services {
		if s.Build == nil && (!pinned.MatchString(s.Image) || !strings.Contains(s.Image, ":")) {
			t.Errorf("%s: %s: image %q is not pinned", fleetComposeRel, name, s.Image)
		}
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			rel, err := filepath.Rel(repoPath(t, "."), v.Source)
			if err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s: %s mounts %s from outside the repository", fleetComposeRel, name, v.Source)
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s: %s: %v", fleetComposeRel, name, err)
			}
			mounted[filepath.ToSlash(rel)] = true
		}
	}
	for _, rel := range []string{fleetAgentRel, gatewayRel, fleetPrometheusRel} {
		if !mounted[rel] {
			t.Errorf("%s mounts no %s", fleetComposeRel, rel)
		}
	}

	bin := testutil.BuildAgent(t)
	if out, err := exec.Command(bin, "check-config", "--config.file", repoPath(t, fleetAgentRel)).CombinedOutput(); err != nil {
		t.Errorf("netpulse check-config %s: %v\n%s", fleetAgentRel, err, out)
	}
	if dig(agentCfg, "telemetry", "profile") != "lean" || !slices.Contains(strList(dig(agentCfg, "telemetry", "otlp", "signals")), "metrics") {
		t.Errorf("%s: want telemetry.profile lean and metrics pushed to the gateway", fleetAgentRel)
	}
	testutil.NeedPrometheus(t)
	run(t, "promtool", "check", "config", repoPath(t, fleetPrometheusRel))
	validateCollector(t, needCollector(t), repoPath(t, gatewayRel))
}

// TestFleetBenchParses checks that bench/fleet-gateway.sh, which measures the
// gateway under a fleet, is valid bash (it runs by hand: it loads the
// machine for minutes).
func TestFleetBenchParses(t *testing.T) {
	if out, err := exec.Command("bash", "-n", repoPath(t, "bench/fleet-gateway.sh")).CombinedOutput(); err != nil {
		t.Errorf("bash -n bench/fleet-gateway.sh: %v\n%s", err, out)
	}
}
