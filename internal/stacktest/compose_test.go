package stacktest

import (
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/netpulse/netpulse/internal/testutil"
)

// compose is the part of compose.yaml the tests read.
type compose struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context string `yaml:"context"`
		Target  string `yaml:"target"`
	} `yaml:"build"`
	Command     []string       `yaml:"command"`
	Entrypoint  []string       `yaml:"entrypoint"`
	User        string         `yaml:"user"`
	CapAdd      []string       `yaml:"cap_add"`
	CapDrop     []string       `yaml:"cap_drop"`
	Privileged  bool           `yaml:"privileged"`
	SecurityOpt []string       `yaml:"security_opt"`
	Volumes     []string       `yaml:"volumes"`
	Ports       []string       `yaml:"ports"`
	DependsOn   map[string]any `yaml:"depends_on"`
	Healthcheck map[string]any `yaml:"healthcheck"`
	Restart     string         `yaml:"restart"`
}

func composeFile(t testing.TB) compose {
	t.Helper()
	var c compose
	loadYAML(t, "compose.yaml", &c)
	return c
}

// binds maps the container path of every bind mount to its source.
func (s composeService) binds(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, v := range s.Volumes {
		src, dst, _ := strings.Cut(v, ":")
		dst, _, _ = strings.Cut(dst, ":")
		if strings.HasPrefix(src, "./") || strings.HasPrefix(src, "/") {
			out[dst] = src
		}
	}
	return out
}

// The services the issue promises.
var wantServices = []string{"netpulse", "otel-collector", "prometheus", "tempo", "grafana", "alertmanager"}

// pinned is an image reference with an explicit version tag (a digit in it,
// not "latest") or a digest.
var pinned = regexp.MustCompile(`^[a-z0-9./_-]+(:[A-Za-z0-9._-]*[0-9][A-Za-z0-9._-]*)?(@sha256:[0-9a-f]{64})?$`)

// configFlag finds configuration paths in command lines.
var configFlag = regexp.MustCompile(`^-{1,2}config(?:\.file)?=(.+)$`)

