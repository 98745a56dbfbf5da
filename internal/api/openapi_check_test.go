package api

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Every answer the API tests receive, from the handler or from a running
// agent, is checked against openapi.json with kin-openapi: the route and
// method are documented, the status is one the operation lists, and a JSON
// body matches its schema (JSON Schema 2020-12, as OpenAPI 3.1 has it). A
// field added to an answer without the document fails the test that
// received it.

var openAPIRouter = sync.OnceValues(func() (routers.Router, error) {
	data, err := os.ReadFile("openapi.json")
	if err != nil {
		return nil, err
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	return legacy.NewRouter(doc)
})

// checkOpenAPI validates one answer to req against the document.
func checkOpenAPI(t testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	router, err := openAPIRouter()
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	// The router matches the path and method only: a request made for a
	// test server's address is matched as if addressed to the document's.
	r := req.Clone(context.Background())
	r.URL.Scheme, r.URL.Host, r.Host = "", "", ""
	head := r.Method == http.MethodHead
	if head {
		r.Method = http.MethodGet // every GET answers HEAD too (net/http), without a body
	}
	route, params, err := router.FindRoute(r)
	if err != nil {
		if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
			return // an unknown path or method, answered as such
		}
		t.Errorf("%s %s answered %d but is not in openapi.json: %v", req.Method, req.URL.Path, status, err)
		return
	}
	if head {
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options: &openapi3filter.Options{
			IncludeResponseStatus:   true,
			MultiError:              true,
			SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.EnableJSONSchema2020()},
		},
	}
	if strings.HasPrefix(header.Get("Content-Type"), "text/event-stream") {
		in.Options.ExcludeResponseBody = true // a stream: its events are checked by the events tests
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s: the answer (%d) does not match openapi.json: %v\nbody: %s",
			req.Method, req.URL.Path, status, err, truncate(body, 2000))
	}
}

func truncate(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return append(bytes.Clone(b[:n]), "…"...)
}

// TestOpenAPICheckCatchesDrift shows that the check fails on an answer the
// document does not describe: it is not a check that cannot fail.
func TestOpenAPICheckCatchesDrift(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:9517/api/v1/info", nil)
	h := http.Header{"Content-Type": []string{"application/json"}}
	for name, c := range map[string]struct {
		status int
		body   string
	}{
		"wrong type":         {http.StatusOK, `{"version": 1}`},
		"undocumented route": {http.StatusOK, `{}`},
	} {
		rec := &recordingT{TB: t}
		r := req
		if name == "undocumented route" {
			r, _ = http.NewRequest(http.MethodGet, "http://127.0.0.1:9517/api/v1/nowhere", nil)
		}
		checkOpenAPI(rec, r, c.status, h, []byte(c.body))
		if !rec.failed {
			t.Errorf("%s: %s answered %s passed the check", name, r.URL.Path, c.body)
		}
	}
}

// recordingT records a failure instead of failing the test.
type recordingT struct {
	testing.TB
	failed bool
}

func (r *recordingT) Errorf(string, ...any) { r.failed = true }
func (r *recordingT) Fatalf(string, ...any) { r.failed = true }
func (r *recordingT) Helper()               {}

// CheckOpenAPI is checkOpenAPI for the package's external tests (a running
// agent's answers).
var CheckOpenAPI = checkOpenAPI
