package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/netpulse/netpulse/internal/probe/speedtest"
	"github.com/netpulse/netpulse/internal/speedtestserver/servertest"
	"github.com/netpulse/netpulse/internal/testutil"
)

func TestSpeedtestCommand(t *testing.T) {
	url := servertest.Start(t).URL()
	t.Run("json", func(t *testing.T) {
		var out, errb bytes.Buffer
		if err := run([]string{"speedtest", "--server", url, "--json", "--duration", "1s", "--connections", "2"}, &out, &errb); err != nil {
			t.Fatalf("%v\n%s", err, errb.String())
		}
		var r speedtest.Result
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("output is not a JSON result: %v\n%s", err, out.String())
		}
		if r.Download == nil || r.Download.Rate <= 0 || r.Upload == nil || r.Upload.Rate <= 0 || r.Idle.Samples == 0 ||
			r.PacketLoss == nil || r.Server.URL == "" {
			t.Errorf("incomplete result:\n%s", out.String())
		}
		for _, key := range []string{`"bytes_per_second"`, `"idle_latency"`, `"loaded_latency"`, `"responsiveness_rpm"`} {
			if !strings.Contains(out.String(), key) {
				t.Errorf("JSON lacks %s", key)
			}
		}
	})
	t.Run("text", func(t *testing.T) {
		var out, errb bytes.Buffer
		if err := run([]string{"speedtest", "--server", url, "--duration", "1s", "--no-packet-loss"}, &out, &errb); err != nil {
			t.Fatalf("%v\n%s", err, errb.String())
		}
		for _, want := range []string{"Server:", "Latency:", "Download:", "Upload:", "Mbit/s", "RPM"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("summary lacks %q:\n%s", want, out.String())
			}
		}
		if strings.Contains(out.String(), "packet loss") {
			t.Errorf("--no-packet-loss still measured it:\n%s", out.String())
		}
	})
}

func TestSpeedtestCommandErrors(t *testing.T) {
	closed := "http://" + testutil.FreeAddr(t)
	for args, want := range map[string]string{
		"--server ftp://x":               `--server: must be auto, a speedtest.net server id or an http(s):// URL, not "ftp://x"`,
		"--max-bytes lots":               `--max-bytes: "lots" is not a byte size`,
		"--duration 2m":                  "--duration: must be between 1s and 1m, not 2m0s",
		"--connections 0":                "--connections: must be between 1 and 32, not 0",
		"--server " + closed + " --json": "speed test failed (refused): GET " + closed + "/speedtest/latency.txt",
	} {
		var out, errb bytes.Buffer
		err := run(append([]string{"speedtest"}, strings.Fields(args)...), &out, &errb)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("speedtest %s: %v, want %q", args, err, want)
		}
		if strings.HasSuffix(args, "--json") {
			var failure struct {
				Error     string `json:"error"`
				ErrorType string `json:"error_type"`
			}
			if jerr := json.Unmarshal(out.Bytes(), &failure); jerr != nil || failure.ErrorType != "refused" || failure.Error == "" {
				t.Errorf("speedtest %s: stdout %q is not a JSON failure with error_type refused", args, out.String())
			}
		}
	}
}
