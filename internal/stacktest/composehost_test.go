package stacktest

import (
	"context"
	"net"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probes"
)

// loadCompose loads compose files merged, as `docker compose -f a -f b` does.
func loadCompose(t *testing.T, files ...string) *types.Project {
	t.Helper()
	var paths []string
	for _, f := range files {
		paths = append(paths, repoPath(t, f))
	}
	opts, err := cli.NewProjectOptions(paths, cli.WithWorkingDirectory(repoPath(t, ".")), cli.WithOsEnv,
		cli.WithConsistency(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("%v do not load as a Compose project: %v", files, err)
	}
	return p
}

// TestComposeHostNetworkVariant: compose.host.yaml puts the agent on the
// host's network, and every name the stack uses to reach it, or that it
// uses to reach the stack, still resolves.
func TestComposeHostNetworkVariant(t *testing.T) {
	p := loadCompose(t, "compose.yaml", "compose.host.yaml")
	agent, err := p.GetService("netpulse")
	if err != nil {
		t.Fatal(err)
	}
	if agent.NetworkMode != "host" || len(agent.Ports) != 0 {
		t.Errorf("agent: network_mode %q, ports %v; want host and no published ports", agent.NetworkMode, agent.Ports)
	}
	// The agent pushes to the collector by its compose name: mapped to the
	// host's loopback, where the collector publishes that port.
	cfg, err := config.Load(repoPath(t, "compose/netpulse.yml"), probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(cfg.Telemetry.OTLP.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(agent.ExtraHosts[host], "127.0.0.1") {
		t.Errorf("agent: extra_hosts %v do not map %s (its OTLP endpoint) to 127.0.0.1", agent.ExtraHosts, host)
	}
	col, err := p.GetService(host)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(col.Ports, func(pc types.ServicePortConfig) bool { return pc.Published == port }) {
		t.Errorf("%s does not publish %s on the host: the agent on the host network cannot reach it", host, port)
	}
	// Prometheus scrapes the agent by its service name, now the host.
	prom, err := p.GetService("prometheus")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(prom.ExtraHosts["netpulse"], "host-gateway") {
		t.Errorf("prometheus: extra_hosts %v do not map netpulse to host-gateway", prom.ExtraHosts)
	}
	// The rest of the stack is the same as without the override.
	base := loadCompose(t, "compose.yaml")
	if !slices.Equal(p.ServiceNames(), base.ServiceNames()) {
		t.Errorf("services %v, want those of compose.yaml %v", p.ServiceNames(), base.ServiceNames())
	}
}

// TestComposeAgentTokenAndTraceLinks: the shipped stack has run now and
// trace links on: the agent's config reads its token from a compose secret
// whose file ships and holds a usable token, and links runs to Grafana's
// Explore on the provisioned Tempo datasource.
func TestComposeAgentTokenAndTraceLinks(t *testing.T) {
	cfg, err := config.Load(repoPath(t, "compose/netpulse.yml"), probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	p := loadCompose(t, "compose.yaml")
	agent, err := p.GetService("netpulse")
	if err != nil {
		t.Fatal(err)
	}
	dir, name := path.Split(cfg.API.TokenFile)
	if dir != "/run/secrets/" {
		t.Fatalf("api.token_file %q: want a compose secret under /run/secrets/", cfg.API.TokenFile)
	}
	if !slices.ContainsFunc(agent.Secrets, func(s types.ServiceSecretConfig) bool {
		return s.Source == name && (s.Target == "" || s.Target == name || s.Target == cfg.API.TokenFile)
	}) {
		t.Errorf("the agent service does not mount secret %s (%v)", name, agent.Secrets)
	}
	secret, ok := p.Secrets[name]
	if !ok || secret.File == "" {
		t.Fatalf("compose.yaml: no secret %s with a file", name)
	}
	if tok, err := (config.API{TokenFile: secret.File}).ResolveToken(); err != nil || len(tok) < 16 {
		t.Errorf("secret %s (%s): token %q, %v; want at least 16 characters", name, secret.File, tok, err)
	}

	grafana := "http://localhost:" + publishedPort(t, p, "grafana") + "/"
	if !strings.HasPrefix(cfg.API.TraceURL, grafana+"explore?") || !strings.Contains(cfg.API.TraceURL, config.TraceIDPlaceholder) {
		t.Errorf("api.trace_url %q: want Grafana's Explore at %s with %s", cfg.API.TraceURL, grafana, config.TraceIDPlaceholder)
	}
	var tempoUID string
	for _, ds := range datasources(t).Datasources {
		if ds.Type == "tempo" {
			tempoUID = ds.UID
		}
	}
	if tempoUID == "" || !strings.Contains(cfg.API.TraceURL, "%22uid%22:%22"+tempoUID+"%22") {
		t.Errorf("api.trace_url does not name the provisioned Tempo datasource (uid %q): %s", tempoUID, cfg.API.TraceURL)
	}
}

func publishedPort(t *testing.T, p *types.Project, service string) string {
	t.Helper()
	s, err := p.GetService(service)
	if err != nil || len(s.Ports) == 0 {
		t.Fatalf("%s publishes no port: %v", service, err)
	}
	return s.Ports[0].Published
}
