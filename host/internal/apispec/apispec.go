// Package apispec holds kasse's own OpenAPI document (schemas/openapi.json) to account: it loads the
// document with kin-openapi, resolving its references to the JSON Schemas embedded beside it, and checks
// an HTTP answer kasse gave against it: the route and method must be documented, the status must be one
// the operation lists (or its default, the problem document), the media type one the response declares,
// and a JSON body must match the response's schema. The end-to-end tests wrap their HTTP clients in
// Transport, so the document cannot drift from what kasse answers. It is test machinery: the running
// service only serves the document (host/httpapi) and never consults this package.
//
// A body whose schema is a reference to one of the schemas/ files is judged by schemas.Set, the same
// validator (santhosh-tekuri/jsonschema, JSON Schema 2020-12) kasse judges requests with; inline schemas
// are judged by kin-openapi's JSON Schema 2020-12 validator. RATIONALE.md says why.
package apispec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/kassehq/kasse/schemas"
)

// Spec is the loaded document with its router and the schema set its references name.
type Spec struct {
	doc    *openapi3.T
	router routers.Router
	set    *schemas.Set
}

// Load reads the embedded OpenAPI document, resolves its references to the embedded schemas, validates
// the document as OpenAPI 3.1 and builds its router.
func Load() (*Spec, error) {
	set, err := schemas.Compile()
	if err != nil {
		return nil, fmt.Errorf("apispec: %w", err)
	}
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = true
	// Every reference names a file of schemas/; nothing is fetched from anywhere else.
	loader.ReadFromURIFunc = func(_ *openapi3.Loader, u *url.URL) ([]byte, error) {
		if u.Scheme != "" || u.Host != "" {
			return nil, fmt.Errorf("apispec: refusing to fetch %s", u.Redacted())
		}
		return fs.ReadFile(schemas.FS(), path.Base(u.Path))
	}
	doc, err := loader.LoadFromDataWithPath(schemas.OpenAPI(), &url.URL{Path: "openapi.json"})
	if err != nil {
		return nil, fmt.Errorf("apispec: load: %w", err)
	}
	// errorMessage is kasse's own keyword for the messages of its schemas (package schemas).
	if err := doc.Validate(context.Background(), openapi3.AllowExtraSiblingFields("errorMessage")); err != nil {
		return nil, fmt.Errorf("apispec: the document is not valid OpenAPI: %w", err)
	}
	// Route on paths alone: the tests' listeners are on random ports, not the documented ones.
	routing := *doc
	routing.Servers = nil
	router, err := gorillamux.NewRouter(&routing)
	if err != nil {
		return nil, fmt.Errorf("apispec: router: %w", err)
	}
	return &Spec{doc: doc, router: router, set: set}, nil
}

// Has reports whether the document describes method on the path template (OpenAPI form, "/v1/checkouts/{id}").
func (s *Spec) Has(method, template string) bool {
	item := s.doc.Paths.Value(template)
	return item != nil && item.GetOperation(strings.ToUpper(method)) != nil
}

// Paths lists the documented path templates, sorted.
func (s *Spec) Paths() []string {
	ps := s.doc.Paths.InMatchingOrder()
	sort.Strings(ps)
	return ps
}

// Check judges one answer to req against the document. A request to a path the document does not know
// may only be answered with a 404 or 405 problem (kasse's answer to an unknown route).
func (s *Spec) Check(req *http.Request, status int, header http.Header, body []byte) error {
	what := req.Method + " " + req.URL.Path + " -> " + strconv.Itoa(status)
	route, _, err := s.router.FindRoute(req)
	if err != nil {
		if (errors.Is(err, routers.ErrPathNotFound) || errors.Is(err, routers.ErrMethodNotAllowed)) &&
			(status == http.StatusNotFound || status == http.StatusMethodNotAllowed) {
			return s.checkBody(what, "application/problem+json", header, body,
				&openapi3.SchemaRef{Ref: schemas.Problem})
		}
		return fmt.Errorf("apispec: %s: route not in openapi.json: %w", what, err)
	}
	resp := route.Operation.Responses.Status(status)
	if resp == nil {
		resp = route.Operation.Responses.Default()
	}
	if resp == nil || resp.Value == nil {
		return fmt.Errorf("apispec: %s (%s): status not documented", what, route.Path)
	}
	what += " (" + route.Path + ")"
	if len(body) == 0 && header.Get("Content-Type") == "" {
		return nil // an empty answer (a bare 200, 204 or redirect) needs no content
	}
	ct, _, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil {
		return fmt.Errorf("apispec: %s: content type %q: %w", what, header.Get("Content-Type"), err)
	}
	mt := resp.Value.Content.Get(ct)
	if mt == nil || resp.Value.Content[ct] == nil {
		return fmt.Errorf("apispec: %s: media type %s not documented for this status", what, ct)
	}
	return s.checkBody(what, ct, header, body, mt.Schema)
}

func (s *Spec) checkBody(what, ct string, header http.Header, body []byte, sch *openapi3.SchemaRef) error {
	if got, _, _ := mime.ParseMediaType(header.Get("Content-Type")); got != ct {
		return fmt.Errorf("apispec: %s: content type %q, want %s", what, header.Get("Content-Type"), ct)
	}
	if sch == nil || !strings.HasSuffix(ct, "json") || ct == "application/schema+json" && sch.Ref == "" {
		return nil
	}
	if name := path.Base(sch.Ref); strings.HasSuffix(name, ".schema.json") {
		if err := s.set.Validate(name, body); err != nil {
			return fmt.Errorf("apispec: %s: body does not match %s: %w", what, name, err)
		}
		return nil
	}
	if sch.Value == nil {
		return nil
	}
	v, err := decode(body)
	if err != nil {
		return fmt.Errorf("apispec: %s: body is not JSON: %w", what, err)
	}
	if err := sch.Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
		return fmt.Errorf("apispec: %s: body does not match the documented schema: %w", what, err)
	}
	return nil
}

func decode(body []byte) (any, error) {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// Transport returns a RoundTripper that sends through next and checks every answer from one of hosts
// (host:port) against the document, passing each failure to report. The caller still gets the answer.
func (s *Spec) Transport(next http.RoundTripper, report func(error), hosts ...string) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{spec: s, next: next, report: report, hosts: hosts}
}

type transport struct {
	spec   *Spec
	next   http.RoundTripper
	report func(error)
	hosts  []string
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || !t.ours(req.URL.Host) {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		// A body cut short (a test that closes early, a timeout) is the test's business, not the document's.
		return resp, nil
	}
	if err := t.spec.Check(req, resp.StatusCode, resp.Header, body); err != nil {
		t.report(err)
	}
	return resp, nil
}

func (t *transport) ours(host string) bool {
	for _, h := range t.hosts {
		if h == host {
			return true
		}
	}
	return len(t.hosts) == 0
}

// CloseIdleConnections closes next's idle connections, so an http.Client using the transport can.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
