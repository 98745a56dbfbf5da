package faults

import (
	"fmt"
	"log/slog"
	"strconv"

	"github.com/netpulse/netpulse/internal/config"
)

// AutoProbeName names the ping probe that tiers: auto adds.
const AutoProbeName = "tiers-gateway"

// AutoTiers applies tiers: auto: it adds a ping probe whose targets are the
// default gateways in the kernel's routing table, with tier gateway, so the
// verdict can tell the home router from what lies beyond it. A host
// without a default route gets no probe (logged); a configuration that
// already has a probe of that name is left as it is. Gateways are found
// when the agent starts (and on reload), not yet when the route changes.
func AutoTiers(cfg *config.Config, types config.Types, logger *slog.Logger) error {
	if cfg.Tiers != "auto" {
		return nil
	}
	return addGateways(cfg, types, DefaultGateways, logger)
}

func addGateways(cfg *config.Config, types config.Types, find func() ([]Gateway, error), logger *slog.Logger) error {
	for _, p := range cfg.Probes {
		if p.Name == AutoProbeName {
			return nil
		}
	}
	gws, err := find()
	if err != nil {
		logger.Warn("tiers: auto: no gateway discovery", "error", err)
		return nil
	}
	if len(gws) == 0 {
		logger.Warn("tiers: auto: no default route, so no gateway to probe")
		return nil
	}
	block, ok := types.NewBlock("ping")
	if !ok {
		return fmt.Errorf("tiers: auto: no ping probe type")
	}
	p := config.Probe{Name: AutoProbeName, Type: "ping", Interval: config.DefaultInterval, Timeout: config.DefaultTimeout,
		Settings: block}
	for i, g := range gws {
		name := "gateway"
		if i > 0 {
			name += "-" + strconv.Itoa(i+1)
		}
		p.Targets = append(p.Targets, config.Target{Name: name, Host: g.Addr.String(), Tier: "gateway",
			Labels: map[string]string{"interface": g.Interface}})
	}
	block.Defaults(&p)
	cfg.Probes = append(cfg.Probes, p)
	if err := cfg.Validate(types); err != nil {
		cfg.Probes = cfg.Probes[:len(cfg.Probes)-1]
		return fmt.Errorf("tiers: auto: %w", err)
	}
	logger.Info("tiers: auto: probing the default gateways", "gateways", fmt.Sprint(gws))
	return nil
}
