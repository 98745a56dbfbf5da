package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe/dns"
	"github.com/netpulse/netpulse/internal/probe/ping"
	"github.com/netpulse/netpulse/internal/probe/speedtest"
	"github.com/netpulse/netpulse/internal/probes"
)

// Each invalid testdata file exercises one class of error; every expected
// line must appear in the error, which lists all problems at once.
func TestInvalidConfigs(t *testing.T) {
	cases := map[string][]string{
		"invalid-unknown-key.yml": {
			"globl: unknown key; did you mean global?",
			"probes[0].targets[0].nmae: unknown key; did you mean name?",
			"probes[0].pingg: unknown key; did you mean ping?",
			"probes[0].speedtest: is only allowed when type is speedtest",
			"probes[1].ping.sise: unknown key; did you mean size?",
		},
		"invalid-network.yml": {
			"probes[0].ping.source: ::1 is not an IPv4 address (ip_version is 4)",
			"probes[1].ping.source: 198.18.255.254 is not an address of this host",
			`probes[2].speedtest.ip_version: must be auto, 4 or 6, not "7"`,
			`probes[2].speedtest.source: must be an address or an interface of this host, not "no-such-interface0"`,
		},
		"invalid-ping-count.yml": {"probes[2].ping.count: must be between 1 and 1000, not 5000"},
		"invalid-interval.yml":   {"probes[0].interval: must be at least 1s, not -5s"},
		"invalid-duration.yml": {
			"global.labels.site: must be a string, not a list",
			`probes[0].interval: must be a duration such as 250ms, 30s, 1h30m, 30d or 1w, not "often"`,
			`probes[0].timeout: must be a duration such as 250ms, 30s, 1h30m, 30d or 1w, not "3 days"`,
			`probes[0].targets[1]: must be a mapping of keys to values, not "example.net"`,
			"probes[1].targets: must be a list, not a mapping",
			`probes[0].ping.count: must be an integer, not "ten"`,
			`probes[0].ping.packet_interval: must be a duration such as 250ms, 30s, 1h30m, 30d or 1w, not "1w2x"`,
			"probes[0].ping.privileged: must be a string, not a mapping",
			"storage.retention: must be at least 1h, not 10m0s",
		},
		"invalid-kinds.yml": {
			`probes[0]: must be a mapping of keys to values, not "justastring"`,
			`probes[2].targets: must be a list, not "a:1"`,
			`telemetry: must be a mapping of keys to values, not "5"`,
			"global.labels: must be a mapping of keys to values, not a list",
			"probes[1].http.proxy_url: must be a single value, not a mapping",
			`probes[1].http.tls_config: must be a mapping of keys to values, not "x"`,
			"probes[1].http.headers: must be a mapping of keys to values, not a list",
			`probes[1].http.max_redirects: must be an integer, not "many"`,
			"probes[2].tcp.query_response: must be a list, not a mapping",
		},
		"invalid-zero.yml": {
			"probes[0].interval: must not be 0; omit the key for the default (30s)",
			"probes[0].ping.count: must not be 0; omit the key for the default (10)",
			"probes[0].ping.size: must not be 0; omit the key for the default (56)",
			"probes[1].speedtest.max_bytes: must not be 0; omit the key for the default (1GB)",
			"probes[1].speedtest.connections: must not be 0; omit the key for the default (4)",
			"log.max_backups: must not be 0; omit the key for the default (5)",
		},
		"invalid-timeout.yml": {"probes[0].timeout: must not exceed the interval (10s), not 20s"},
		"invalid-burst.yml":   {"probes[0].ping.packet_interval: 20 packets 100ms apart take 1.9s, which does not fit in the probe's timeout (1s) less the 150ms its last replies get"},
		"invalid-type.yml":    {`probes[0].type: must be one of ping, speedtest, tcp, http, dns, path, not "traceroute"`},
		"invalid-speedtest-fields.yml": {
			`probes[0].targets[0].host: must be auto, a speedtest.net server id, the http(s):// URL of a speed test server or servers, not "ftp://speed.example"`,
			"probes[0].targets[4].host: servers needs a list of servers in probes[0].speedtest.servers",
			`probes[0].speedtest.server_choice: must be rotate or lowest_latency, not "fastest"`,
			"probes[0].speedtest.duration: must be between 1s and 1m, not 2m0s",
			"probes[0].speedtest.max_bytes: must be at least 1MB, not 1kB",
			"probes[0].speedtest.connections: must be between 1 and 32, not 64",
			"probes[0].speedtest.latency_interval: must be between 10ms and 5s, not 1ms",
			"probes[0].speedtest.budget.daily: must not be negative, not -1B",
			`probes[0].speedtest.tcp_congestion: must be the name of a TCP congestion control algorithm (cubic, bbr, reno, ...) or empty, not "cubic; rm"`,
		},
		"invalid-schedule.yml": {
			`probes[0].schedule.first_run: must be soon or interval, not "now"`,
			`probes[0].schedule.windows[1]: "10:00-10:00" never opens: it starts and ends at the same time (a whole day is 00:00-24:00)`,
			`probes[0].schedule.windows[2]: "mon-fry 18:00-08:00": unknown day in "mon-fry" (days are sun, mon, tue, wed, thu, fri, sat)`,
			`probes[0].schedule.windows[3]: "25:00-26:00": times run from 00:00 to 24:00 (24:00 only as the end)`,
			`probes[0].schedule.windows[4]: "1-6" is not a window: want [days ]HH:MM-HH:MM, e.g. "01:00-06:00" or "mon-fri 18:00-08:00"`,
		},
		"invalid-speedtest-timeout.yml": {
			"probes[0].interval: must be at least 1m for a speedtest probe (a run fills the link), not 30s",
			"probes[0].speedtest.duration: two transfers of 10s plus 10s for server selection and latency do not fit in the probe's timeout (25s)",
			"probes[0].speedtest.budget.daily: 150MB is less than one run may use (2 × max_bytes = 200MB)",
			"probes[1].speedtest: is only allowed when type is speedtest",
		},
		"invalid-tcp-fields.yml": {
			`probes[0].targets[0].host: must be host:port (example.com:443, [2001:db8::1]:22), not "mail.example"`,
			`probes[0].targets[1].host: port must be between 1 and 65535, not "99999"`,
			"probes[0].tcp.tls_config: unable to read CA cert: unable to read file /nonexistent/ca.pem: open /nonexistent/ca.pem: no such file or directory",
			"probes[0].tcp.query_response[0].expect: is not a valid regular expression: error parsing regexp: missing closing ): `^220 (`",
			"probes[0].tcp.query_response[1]: needs expect, send or both",
			"probes[1].tcp.tls_config: is set but tls is false: set tls: true to handshake",
		},
		"invalid-http-fields.yml": {
			`probes[0].targets[0].host: must be an http:// or https:// URL, not "ftp://files.example/"`,
			"probes[0].http.body: a GET request has no body: set method (POST, PUT) or remove body",
			`probes[0].http.headers: "Bad Header" is not a valid header name`,
			`probes[0].http.valid_status_codes[0]: must be a status code or a range of them between 100 and 599 (200, 200-299), not "200-2999"`,
			`probes[0].http.valid_status_codes[1]: must be a status code or a range of them between 100 and 599 (200, 200-299), not "ok"`,
			"probes[0].http.fail_if_body_matches_regexp[0]: is not a valid regular expression: error parsing regexp: missing closing ): `(unclosed`",
			"probes[0].http.fail_if_body_not_matches_regexp[0]: is not a valid regular expression: error parsing regexp: missing argument to repetition operator: `*`",
			"probes[0].http.max_redirects: must be between 0 (do not follow) and 100, not -1",
			`probes[0].http.http_version: must be auto, "1.1" or "2", not "3"`,
			`probes[0].http.proxy_url: must be an http://, https:// or socks5:// URL, not "ftp://proxy.example:21"`,
			"probes[0].http.tls_config: unable to read CA cert: unable to read file /nonexistent/ca.pem: open /nonexistent/ca.pem: no such file or directory",
		},
		"invalid-dns-fields.yml": {
			`probes[0].dns.query_name: "bad..name" is not a domain name`,
			`probes[0].dns.query_type: must be one of A, AAAA, CNAME, MX, TXT, NS, SOA, SRV, PTR, not "ANY"`,
			`probes[0].dns.transport: must be udp, tcp or tls, not "quic"`,
			`probes[0].dns.valid_rcodes[1]: "NOPE" is not a DNS response code`,
			"probes[0].dns.answers.max: must be at least min (2), not 1",
			"probes[0].dns.answers.must_match[0]: invalid regular expression: error parsing regexp: missing closing ): `(unclosed`",
			"probes[0].dns.answers.must_not_match[1]: invalid regular expression: error parsing regexp: invalid character class range: `z-a`",
			`probes[0].targets[0].host: must be system or a DNS server host[:port], not "127.0.0.1:99999" (bad port)`,
			"probes[1].dns.query_name: is required",
			"probes[1].dns.tls_config: unable to read CA cert: unable to read file /nonexistent/netpulse-ca.pem",
			"probes[2].dns.tls_config: is only used with transport tls, not udp",
		},
		"invalid-bytesize.yml": {`probes[0].speedtest.max_bytes: "lots" is not a byte size`},
		"invalid-names.yml": {
			`probes[0].name: "my probe" may only contain letters, digits, '_', '.' and '-'`,
			`probes[1].targets[1].name: "x" is already used by targets[0]`,
			"probes[1].targets[2].host: is required",
			`probes[2].name: "wan" is already used by probes[1]`,
		},
		"invalid-labels.yml": {
			`global.labels: "1site" is not a valid label name`,
			`global.instance: must not contain spaces or control characters, got "edge 1"`,
			`probes[0].targets[0].labels: "__meta" is not a valid label name`,
			`probes[0].targets[0].labels: "probe_name" is reserved for netpulse's own labels`,
		},
		"invalid-tier.yml": {
			`tiers: must be auto or empty, not "manual"`,
			`probes[0].targets[0].tier: must be one of lan, gateway, isp, dns, internet, not "wan"`,
			`probes[0].targets[1].labels: "tier" is reserved for netpulse's own labels`,
		},
		"invalid-thresholds.yml": {
			"probes[0].thresholds.lattency: unknown key; did you mean latency?",
			"probes[0].thresholds.latency: must not be negative, not -5ms",
			"probes[0].thresholds.loss: must be between 0% and 100%, not 150%",
			"probes[0].targets[0].thresholds.jitter: must not be negative, not -1ms",
			"probes[0].targets[0].thresholds.loss: must be between 0% and 100%, not -1%",
			"probes[1].thresholds.download: must not be negative, not -1Mbit/s",
		},
		"invalid-ratio.yml": {`probes[0].thresholds.loss: "2" is ambiguous: write a percentage (2%) or a ratio between 0 and 1`},
		"invalid-path-fields.yml": {
			`probes[0].path.ip_version: must be auto, 4 or 6, not "5"`,
			"probes[0].path.max_hops: must be between 1 and 64, not 100",
			"probes[0].path.rounds: 10 rounds 1s apart and a hop_timeout of 2s take 11s, which does not fit in the probe's timeout (5s)",
			"probes[0].path.size: must be between 16 and 65000 bytes, not 8",
			`probes[0].path.privileged: must be auto, true or false, not "maybe"`,
			"probes[1].path.rounds: must be between 1 and 100, not 101",
			"probes[1].path.round_interval: must be at least 10ms, not 1ms",
			"probes[1].path.hop_timeout: must be at least 10ms, not 5ms",
		},
		"invalid-ping-trouble.yml": {
			"probes[0].ping.path_on_trouble.loss: must be between 0% and 100%, not 150%",
			"probes[0].ping.path_on_trouble.latency: must not be negative, not -1s",
			"probes[0].ping.path_on_trouble.min_gap: must be at least 10s, not 1s",
			"probes[0].ping.path_on_trouble.max_hops: must be between 1 and 64, not 99",
			"probes[0].ping.path_on_trouble.rounds: must be between 1 and 10, not 20",
			"probes[1].ping.path_on_trouble: set loss or latency (or both): without either no run triggers a snapshot",
		},
		"invalid-ping-fields.yml": {
			"probes[0].ping.size: must be between 24 and 65500 bytes, not 8",
			"probes[0].ping.ttl: must be between 1 and 255, not 300",
			`probes[0].ping.ip_version: must be auto, 4, 6 or both, not "5"`,
			`probes[0].ping.source: must be an address or an interface of this host, not "not-an-ip"`,
			`probes[0].ping.privileged: must be auto, true or false, not "maybe"`,
			`probes[0].ping.engine: must be auto, shared or pro-bing, not "fast"`,
		},
		"invalid-telemetry.yml": {
			`telemetry.otlp.protocol: must be grpc or http, not "thrift"`,
			`telemetry.otlp.signals[1]: must be metrics or traces, not "logs"`,
			"telemetry.otlp.tls: cert_file and key_file must be set together",
			"telemetry.otlp.insecure: cannot be combined with tls files",
			"telemetry.traces.sampling_ratio: must be between 0 and 1, not 1.5",
			`telemetry.profile: must be default or lean, not "tiny"`,
			`global.resolver: must be an IP address and port such as 127.0.0.1:53, not "dns.example"`,
		},
		"invalid-no-probes.yml":  {"probes: at least one probe is required"},
		"invalid-no-targets.yml": {"probes[0].targets: at least one target is required"},
		"invalid-yaml.yml":       {"cannot parse config: yaml: line 2"},
		"invalid-api.yml": {
			"storage.retention: must be at least 1h, not 10m0s",
			"storage.speedtest_retention: must be at least 1h, not -1h0m0s",
			"storage.raw_retention: must be at least 1h, not 30m0s",
			"storage.minute_retention: must not exceed storage.retention (10m0s), not 9000h0m0s",
			"storage.max_size_mb: must be at least 1, not -5",
			"api.token: set token or token_file, not both",
			"api.token: must not contain white space",
			`api.trace_url: must be an http:// or https:// URL, not "localhost:3200/trace/"`,
			"api.trace_url: must contain {trace_id} where the trace id goes",
			"api.speedtest_min_interval: must not be negative, not -1s",
			"log.max_size_mb: must be at least 1, not -1",
			"log.max_backups: must not be negative, not -2",
			"log.max_age: must not be negative, not -24h0m0s",
			`log.file: must be a file, not a directory: "/var/log/netpulse/"`,
		},
	}
	files, _ := filepath.Glob("testdata/invalid-*.yml")
	if len(files) != len(cases) {
		t.Errorf("%d invalid-*.yml files but %d cases: every file needs its expected message", len(files), len(cases))
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := config.Load(filepath.Join("testdata", name), probes.Registry)
			if err == nil {
				t.Fatal("loaded without error")
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			var ve *config.ValidationError
			if errors.As(err, &ve) && len(ve.Problems) != len(want) {
				t.Errorf("%d problems reported, want %d:\n%v", len(ve.Problems), len(want), err)
			}
		})
	}
}