// TestCompose checks compose.yaml: the services, pinned images, volumes and
// config files that exist in the repository, health checks, dependencies and
// the agent's privileges.
func TestCompose(t *testing.T) {
	c := composeFile(t)
	stages := dockerStages(t)
	for _, name := range wantServices {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("compose.yaml: no %q service", name)
		}
	}
	hostPorts := map[string]string{}
	for name, s := range c.Services {
		where := "compose.yaml: services." + name
		switch {
		case s.Image == "":
			t.Errorf("%s: no image", where)
		case strings.HasSuffix(s.Image, ":latest") || !strings.Contains(s.Image, ":") && !strings.Contains(s.Image, "@"):
			t.Errorf("%s: image %q is not pinned to a version", where, s.Image)
		case s.Build == nil && !pinned.MatchString(s.Image):
			t.Errorf("%s: image %q: want name:version (with a digit) or a digest", where, s.Image)
		}
		if s.Build != nil {
			if _, err := os.Stat(repoPath(t, s.Build.Context)); err != nil {
				t.Errorf("%s: build context %s: %v", where, s.Build.Context, err)
			}
			if !slices.Contains(stages, s.Build.Target) {
				t.Errorf("%s: build target %q is not a stage of the Dockerfile (%v)", where, s.Build.Target, stages)
			}
		}
		binds := s.binds(t)
		for dst, src := range binds {
			if strings.HasPrefix(src, "/") {
				t.Errorf("%s: bind mount %s from an absolute host path %s: use a path in the repository", where, dst, src)
				continue
			}
			if _, err := os.Stat(repoPath(t, src)); err != nil {
				t.Errorf("%s: bind mount source %s: %v", where, src, err)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, "./") || strings.HasPrefix(src, "/") {
				continue
			}
			if _, ok := c.Volumes[src]; !ok {
				t.Errorf("%s: volume %q is not declared under volumes:", where, src)
			}
		}
		// Every config file named on the command line is mounted from
		// the repository (or baked into a built image).
		for _, arg := range slices.Concat(s.Entrypoint, s.Command) {
			m := configFlag.FindStringSubmatch(arg)
			if m == nil {
				continue
			}
			if src := mountedFrom(binds, m[1]); src == "" {
				t.Errorf("%s: %s is not mounted from the repository", where, m[1])
			}
		}
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s: depends on unknown service %q", where, dep)
			}
		}
		if s.Restart != "no" && s.Healthcheck == nil {
			t.Errorf("%s: no healthcheck", where)
		}
		for _, p := range s.Ports {
			host := strings.Split(p, ":")[0]
			if other, dup := hostPorts[host]; dup {
				t.Errorf("%s: host port %s also published by %s", where, host, other)
			}
			hostPorts[host] = name
		}
	}

	// The agent: non-root, only CAP_NET_RAW.
	a := c.Services["netpulse"]
	if a.User == "" || a.User == "root" || strings.HasPrefix(a.User, "0:") || a.User == "0" {
		t.Errorf("compose.yaml: netpulse runs as %q: want a non-root user", a.User)
	}
	if !slices.Equal(a.CapDrop, []string{"ALL"}) || !slices.Equal(a.CapAdd, []string{"NET_RAW"}) {
		t.Errorf("compose.yaml: netpulse: cap_drop %v, cap_add %v: want [ALL] and [NET_RAW]", a.CapDrop, a.CapAdd)
	}
	if a.Privileged {
		t.Error("compose.yaml: netpulse is privileged")
	}
	for _, o := range a.SecurityOpt {
		if strings.HasPrefix(o, "no-new-privileges") {
			t.Error("compose.yaml: netpulse: no-new-privileges stops the binary's cap_net_raw file capability")
		}
	}

	// Prometheus's rule_files and Grafana's provisioning are mounted.
	promBinds := c.Services["prometheus"].binds(t)
	var prom struct {
		RuleFiles []string `yaml:"rule_files"`
	}
	loadYAML(t, "prometheus/prometheus.yml", &prom)
	for _, rf := range prom.RuleFiles {
		inContainer := path.Join("/etc/prometheus", rf)
		src := mountedFrom(promBinds, inContainer)
		if src == "" {
			t.Errorf("prometheus/prometheus.yml: rule_files %s (%s in the container) is not mounted", rf, inContainer)
			continue
		}
		if m, _ := filepath.Glob(repoPath(t, src)); len(m) == 0 {
			t.Errorf("prometheus/prometheus.yml: rule_files %s: mounted from %s, which matches no file", rf, src)
		}
	}
	if src := c.Services["grafana"].binds(t)["/etc/grafana/provisioning"]; src != "./grafana/provisioning" {
		t.Errorf("compose.yaml: grafana: /etc/grafana/provisioning mounted from %q, want ./grafana/provisioning", src)
	}
}

// mountedFrom maps a container path to the repository path it is mounted
// from, or "".
func mountedFrom(binds map[string]string, p string) string {
	for dst, src := range binds {
		if p == dst {
			return src
		}
		if rel, ok := strings.CutPrefix(p, dst+"/"); ok {
			return path.Join(src, rel)
		}
	}
	return ""
}

