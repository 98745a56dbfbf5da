package testutil

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Collector is a running otelcol-netpulse (otel-collector/) started by
// StartCollector: OTLP in on loopback, everything written as OTLP/JSON lines
// to a file the test reads back.
type Collector struct {
	// GRPCEndpoint is host:port of the OTLP/gRPC receiver.
	GRPCEndpoint string
	// HTTPEndpoint is host:port of the OTLP/HTTP receiver; the agent's
	// endpoint for it is "http://" + HTTPEndpoint.
	HTTPEndpoint string
	// OutputFile receives one OTLP/JSON export request per line.
	OutputFile string
	Process    *Process
}

// CollectorBinary returns the collector to run: $NETPULSE_OTELCOL, else
// .cache/bin/otelcol-netpulse (what otel-collector/build.sh builds), else "".
func CollectorBinary(t testing.TB) string {
	if p := os.Getenv("NETPULSE_OTELCOL"); p != "" {
		return p
	}
	p := filepath.Join(ModuleRoot(t), ".cache", "bin", "otelcol-netpulse")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// StartCollector runs the collector with otel-collector/test-config.yaml on
// free loopback ports and waits until both receivers accept connections.
func StartCollector(t testing.TB) *Collector {
	t.Helper()
	bin := CollectorBinary(t)
	Need(t, bin != "", "the OpenTelemetry Collector: run otel-collector/build.sh and set NETPULSE_OTELCOL to the path it prints")
	c := &Collector{
		GRPCEndpoint: FreeAddr(t),
		HTTPEndpoint: FreeAddr(t),
		OutputFile:   filepath.Join(t.TempDir(), "otel.jsonl"),
	}
	cmd := exec.Command(bin, "--config=file:"+filepath.Join(ModuleRoot(t), "otel-collector", "test-config.yaml"))
	cmd.Env = hermeticEnv("OTLP_GRPC_ENDPOINT="+c.GRPCEndpoint, "OTLP_HTTP_ENDPOINT="+c.HTTPEndpoint,
		"OTELCOL_OUTPUT="+c.OutputFile)
	c.Process = StartProcess(t, "otelcol", cmd)
	err := Poll(20*time.Second, func() error {
		if c.Process.Exited() {
			return Permanent(fmt.Errorf("collector exited; its output:\n%s", c.Process.Output()))
		}
		for _, addr := range []string{c.GRPCEndpoint, c.HTTPEndpoint} {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return err
			}
			_ = conn.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("start collector: %v", err)
	}
	return c
}

// Read parses every complete line of the output file. A line still being
// written (no trailing newline yet) is left for the next call.
func (c *Collector) Read() (*Received, error) {
	data, err := os.ReadFile(c.OutputFile)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i]
	} else {
		data = nil
	}
	r := &Received{}
	for n, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var req exportRequest
		if err := json.Unmarshal(line, &req); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", c.OutputFile, n+1, err)
		}
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					s.Resource, s.Scope = rs.Resource.Attributes, ss.Scope.Name
					r.Spans = append(r.Spans, s)
				}
			}
		}
		for _, rm := range req.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					m.Resource, m.Scope = rm.Resource.Attributes, sm.Scope.Name
					r.Metrics = append(r.Metrics, m)
				}
			}
		}
		r.Lines++
	}
	return r, nil
}

// BarrierService is the service.name of the markers Barrier sends.
const BarrierService = "testutil-barrier"

