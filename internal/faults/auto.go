package faults

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"

	"github.com/netpulse/netpulse/internal/config"
)

// AutoProbeName names the ping probe that tiers: auto adds.
const AutoProbeName = "tiers-gateway"

// AutoTiers applies tiers: auto: it adds ping probes of the default
// gateways of the kernel's routing table (tier gateway) and of the ISP's
// first hops beyond them (tier isp: traced toward the targets of tier
// internet, up to the first public address), and a DNS probe of the name
// servers of /etc/resolv.conf (tier dns), so the verdict can tell the home
// router from the ISP, the internet and the resolvers. What cannot be
// found is logged and left out (a host without a default route, routers
// that do not answer); a probe the configuration already has by name is
// left as it is. Discovery runs when the agent starts and on reload, and
// WatchRoutes asks for a reload when the default route changes.
func AutoTiers(cfg *config.Config, types config.Types, logger *slog.Logger) error {
	if cfg.Tiers != "auto" {
		return nil
	}
	if err := addGateways(cfg, types, DefaultGateways, logger); err != nil {
		return err
	}
	trace := func(ctx context.Context, dst netip.Addr) ([]netip.Addr, error) { return traceHops(ctx, dst, logger) }
	if err := addISPHops(context.Background(), cfg, types, trace, logger); err != nil {
		return err
	}
	return addResolvers(cfg, types, resolvConf, logger)
}

func addGateways(cfg *config.Config, types config.Types, find func() ([]Gateway, error), logger *slog.Logger) error {
	if hasProbe(cfg, AutoProbeName) {
		return nil
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
	p, err := autoProbe(types, AutoProbeName, "ping")
	if err != nil {
		return err
	}
	for i, g := range gws {
		name := "gateway"
		if i > 0 {
			name += "-" + strconv.Itoa(i+1)
		}
		p.Targets = append(p.Targets, config.Target{Name: name, Host: g.Addr.String(), Tier: "gateway",
			Labels: map[string]string{"interface": g.Interface}})
	}
	if err := addProbe(cfg, types, p); err != nil {
		return err
	}
	logger.Info("tiers: auto: probing the default gateways", "gateways", fmt.Sprint(gws))
	return nil
}