// TestComposeAddresses checks that the addresses the configs use between
// containers name compose services and the ports those services listen on.
func TestComposeAddresses(t *testing.T) {
	c := composeFile(t)
	check := func(where, hostport string, want map[string]string) {
		t.Helper()
		host, port, err := net.SplitHostPort(hostport)
		if err != nil {
			t.Errorf("%s: %q: %v", where, hostport, err)
			return
		}
		if host == "localhost" {
			return
		}
		if _, ok := c.Services[host]; !ok {
			t.Errorf("%s: %s is not a compose service", where, host)
		}
		if w, ok := want[host]; ok && w != port {
			t.Errorf("%s: %s listens on %s, not %s", where, host, w, port)
		}
	}
	ports := map[string]string{"netpulse": "9517", "otel-collector": "4317", "prometheus": "9090",
		"tempo": "3200", "alertmanager": "9093", "grafana": "3000"}

	var prom map[string]any
	loadYAML(t, "prometheus/prometheus.yml", &prom)
	var col map[string]any
	loadYAML(t, "otel-collector/config.yaml", &col)
	_, selfPort := collectorSelfMetricsAddr(t, col)
	for _, target := range scrapeTargets(prom) {
		// The collector serves pushed metrics on :8889, its own on selfPort.
		p := maps2(ports, "otel-collector", "8889")
		if strings.HasSuffix(target, ":"+selfPort) {
			p = maps2(ports, "otel-collector", selfPort)
		}
		check("prometheus/prometheus.yml: scrape target", target, p)
	}
	for _, ds := range datasources(t).Datasources {
		check(datasourcesRel+": "+ds.Name, strings.TrimPrefix(ds.URL, "http://"), ports)
	}
	var agent struct {
		Telemetry struct {
			OTLP struct {
				Endpoint string   `yaml:"endpoint"`
				Signals  []string `yaml:"signals"`
			} `yaml:"otlp"`
		} `yaml:"telemetry"`
	}
	loadYAML(t, "compose/netpulse.yml", &agent)
	check("compose/netpulse.yml: telemetry.otlp.endpoint", agent.Telemetry.OTLP.Endpoint, ports)
	check("otel-collector/config.yaml: exporters.otlp_grpc/tempo", dig(col, "exporters", "otlp_grpc/tempo", "endpoint").(string),
		maps2(ports, "tempo", "4317"))
}

func maps2(m map[string]string, k, v string) map[string]string {
	out := map[string]string{}
	for a, b := range m {
		out[a] = b
	}
	out[k] = v
	return out
}

// scrapeTargets lists every static target of a Prometheus config.
func scrapeTargets(prom map[string]any) []string {
	var out []string
	scs, _ := prom["scrape_configs"].([]any)
	for _, sc := range scs {
		m, _ := sc.(map[string]any)
		statics, _ := m["static_configs"].([]any)
		for _, st := range statics {
			sm, _ := st.(map[string]any)
			targets, _ := sm["targets"].([]any)
			for _, tg := range targets {
				out = append(out, tg.(string))
			}
		}
	}
	return out
}

// dig walks nested maps; nil when a key is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// TestNoDoubleIngestion checks the static half of "each series reaches
// Prometheus once": the compose agent is scraped directly, so it must push
// only traces over OTLP. (TestStack checks the running stack.)
func TestNoDoubleIngestion(t *testing.T) {
	var agent struct {
		Telemetry struct {
			Prometheus struct {
				Enabled *bool `yaml:"enabled"`
			} `yaml:"prometheus"`
			OTLP struct {
				Signals []string `yaml:"signals"`
			} `yaml:"otlp"`
		} `yaml:"telemetry"`
	}
	loadYAML(t, "compose/netpulse.yml", &agent)
	var prom map[string]any
	loadYAML(t, "prometheus/prometheus.yml", &prom)
	scraped := slices.Contains(scrapeTargets(prom), "netpulse:9517")
	if !scraped {
		t.Fatal("prometheus/prometheus.yml does not scrape netpulse:9517")
	}
	if agent.Telemetry.Prometheus.Enabled != nil && !*agent.Telemetry.Prometheus.Enabled {
		t.Error("compose/netpulse.yml disables /metrics, which Prometheus scrapes")
	}
	if !slices.Equal(agent.Telemetry.OTLP.Signals, []string{"traces"}) {
		t.Errorf("compose/netpulse.yml: telemetry.otlp.signals %v: the agent is scraped, so push only [traces] or every series is ingested twice",
			agent.Telemetry.OTLP.Signals)
	}
}

// TestComposeAgentConfig validates the compose agent's config with the agent
// itself.
func TestComposeAgentConfig(t *testing.T) {
	bin := testutil.BuildAgent(t)
	out, err := exec.Command(bin, "check-config", "--config.file", repoPath(t, "compose/netpulse.yml")).CombinedOutput()
	if err != nil {
		t.Errorf("netpulse check-config compose/netpulse.yml: %v\n%s", err, out)
	}
}

// dockerStages lists the named stages of the Dockerfile.
func dockerStages(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, m := range regexp.MustCompile(`(?im)^FROM\s+\S+\s+AS\s+(\S+)\s*$`).FindAllStringSubmatch(string(readRepo(t, "Dockerfile")), -1) {
		out = append(out, m[1])
	}
	return out
}