// Barrier sends a marker span and a marker metric over OTLP/HTTP and waits
// (up to 10 s) until both are in the output file. The collector's pipelines
// are first in, first out, so afterwards everything the collector accepted
// before the call is in the file too: a test can then assert that something
// did not arrive without sleeping.
func (c *Collector) Barrier(t testing.TB) *Received {
	t.Helper()
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	marker := "barrier-" + hex.EncodeToString(id[:8])
	now := time.Now().UnixNano()
	res := fmt.Sprintf(`{"attributes":[{"key":"service.name","value":{"stringValue":%q}}]}`, BarrierService)
	traces := fmt.Sprintf(`{"resourceSpans":[{"resource":%s,"scopeSpans":[{"spans":[{"traceId":%q,"spanId":%q,`+
		`"name":%q,"kind":1,"startTimeUnixNano":"%d","endTimeUnixNano":"%d"}]}]}]}`,
		res, hex.EncodeToString(id), hex.EncodeToString(id[:8]), marker, now, now)
	metrics := fmt.Sprintf(`{"resourceMetrics":[{"resource":%s,"scopeMetrics":[{"metrics":[{"name":%q,`+
		`"gauge":{"dataPoints":[{"asInt":"1","timeUnixNano":"%d"}]}}]}]}]}`, res, marker, now)
	for path, body := range map[string]string{"/v1/traces": traces, "/v1/metrics": metrics} {
		if err := c.postJSON(path, body); err != nil {
			t.Fatalf("collector barrier: %v", err)
		}
	}
	var got *Received
	Eventually(t, 10*time.Second, func() error {
		r, err := c.Read()
		if err != nil {
			return err
		}
		if len(r.SpansNamed(marker)) == 0 || len(r.MetricsNamed(marker)) == 0 {
			return fmt.Errorf("collector barrier %s not written to %s yet", marker, c.OutputFile)
		}
		got = r
		return nil
	})
	return got
}

func (c *Collector) postJSON(path, body string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.HTTPEndpoint+path, bytes.NewBufferString(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: status %d", path, resp.StatusCode)
	}
	return nil
}

// Service returns what the named service sent (resource service.name).
func (r *Received) Service(name string) *Received {
	out := &Received{Lines: r.Lines}
	for _, s := range r.Spans {
		if v, _ := s.Resource.Get("service.name"); v == name {
			out.Spans = append(out.Spans, s)
		}
	}
	for _, m := range r.Metrics {
		if v, _ := m.Resource.Get("service.name"); v == name {
			out.Metrics = append(out.Metrics, m)
		}
	}
	return out
}

// Received is everything the collector wrote so far, flattened: every span
// and every metric (one entry per metric per export) with its resource.
type Received struct {
	Lines   int
	Spans   []Span
	Metrics []Metric
}

