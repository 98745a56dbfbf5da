// Package e2e holds end-to-end tests of the netpulse agent against real
// components: the agent binary built from ./cmd/netpulse, an OpenTelemetry
// Collector (otel-collector/), Prometheus and promtool, network namespaces.
// Each test starts its own agent on loopback with short intervals; tests
// whose components are missing skip locally and fail under
// NETPULSE_REQUIRE_REAL=1 (.ci/run). The package has no non-test code.
package e2e