// TestDockerfile checks the agent image: built with at least the Go version
// go.mod requires, run as a non-root user holding only cap_net_raw, and the
// collector stage built from the same pinned sources CI tests.
func TestDockerfile(t *testing.T) {
	df := string(readRepo(t, "Dockerfile"))
	stages := dockerStages(t)
	if len(stages) == 0 || stages[len(stages)-1] != "netpulse" {
		t.Errorf("Dockerfile: the last stage (what `docker build .` makes) should be netpulse, stages: %v", stages)
	}
	if !slices.Contains(stages, "otelcol") {
		t.Errorf("Dockerfile: no otelcol stage: %v", stages)
	}
	final := df[strings.LastIndex(df, "\nFROM "):]
	users := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(final, -1)
	if len(users) == 0 {
		t.Error("Dockerfile: the netpulse stage sets no USER: it would run as root")
	} else if u := users[len(users)-1][1]; u == "root" || u == "0" || strings.HasPrefix(u, "0:") {
		t.Errorf("Dockerfile: the netpulse stage runs as %s", u)
	}
	if !strings.Contains(final, "setcap cap_net_raw+ep /usr/local/bin/netpulse") {
		t.Error("Dockerfile: the netpulse binary does not get cap_net_raw: a non-root user cannot open raw ICMP sockets")
	}

	goMod := string(readRepo(t, "go.mod"))
	want := regexp.MustCompile(`(?m)^go\s+(\S+)`).FindStringSubmatch(goMod)
	have := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)`).FindStringSubmatch(df)
	if want == nil || have == nil {
		t.Fatalf("Dockerfile: ARG GO_VERSION (%v) or go.mod's go directive (%v) not found", have, want)
	}
	if versionLess(have[1], want[1]) {
		t.Errorf("Dockerfile: GO_VERSION %s is older than go.mod's go %s", have[1], want[1])
	}

	// The collector image tag says which core version it is built from.
	var manifest struct {
		Dist struct {
			Version string `yaml:"version"`
		} `yaml:"dist"`
	}
	loadYAML(t, "otel-collector/builder/manifest.yaml", &manifest)
	img := composeFile(t).Services["otel-collector"].Image
	if _, tag, _ := strings.Cut(img, ":"); !strings.HasPrefix(manifest.Dist.Version, tag) {
		t.Errorf("compose.yaml: otel-collector image %s, but the builder manifest is version %s", img, manifest.Dist.Version)
	}
}

// versionLess compares dotted numeric versions.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// TestComposeAgentIndependentOfPipeline checks that the agent's container
// starts whatever state the pipeline is in: probing must never wait for the
// collector (a broken collector would otherwise mean no probing at all).
func TestComposeAgentIndependentOfPipeline(t *testing.T) {
	agent, ok := composeFile(t).Services["netpulse"]
	if !ok {
		t.Fatal("compose.yaml: no netpulse service")
	}
	for dep := range agent.DependsOn {
		t.Errorf("compose.yaml: services.netpulse depends on %s: the agent must start and probe without the pipeline", dep)
	}
}

// TestCollectorSelfMetricsScraped checks the static half of pipeline health:
// the collector serves its own metrics and Prometheus scrapes them there.
// (TestStack checks that the series arrive.)
func TestCollectorSelfMetricsScraped(t *testing.T) {
	var cfg map[string]any
	loadYAML(t, collectorRel, &cfg)
	if lvl := dig(cfg, "service", "telemetry", "metrics", "level"); lvl == "none" {
		t.Fatalf("%s: service.telemetry.metrics.level is none: the pipeline's health is invisible", collectorRel)
	}
	host, port := collectorSelfMetricsAddr(t, cfg)
	var prom map[string]any
	loadYAML(t, "prometheus/prometheus.yml", &prom)
	want := net.JoinHostPort("otel-collector", port)
	if !slices.Contains(scrapeTargets(prom), want) {
		t.Errorf("prometheus/prometheus.yml does not scrape the collector's own metrics at %s (%s listens on %s:%s)",
			want, collectorRel, host, port)
	}
}
