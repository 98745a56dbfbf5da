package config_test

import (
	"strings"
	"testing"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probes"
)

// api.token_protects_reads without a token would lock every reader out:
// refused, naming the key; with a token or a token file it loads.
func TestTokenProtectsReadsNeedsToken(t *testing.T) {
	base := "probes: [{name: wan, type: ping, targets: [{host: 127.0.0.1}]}]\n"
	_, err := config.Parse([]byte(base+"api: {token_protects_reads: true}\n"), probes.Registry)
	if err == nil || !strings.Contains(err.Error(), "api.token_protects_reads: needs api.token or api.token_file") {
		t.Fatalf("token_protects_reads without a token: %v", err)
	}
	for _, api := range []string{"{token_protects_reads: true, token: abc}", "{token_protects_reads: true, token_file: /etc/t}"} {
		cfg, err := config.Parse([]byte(base+"api: "+api+"\n"), probes.Registry)
		if err != nil {
			t.Fatalf("api: %s: %v", api, err)
		}
		if !cfg.API.TokenProtectsReads {
			t.Errorf("api: %s: token_protects_reads not read", api)
		}
	}
}
