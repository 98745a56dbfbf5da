// Command netpulse is the network quality agent: it runs the configured
// probes on their schedules and exports what they measure through
// OpenTelemetry (Prometheus /metrics, OTLP).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/netpulse/netpulse/internal/agent"
	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/logging"
	"github.com/netpulse/netpulse/internal/probes"
	"github.com/netpulse/netpulse/internal/server"
	"github.com/netpulse/netpulse/internal/version"
)

// DefaultListenAddress is where the agent serves /metrics and its pages.
const DefaultListenAddress = ":9517"

type cli struct {
	ConfigFile string           `name:"config.file" help:"Configuration file (YAML). Empty: the embedded default config." type:"path"`
	LogLevel   string           `name:"log.level" default:"info" enum:"debug,info,warn,error" help:"Log level: ${enum}."`
	LogFormat  string           `name:"log.format" default:"text" enum:"text,json" help:"Log format: ${enum}."`
	Version    kong.VersionFlag `help:"Print the version and exit."`

	Run             runCmd             `cmd:"" default:"withargs" help:"Run the agent (the default)."`
	CheckConfig     checkConfigCmd     `cmd:"" name:"check-config" help:"Validate a configuration file and exit."`
	Speedtest       speedtestCmd       `cmd:"" help:"Run one speed test with a live display and print the result."`
	SpeedtestServer speedtestServerCmd `cmd:"" name:"speedtest-server" help:"Serve speed tests to speedtest-go clients and netpulse probes."`
}

type runCmd struct {
	ListenAddress string `name:"web.listen-address" default:"${listen}" help:"Address for /metrics, /healthz, /readyz and the status page."`
	Lifecycle     bool   `name:"web.enable-lifecycle" help:"Serve POST /-/reload (reload the configuration, as SIGHUP does)."`
	WebConfigFile string `name:"web.config.file" type:"path" help:"Web configuration (TLS, basic auth) for every endpoint, in the Prometheus exporter-toolkit format."`
}

type checkConfigCmd struct{}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "netpulse:", err)
		os.Exit(1)
	}
}

// run parses args and executes the chosen command; main only maps its error
// to an exit status, so tests drive the real command line.
func run(args []string, stdout, stderr io.Writer) error {
	var c cli
	parser, err := kong.New(&c, kong.Name("netpulse"),
		kong.Description("netpulse measures the quality of your network and exports it through OpenTelemetry."),
		kong.Vars{"version": version.Get().String(), "listen": DefaultListenAddress},
		kong.Writers(stdout, stderr), kong.UsageOnError())
	if err != nil {
		return err
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		return err
	}
	switch kctx.Command() {
	case "check-config":
		return c.checkConfig(stdout)
	case "speedtest":
		return c.speedtest(stdout, stderr)
	case "speedtest-server":
		return c.speedtestServer(stdout, stderr)
	default:
		return c.runAgent(stderr)
	}
}

func (c *cli) loadConfig() (*config.Config, error) {
	if c.ConfigFile == "" {
		cfg, err := config.Parse(config.DefaultYAML(), probes.Registry)
		if err != nil {
			return nil, fmt.Errorf("embedded default config: %w", err)
		}
		return cfg, nil
	}
	return config.Load(c.ConfigFile, probes.Registry)
}

func (c *cli) checkConfig(stdout io.Writer) error {
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	targets := 0
	for _, p := range cfg.Probes {
		targets += len(p.Targets)
	}
	name := c.ConfigFile
	if name == "" {
		name = "embedded default config"
	}
	fmt.Fprintf(stdout, "%s: OK (%d probes, %d targets)\n", name, len(cfg.Probes), targets)
	return nil
}

// loadForRun loads the configuration and reads its token file at once, so
// that a configuration restored after a failed reload does not depend on
// the file still being there.
func (c *cli) loadForRun() (*config.Config, error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return nil, err
	}
	tok, err := cfg.API.ResolveToken()
	if err != nil {
		return nil, err
	}
	cfg.API.Token, cfg.API.TokenFile = tok, ""
	return cfg, nil
}

func (c *cli) runAgent(stderr io.Writer) error {
	cfg, err := c.loadForRun()
	if err != nil {
		return err
	}
	if err := server.ValidateWebConfig(c.Run.WebConfigFile); err != nil {
		return err
	}
	logOut := stderr
	if lf := cfg.Log; lf.File != "" {
		// Logs go to standard error and to the file, rotated by size.
		f, err := logging.RotatingFile(lf.File, lf.MaxSizeMB, lf.MaxBackups, lf.MaxAge)
		if err != nil {
			return err
		}
		defer f.Close()
		logOut = io.MultiWriter(stderr, f)
	}
	logger, err := logging.New(logOut, c.LogLevel, c.LogFormat)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// One socket for every configuration the agent runs: a reload never
	// unbinds it (another process could take the port in the gap).
	handoff, err := server.ListenHandoff(c.Run.ListenAddress)
	if err != nil {
		return err
	}
	defer handoff.Close()
	status := &agent.ReloadStatus{}
	if c.Run.Lifecycle {
		status.Request = func() {
			select {
			case hup <- syscall.SIGHUP:
			default: // a reload is pending already
			}
		}
	}
	start := func(ctx context.Context, cfg *config.Config) (*agent.Agent, error) {
		return agent.New(ctx, agent.Options{Config: cfg, Listener: handoff.Listener(), Logger: logger, Build: version.Get(),
			Reload: status, WebConfigFile: c.Run.WebConfigFile})
	}
	err = runWithReload(ctx, cfg, c.loadForRun, start, hup, status, logger)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