// SpansNamed returns the spans with the given name.
func (r *Received) SpansNamed(name string) []Span {
	var out []Span
	for _, s := range r.Spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// MetricsNamed returns every export of the metric with the given name.
func (r *Received) MetricsNamed(name string) []Metric {
	var out []Metric
	for _, m := range r.Metrics {
		if m.Name == name {
			out = append(out, m)
		}
	}
	return out
}

// HasTrace reports whether any span belongs to the trace (hex id).
func (r *Received) HasTrace(traceID string) bool {
	for _, s := range r.Spans {
		if s.TraceID == traceID {
			return true
		}
	}
	return false
}

// OTLP/JSON (the protobuf JSON mapping, ids in hex, 64-bit integers as
// strings), reduced to the fields the tests read.
type exportRequest struct {
	ResourceSpans []struct {
		Resource   resource `json:"resource"`
		ScopeSpans []struct {
			Scope scope  `json:"scope"`
			Spans []Span `json:"spans"`
		} `json:"scopeSpans"`
	} `json:"resourceSpans"`
	ResourceMetrics []struct {
		Resource     resource `json:"resource"`
		ScopeMetrics []struct {
			Scope   scope    `json:"scope"`
			Metrics []Metric `json:"metrics"`
		} `json:"scopeMetrics"`
	} `json:"resourceMetrics"`
}

type resource struct {
	Attributes Attributes `json:"attributes"`
}

type scope struct {
	Name string `json:"name"`
}

// Span is one received span.
type Span struct {
	TraceID      string     `json:"traceId"`
	SpanID       string     `json:"spanId"`
	ParentSpanID string     `json:"parentSpanId"`
	Name         string     `json:"name"`
	Kind         int        `json:"kind"`
	Start        Int        `json:"startTimeUnixNano"`
	End          Int        `json:"endTimeUnixNano"`
	Attributes   Attributes `json:"attributes"`
	Events       []struct {
		Name       string     `json:"name"`
		Attributes Attributes `json:"attributes"`
	} `json:"events"`
	Status struct {
		Code    int    `json:"code"` // 0 unset, 1 ok, 2 error
		Message string `json:"message"`
	} `json:"status"`

	// Resource and Scope are copied from the enclosing objects.
	Resource Attributes `json:"-"`
	Scope    string     `json:"-"`
}

// Metric is one metric of one export; exactly one of Histogram, Sum and
// Gauge is set.
type Metric struct {
	Name        string `json:"name"`
	Unit        string `json:"unit"`
	Description string `json:"description"`
	Histogram   *struct {
		DataPoints             []HistogramPoint `json:"dataPoints"`
		AggregationTemporality int              `json:"aggregationTemporality"`
	} `json:"histogram"`
	Sum *struct {
		DataPoints             []NumberPoint `json:"dataPoints"`
		AggregationTemporality int           `json:"aggregationTemporality"`
		IsMonotonic            bool          `json:"isMonotonic"`
	} `json:"sum"`
	Gauge *struct {
		DataPoints []NumberPoint `json:"dataPoints"`
	} `json:"gauge"`

	Resource Attributes `json:"-"`
	Scope    string     `json:"-"`
}

// NumberPoint is a data point of a sum or gauge.
type NumberPoint struct {
	Attributes Attributes `json:"attributes"`
	AsDouble   *float64   `json:"asDouble"`
	AsInt      *Int       `json:"asInt"`
	Exemplars  []Exemplar `json:"exemplars"`
}

// Value returns the point's value whatever its type.
func (p NumberPoint) Value() float64 {
	if p.AsDouble != nil {
		return *p.AsDouble
	}
	if p.AsInt != nil {
		return float64(*p.AsInt)
	}
	return 0
}

// HistogramPoint is a data point of an explicit-bucket histogram.
type HistogramPoint struct {
	Attributes     Attributes `json:"attributes"`
	Count          Int        `json:"count"`
	Sum            *float64   `json:"sum"`
	BucketCounts   []Int      `json:"bucketCounts"`
	ExplicitBounds []float64  `json:"explicitBounds"`
	Exemplars      []Exemplar `json:"exemplars"`
}

// Exemplar links a measurement to the span that made it.
type Exemplar struct {
	TraceID  string   `json:"traceId"`
	SpanID   string   `json:"spanId"`
	AsDouble *float64 `json:"asDouble"`
}

// Int is a 64-bit integer as OTLP/JSON writes it: a string ("42"), though a
// bare number is accepted too.
type Int int64

func (i *Int) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		u, uerr := strconv.ParseUint(s, 10, 64)
		if uerr != nil {
			return fmt.Errorf("OTLP/JSON integer %s: %w", b, err)
		}
		n = int64(u)
	}
	*i = Int(n)
	return nil
}

// Attributes is an OTLP attribute list.
type Attributes []struct {
	Key   string   `json:"key"`
	Value AnyValue `json:"value"`
}

// AnyValue is an attribute value; one field is set.
type AnyValue struct {
	StringValue *string  `json:"stringValue"`
	IntValue    *Int     `json:"intValue"`
	DoubleValue *float64 `json:"doubleValue"`
	BoolValue   *bool    `json:"boolValue"`
}

// String renders the value as text (integers in decimal, booleans as
// true/false), so tests compare attributes without caring for their type.
func (v AnyValue) String() string {
	switch {
	case v.StringValue != nil:
		return *v.StringValue
	case v.IntValue != nil:
		return strconv.FormatInt(int64(*v.IntValue), 10)
	case v.DoubleValue != nil:
		return strconv.FormatFloat(*v.DoubleValue, 'g', -1, 64)
	case v.BoolValue != nil:
		return strconv.FormatBool(*v.BoolValue)
	}
	return ""
}

// Get returns the value of key as text and whether it is present.
func (a Attributes) Get(key string) (string, bool) {
	for _, kv := range a {
		if kv.Key == key {
			return kv.Value.String(), true
		}
	}
	return "", false
}

// Has reports whether every key=value of want is among the attributes.
func (a Attributes) Has(want map[string]string) bool {
	for k, v := range want {
		if got, ok := a.Get(k); !ok || got != v {
			return false
		}
	}
	return true
}

// Map returns the attributes as key → text.
func (a Attributes) Map() map[string]string {
	m := make(map[string]string, len(a))
	for _, kv := range a {
		m[kv.Key] = kv.Value.String()
	}
	return m
}