func TestValidConfig(t *testing.T) {
	cfg, err := config.Load("testdata/valid-full.yml", probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Probes[0]
	g := p.Settings.(*ping.Config)
	if p.Interval != 15*time.Second || p.Timeout != 5*time.Second || g.Count != 5 || g.IPVersion != "6" {
		t.Errorf("probe decoded wrongly: %+v %+v", p, g)
	}
	if p.Targets[1].Name != "example.net" {
		t.Errorf("target name defaults to host, got %q", p.Targets[1].Name)
	}
	o := cfg.Telemetry.OTLP
	if !o.HasSignal("traces") || o.HasSignal("metrics") || o.Protocol != "http" {
		t.Errorf("otlp = %+v", o)
	}
	if cfg.Telemetry.Traces.Ratio() != 0.5 {
		t.Errorf("sampling ratio %g", cfg.Telemetry.Traces.Ratio())
	}
	if cfg.Storage.DataDir() != "/var/lib/netpulse" || cfg.Storage.MaxSizeMB != 256 || cfg.API.Token != "abc" ||
		cfg.Storage.RawRetention != 24*time.Hour || cfg.Storage.MinuteRetention != 72*time.Hour ||
		cfg.API.SpeedtestMinInterval != 10*time.Minute || cfg.Log.MaxBackups != 2 {
		t.Errorf("storage/api/log decoded wrongly: %+v %+v %+v", cfg.Storage, cfg.API, cfg.Log)
	}
	const day = 24 * time.Hour
	if cfg.Storage.Retention != 7*day || cfg.Storage.SpeedtestRetention != 90*day || cfg.Log.MaxAge != 10*day+12*time.Hour {
		t.Errorf("Prometheus durations (1w, 90d, 1w3d12h) decoded as %s, %s, %s",
			cfg.Storage.Retention, cfg.Storage.SpeedtestRetention, cfg.Log.MaxAge)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"250ms": 250 * time.Millisecond, "1.5s": 1500 * time.Millisecond, "1h30m": 90 * time.Minute,
		"30d": 30 * 24 * time.Hour, "1w": 7 * 24 * time.Hour, "1y": 365 * 24 * time.Hour, "0": 0, "-1s": -time.Second,
	} {
		if got, err := config.ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "often", "1x", "3 days", "1d-2h"} {
		if _, err := config.ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) accepted", in)
		}
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := config.Parse([]byte("probes: [{name: p, type: ping, targets: [{host: 127.0.0.1}]}]"), probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Probes[0]
	g := p.Settings.(*ping.Config)
	if p.Interval != config.DefaultInterval || p.Timeout != config.DefaultTimeout || g.Count != ping.DefaultCount ||
		g.Privileged != "auto" || g.Size != ping.DefaultSize || g.IPVersion != "auto" {
		t.Errorf("defaults not applied: %+v %+v", p, *g)
	}
	if !cfg.Telemetry.Prometheus.IsEnabled() || !slices.Equal(cfg.Telemetry.OTLP.Signals, []string{"metrics", "traces"}) {
		t.Errorf("telemetry defaults: %+v", cfg.Telemetry)
	}
	if s := cfg.Storage; s.Retention != config.DefaultRetention || s.SpeedtestRetention != config.DefaultSpeedtestRetention ||
		s.RawRetention != config.DefaultRawRetention || s.MinuteRetention != config.DefaultMinuteRetention ||
		s.MaxSizeMB != config.DefaultStorageMaxSizeMB || s.DataDir() == "" {
		t.Errorf("storage defaults: %+v", s)
	}
	if cfg.API.SpeedtestMinInterval != config.DefaultSpeedtestMinInterval || cfg.Log.MaxSizeMB != config.DefaultLogMaxSizeMB {
		t.Errorf("api/log defaults: %+v %+v", cfg.API, cfg.Log)
	}
}

func TestEmbeddedDefaultIsValid(t *testing.T) {
	cfg, err := config.Parse(config.DefaultYAML(), probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Probes) == 0 || len(cfg.Probes[0].Targets) == 0 {
		t.Error("embedded default config has no targets")
	}
}

func TestDataDirAndToken(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/state")
	if d := (config.Storage{}).DataDir(); d != "/state/netpulse" {
		t.Errorf("default data dir %q, want /state/netpulse", d)
	}
	if d := (config.Storage{Path: "/x"}).DataDir(); d != "/x" {
		t.Errorf("configured data dir %q", d)
	}
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, err := (config.API{TokenFile: file}).ResolveToken(); err != nil || tok != "s3cret" {
		t.Errorf("token from file: %q, %v", tok, err)
	}
	if _, err := (config.API{TokenFile: file + ".missing"}).ResolveToken(); err == nil || !strings.Contains(err.Error(), "api.token_file") {
		t.Errorf("missing token file: %v", err)
	}
}

func TestSpeedtestDefaults(t *testing.T) {
	cfg, err := config.Parse([]byte("probes: [{name: speed, type: speedtest, targets: [{host: auto}]}]"), probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Probes[0]
	s := p.Settings.(*speedtest.Config)
	if p.Interval != time.Hour || p.Timeout != time.Minute {
		t.Errorf("interval %s, timeout %s; want 1h and 1m, not the ping defaults", p.Interval, p.Timeout)
	}
	if s.Duration != 10*time.Second || s.MaxBytes != 1e9 || s.Connections != 4 ||
		s.LatencyInterval != 100*time.Millisecond || !s.PacketLossEnabled() || s.Budget.Daily != 0 {
		t.Errorf("defaults not applied: %+v", *s)
	}
}

func TestSpeedtestValid(t *testing.T) {
	cfg, err := config.Parse([]byte(`
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
`), probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Probes[0].Settings.(*speedtest.Config)
	if s.MaxBytes != 250<<20 || s.Budget.Daily != 2e9 || s.Budget.Monthly != 20e9 || s.PacketLossEnabled() {
		t.Errorf("decoded %+v", *s)
	}
}

func TestDNSDefaults(t *testing.T) {
	cfg, err := config.Parse([]byte(`
probes:
  - name: resolver
    type: dns
    targets: [{host: system}, {host: "[::1]:5353", name: local}]
    dns: {query_name: example.com}
`), probes.Registry)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Probes[0].Settings.(*dns.Config)
	if d.QueryType != "A" || d.Transport != dns.TransportUDP || !*d.RecursionDesired ||
		!slices.Equal(d.ValidRcodes, []string{"NOERROR"}) || d.IPVersion != "auto" || d.Answers.Max != nil {
		t.Errorf("defaults not applied: %+v", *d)
	}
}
