package config_test

import (
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probes"
)

// Thresholds: a probe's apply to its targets, a target's override them
// key by key, and loss reads as a percentage or a ratio.
func TestThresholds(t *testing.T) {
	cfg, err := config.Parse([]byte(`
probes:
  - name: wan
    type: ping
    thresholds: {latency: 100ms, jitter: 30ms, loss: 2%}
    targets:
      - {host: 127.0.0.1}
      - {host: 127.0.0.2, thresholds: {latency: 250ms, loss: 0}}
  - name: speed
    type: speedtest
    targets: [{host: "http://127.0.0.1:1", thresholds: {upload: 2.5MB/s}}]
    thresholds: {download: 100Mbit/s, upload: 10Mbit/s}
  - name: site
    type: http
    targets: [{host: "http://127.0.0.1:1/", thresholds: {loss: 0.5 %}}]
`), probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Probes[0]
	first, second := p.ThresholdsOf(p.Targets[0]), p.ThresholdsOf(p.Targets[1])
	if first.Latency != 100*time.Millisecond || first.Jitter != 30*time.Millisecond || first.Loss.Float() != 0.02 {
		t.Errorf("first target inherits the probe's thresholds, got %+v loss %g", first, first.Loss.Float())
	}
	if second.Latency != 250*time.Millisecond || second.Jitter != 30*time.Millisecond || second.Loss.Float() != 0 {
		t.Errorf("second target overrides latency and loss only, got %+v loss %g", second, second.Loss.Float())
	}
	speed := cfg.Probes[1]
	if th := speed.ThresholdsOf(speed.Targets[0]); th.Download != 12.5e6 || th.Upload != 2.5e6 || th.Download.String() != "100Mbit/s" {
		t.Errorf("speed: download %v upload %v, want 100 Mbit/s (12.5e6 B/s) and the target's 2.5 MB/s", th.Download, th.Upload)
	}
	site := cfg.Probes[2]
	if th := site.ThresholdsOf(site.Targets[0]); th.Latency != 0 || th.Loss.Float() != 0.005 {
		t.Errorf("site: %+v loss %g, want no latency threshold and 0.5%% loss", th, th.Loss.Float())
	}
	if (config.Thresholds{}).Loss.Float() != -1 {
		t.Error("an unset loss threshold reads -1 (none)")
	}
}
