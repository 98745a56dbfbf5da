package telemetry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc/credentials"

	"github.com/netpulse/netpulse/internal/config"
)

// otlpTarget is where OTLP goes after config and environment are combined.
type otlpTarget struct {
	enabled  bool
	protocol string // grpc or http
	// endpoint is from the config file; empty means the exporters read the
	// standard OTEL_EXPORTER_OTLP_* variables themselves.
	endpoint string
	cfg      config.OTLP
}

// resolveOTLP applies the precedence: OTEL_SDK_DISABLED=true turns OTLP off;
// an endpoint in the config file wins; otherwise the OTEL_EXPORTER_OTLP_*
// environment variables (endpoint, protocol, headers, TLS) are used as is.
func resolveOTLP(cfg config.OTLP) otlpTarget {
	t := otlpTarget{protocol: cfg.Protocol, endpoint: cfg.Endpoint, cfg: cfg}
	if sdkDisabled() {
		return t
	}
	if cfg.Endpoint != "" {
		t.enabled = true
		return t
	}
	for _, v := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"} {
		if os.Getenv(v) != "" {
			t.enabled = true
		}
	}
	switch os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL") {
	case "grpc":
		t.protocol = "grpc"
	case "http/protobuf":
		t.protocol = "http"
	}
	return t
}

func (t otlpTarget) describe() string {
	if t.endpoint == "" {
		return t.protocol + " (endpoint from OTEL_EXPORTER_OTLP_* environment)"
	}
	return t.protocol + " " + t.endpoint
}

func (t otlpTarget) tlsConfig() (*tls.Config, error) {
	c := t.cfg.TLS
	if c.CAFile == "" && c.CertFile == "" && !c.InsecureSkipVerify {
		return nil, nil
	}
	tc := &tls.Config{InsecureSkipVerify: c.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // user's explicit choice
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("telemetry.otlp.tls.ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("telemetry.otlp.tls.ca_file: no PEM certificate in %s", c.CAFile)
		}
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("telemetry.otlp.tls: cannot load client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// httpURL joins a configured base URL and a signal path (/v1/traces), as the
// OTLP specification does for OTEL_EXPORTER_OTLP_ENDPOINT.
func httpURL(base, signalPath string) string {
	return strings.TrimSuffix(base, "/") + signalPath
}

// exporterOptions names one exporter package's option constructors, so the
// four OTLP exporters (traces and metrics, gRPC and HTTP) share one mapping
// from our configuration.
type exporterOptions[O any] struct {
	url      func(string) O
	endpoint func(string) O
	insecure func() O
	tls      func(*tls.Config) O
	headers  func(map[string]string) O
	timeout  func(time.Duration) O
}

// options maps the configuration onto an exporter's options; signalPath is
// appended to an HTTP base URL and empty for gRPC.
func options[O any](t otlpTarget, signalPath string, o exporterOptions[O]) ([]O, error) {
	tc, err := t.tlsConfig()
	if err != nil {
		return nil, err
	}
	var opts []O
	switch {
	case strings.Contains(t.endpoint, "://"):
		opts = append(opts, o.url(httpURL(t.endpoint, signalPath)))
	case t.endpoint != "":
		opts = append(opts, o.endpoint(t.endpoint))
	}
	if t.cfg.Insecure {
		opts = append(opts, o.insecure())
	}
	if tc != nil {
		opts = append(opts, o.tls(tc))
	}
	if len(t.cfg.Headers) > 0 {
		opts = append(opts, o.headers(t.cfg.Headers))
	}
	return append(opts, o.timeout(t.cfg.Timeout)), nil
}

func newTraceExporter(ctx context.Context, t otlpTarget) (sdktrace.SpanExporter, error) {
	if t.protocol == "http" {
		opts, err := options(t, "/v1/traces", exporterOptions[otlptracehttp.Option]{
			otlptracehttp.WithEndpointURL, otlptracehttp.WithEndpoint, otlptracehttp.WithInsecure,
			otlptracehttp.WithTLSClientConfig, otlptracehttp.WithHeaders, otlptracehttp.WithTimeout})
		if err != nil {
			return nil, err
		}
		return otlptracehttp.New(ctx, opts...)
	}
	opts, err := options(t, "", exporterOptions[otlptracegrpc.Option]{
		otlptracegrpc.WithEndpointURL, otlptracegrpc.WithEndpoint, otlptracegrpc.WithInsecure,
		func(c *tls.Config) otlptracegrpc.Option {
			return otlptracegrpc.WithTLSCredentials(credentials.NewTLS(c))
		},
		otlptracegrpc.WithHeaders, otlptracegrpc.WithTimeout})
	if err != nil {
		return nil, err
	}
	return otlptracegrpc.New(ctx, opts...)
}

func newMetricExporter(ctx context.Context, t otlpTarget) (sdkmetric.Exporter, error) {
	if t.protocol == "http" {
		opts, err := options(t, "/v1/metrics", exporterOptions[otlpmetrichttp.Option]{
			otlpmetrichttp.WithEndpointURL, otlpmetrichttp.WithEndpoint, otlpmetrichttp.WithInsecure,
			otlpmetrichttp.WithTLSClientConfig, otlpmetrichttp.WithHeaders, otlpmetrichttp.WithTimeout})
		if err != nil {
			return nil, err
		}
		return otlpmetrichttp.New(ctx, opts...)
	}
	opts, err := options(t, "", exporterOptions[otlpmetricgrpc.Option]{
		otlpmetricgrpc.WithEndpointURL, otlpmetricgrpc.WithEndpoint, otlpmetricgrpc.WithInsecure,
		func(c *tls.Config) otlpmetricgrpc.Option {
			return otlpmetricgrpc.WithTLSCredentials(credentials.NewTLS(c))
		},
		otlpmetricgrpc.WithHeaders, otlpmetricgrpc.WithTimeout})
	if err != nil {
		return nil, err
	}
	return otlpmetricgrpc.New(ctx, opts...)
}
