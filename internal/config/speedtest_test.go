package config

import (
	"testing"
	"time"
)

func TestSpeedtestDefaults(t *testing.T) {
	cfg, err := Parse([]byte("probes: [{name: speed, type: speedtest, targets: [{host: auto}]}]"))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Probes[0]
	s := p.Speedtest
	if p.Interval != time.Hour || p.Timeout != time.Minute {
		t.Errorf("interval %s, timeout %s; want 1h and 1m, not the ping defaults", p.Interval, p.Timeout)
	}
	if s.Duration != 10*time.Second || s.MaxBytes != 1e9 || s.Connections != 4 ||
		s.LatencyInterval != 100*time.Millisecond || !s.PacketLossEnabled() || s.Budget.Daily != 0 {
		t.Errorf("defaults not applied: %+v", *s)
	}
}

func TestSpeedtestValid(t *testing.T) {
	cfg, err := Parse([]byte(`
probes:
  - name: speed
    type: speedtest
    interval: 4h
    timeout: 90s
    targets:
      - {host: "http://[::1]:8080", name: lan}
      - {host: "4321", name: isp}
    speedtest:
      duration: 30s
      max_bytes: 250MiB
      connections: 8
      packet_loss: false
      budget: {daily: 2GB, monthly: 20GB}
`))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Probes[0].Speedtest
	if s.MaxBytes != 250<<20 || s.Budget.Daily != 2e9 || s.Budget.Monthly != 20e9 || s.PacketLossEnabled() {
		t.Errorf("decoded %+v", *s)
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"0": 0, "1500": 1500, "500MB": 500e6, "1.5 GB": 1.5e9, "10GiB": 10 << 30, "2kb": 2000,
		"3KiB": 3072, "7b": 7, "1TB": 1e12,
	} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lots", "5XB", "MB", "NaN", "1e30GB"} {
		if got, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", bad, got)
		}
	}
	for b, want := range map[ByteSize]string{2e9: "2GB", 1.5e6: "1.5MB", 999: "999B", 250 << 20: "262.144MB"} {
		if got := b.String(); got != want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(b), got, want)
		}
	}
}
