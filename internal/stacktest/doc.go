// Package stacktest checks the observability stack shipped with netpulse
// (compose.yaml, compose.fleet.yaml, Dockerfile, otel-collector/, prometheus/, grafana/,
// compose/, Taskfile.yml) against real binaries: promtool, amtool, the
// collector built from otel-collector/builder, Prometheus, go-task, and the
// agent itself; the dashboards against Grafana's schema (Foundation SDK).
//
// It holds only tests. Static checks (structure, pinned images, paths,
// dashboard JSON) always run; the checks that need a binary skip without it,
// and fail under NETPULSE_REQUIRE_REAL=1 as .ci/run sets it.
package stacktest
