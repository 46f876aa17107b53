// Package vippsspec checks HTTP traffic against the published Vipps OpenAPI
// documents, for tests in any kasse package.
//
// The documents are not copied into the repository: [Dir] finds kasse's
// shared/specs/vipps directory and [Load] parses ecom-v2.swagger.yaml (with
// the ms_import.yaml it references), access-token.swagger.yaml,
// ms_import.yaml, epayment-v1.yaml, webhooks-v1.swagger.yaml and
// report-v2.yaml with kin-openapi. [Specs.Transport] wraps an
// http.RoundTripper so that every request to and response from the eCom,
// ePayment, Webhooks, Report and access token APIs is validated with
// openapi3filter; violations are reported
// with t.Errorf. [Specs.ValidateCallback] checks a callback Vipps sends to a
// merchant, and [Specs.CheckShippingDetails] the Express shipping question.
//
// # Spec quirks and what Load does about them
//
// Each patch is narrow and applied to the loaded copy only:
//
//   - servers: the documents name https://api.vipps.no and
//     https://apitest.vipps.no; routes are matched on the path only.
//   - Media types: bodies are declared as "application/json;charset=UTF-8"
//     only, so kin-openapi would refuse a plain "application/json" (which the
//     API accepts, and which the documents' own Content-Type header parameter
//     asks for). "application/json" is added as an alias of the same schema.
//   - ShippingCostAndMethod.addressType has pattern `^\[A-Z]$`, which no value
//     of its own enum (H, W, O) or default matches; it is read as `^[A-Z]$`.
//   - ShippingCostAndMethod.addressLine2 is a string, but the API guide's
//     example of the shippingDetails request sends null when the user gave
//     no second line; it is made nullable.
//   - ShippingCostAndMethod requires country and also gives it a default
//     ("NO"): requests Vipps sends a merchant are validated without filling in
//     defaults, so a missing country is a violation, as "required" says.
//   - Examples of the wrong type (numbers for string fields, a truncated
//     `format: byte` token) make the documents fail kin-openapi's example
//     validation; examples are not validated.
//   - The callback's Authorization header is `required: true` in
//     ms_import.yaml, but it carries the optional authToken given at initiate
//     and Vipps omits it when there is none: it is made optional.
//   - Capture: the guide says transaction.amount omitted, null or 0 captures
//     the remaining amount, but Transaction.amount has minimum 100 and is not
//     nullable. For capture requests a 0 or null amount is validated as if it
//     were omitted.
package vippsspec

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// File names of the documents in the specs directory.
const (
	ECOMFile        = "ecom-v2.swagger.yaml"
	AccessTokenFile = "access-token.swagger.yaml"
	MerchantFile    = "ms_import.yaml"
	// EPaymentFile is the ePayment API v1 (see epayment.go for its quirks).
	EPaymentFile = "epayment-v1.yaml"
	// WebhooksFile is the Webhooks API v1.
	WebhooksFile = "webhooks-v1.swagger.yaml"
)

// EnvSharedDir names the environment variable that points at kasse's shared
// directory (the one holding specs/vipps).
const EnvSharedDir = "KASSE_SHARED_DIR"

// Dir returns the directory holding the Vipps OpenAPI documents: $KASSE_SHARED_DIR/specs/vipps
// (or $KASSE_SHARED_DIR itself if the documents are directly in it), else
// shared/specs/vipps next to the repository root, found by walking up from the
// working directory to a directory with a go.mod. It fails the test if neither exists.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := FindDir()
	if err != nil {
		t.Fatalf("%v", err)
	}
	return dir
}

// FindDir is [Dir] without a test: it returns an error instead of failing.
func FindDir() (string, error) {
	if env := os.Getenv(EnvSharedDir); env != "" {
		for _, c := range []string{filepath.Join(env, "specs", "vipps"), env} {
			if isFile(filepath.Join(c, ECOMFile)) {
				return c, nil
			}
		}
		return "", fmt.Errorf("vippsspec: %s=%q, but neither %s nor the directory itself contains %s",
			EnvSharedDir, env, filepath.Join(env, "specs", "vipps"), ECOMFile)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("vippsspec: working directory: %w", err)
	}
	for dir := wd; ; {
		if isFile(filepath.Join(dir, "go.mod")) {
			c := filepath.Join(filepath.Dir(dir), "shared", "specs", "vipps")
			if isFile(filepath.Join(c, ECOMFile)) {
				return c, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", fmt.Errorf("vippsspec: Vipps OpenAPI documents not found: no shared/specs/vipps/%s next to a repository root (a directory with go.mod) above %s; set %s to kasse's shared directory",
		ECOMFile, wd, EnvSharedDir)
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// Specs holds the parsed (and patched, see the package doc) documents.
type Specs struct {
	// ECom is ecom-v2.swagger.yaml with ms_import.yaml's paths resolved.
	ECom *openapi3.T
	// AccessToken is access-token.swagger.yaml.
	AccessToken *openapi3.T
	// Merchant is ms_import.yaml: the endpoints Vipps calls on the merchant.
	Merchant *openapi3.T
	// EPayment is epayment-v1.yaml, patched as epayment.go describes.
	EPayment *openapi3.T
	// Webhooks is webhooks-v1.swagger.yaml with its paths under /webhooks.
	Webhooks *openapi3.T
	// Report is report-v2.yaml, patched as report.go describes.
	Report *openapi3.T

	ecomRouter, tokenRouter, merchantRouter routers.Router
	epaymentRouter, webhooksRouter          routers.Router
	reportRouter                            routers.Router
}

// Load parses the documents in [Dir] and fails the test on any error.
func Load(t testing.TB) *Specs {
	t.Helper()
	s, err := LoadDir(Dir(t))
	if err != nil {
		t.Fatalf("%v", err)
	}
	return s
}

// LoadDir parses the documents in dir.
func LoadDir(dir string) (*Specs, error) {
	var s Specs
	var err error
	if s.ECom, s.ecomRouter, err = loadDoc(filepath.Join(dir, ECOMFile)); err != nil {
		return nil, err
	}
	if s.AccessToken, s.tokenRouter, err = loadDoc(filepath.Join(dir, AccessTokenFile)); err != nil {
		return nil, err
	}
	if s.Merchant, s.merchantRouter, err = loadDoc(filepath.Join(dir, MerchantFile)); err != nil {
		return nil, err
	}
	if err := s.loadEPayment(dir); err != nil {
		return nil, err
	}
	if err := s.loadReport(dir); err != nil {
		return nil, err
	}
	// Quirk: the callback's Authorization (the merchant's optional authToken)
	// is marked required; Vipps sends it only if an authToken was given.
	if item := s.Merchant.Paths.Value(callbackSpecPath); item != nil && item.Post != nil {
		for _, p := range item.Post.Parameters {
			if p.Value != nil && p.Value.In == openapi3.ParameterInHeader && strings.EqualFold(p.Value.Name, "Authorization") {
				p.Value.Required = false
			}
		}
	}
	return &s, nil
}

const callbackSpecPath = "/callbackPrefix/v2/payments/{orderId}"

func loadDoc(path string) (*openapi3.T, routers.Router, error) {
	return loadDocWith(path, nil, nil)
}

// loadDocWith is loadDoc with a reader for external references (nil: files only) and a patch applied
// before the router is built.
func loadDocWith(path string, read openapi3.ReadFromURIFunc, patch func(*openapi3.T)) (*openapi3.T, routers.Router, error) {
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = true
	if read != nil {
		loader.ReadFromURIFunc = read
	}
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("vippsspec: load %s: %w", path, err)
	}
	doc.Servers = nil // match on the path only
	patchDoc(doc)
	if patch != nil {
		patch(doc)
	}
	router, err := legacy.NewRouter(doc, openapi3.DisableExamplesValidation())
	if err != nil {
		return nil, nil, fmt.Errorf("vippsspec: %s: %w", path, err)
	}
	return doc, router, nil
}

// patchDoc applies the media type and pattern fixes described in the package doc.
func patchDoc(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var schema func(*openapi3.SchemaRef)
	schema = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		v := ref.Value
		seen[v] = true
		if v.Pattern == `^\[A-Z]$` && len(v.Enum) > 0 { // ShippingCostAndMethod.addressType
			v.Pattern = `^[A-Z]$`
		}
		if line2 := v.Properties["addressLine2"]; line2 != nil && line2.Value != nil && v.Properties["addressId"] != nil {
			line2.Value.Nullable = true // ShippingCostAndMethod.addressLine2, as the guide's example sends it
		}
		for _, p := range v.Properties {
			schema(p)
		}
		schema(v.Items)
		for _, list := range [][]*openapi3.SchemaRef{v.OneOf, v.AnyOf, v.AllOf} {
			for _, r := range list {
				schema(r)
			}
		}
		schema(v.Not)
		if v.AdditionalProperties.Schema != nil {
			schema(v.AdditionalProperties.Schema)
		}
	}
	content := func(c openapi3.Content) {
		for _, mt := range c {
			if mt != nil {
				schema(mt.Schema)
			}
		}
		if mt, ok := c["application/json;charset=UTF-8"]; ok {
			if _, has := c["application/json"]; !has {
				c["application/json"] = mt
			}
		}
	}
	var operation func(*openapi3.Operation)
	operation = func(op *openapi3.Operation) {
		if op == nil {
			return
		}
		for _, p := range op.Parameters {
			if p.Value != nil {
				schema(p.Value.Schema)
				content(p.Value.Content)
			}
		}
		if op.RequestBody != nil && op.RequestBody.Value != nil {
			content(op.RequestBody.Value.Content)
		}
		if op.Responses != nil {
			for _, r := range op.Responses.Map() {
				if r.Value != nil {
					content(r.Value.Content)
				}
			}
		}
		for _, cb := range op.Callbacks {
			if cb.Value == nil {
				continue
			}
			for _, item := range cb.Value.Map() {
				for _, o := range item.Operations() {
					operation(o)
				}
			}
		}
	}
	if doc.Paths != nil {
		for _, item := range doc.Paths.Map() {
			for _, op := range item.Operations() {
				operation(op)
			}
		}
	}
	for _, sc := range doc.Components.Schemas {
		schema(sc)
	}
	for _, rb := range doc.Components.RequestBodies {
		if rb.Value != nil {
			content(rb.Value.Content)
		}
	}
	for _, r := range doc.Components.Responses {
		if r.Value != nil {
			content(r.Value.Content)
		}
	}
}

// isAPIPath reports whether path belongs to an API the documents describe,
// so that a request to it with no operation in the spec is a violation.
// Other paths (the landing page, simulator controls) pass unvalidated.
func isAPIPath(path string) bool {
	lower := strings.ToLower(path)
	return strings.HasPrefix(lower, "/ecomm/") || strings.HasPrefix(lower, "/accesstoken/") || strings.HasPrefix(lower, "/miami/") ||
		strings.HasPrefix(lower, "/epayment/") || strings.HasPrefix(lower, "/webhooks/") ||
		strings.HasPrefix(lower, "/report/") || strings.HasPrefix(lower, "/settlement/")
}

// findRoute picks the document by path and finds the operation.
func (s *Specs) findRoute(req *http.Request) (*routers.Route, map[string]string, error) {
	lower := strings.ToLower(req.URL.Path)
	if strings.HasPrefix(lower, "/accesstoken/") || strings.HasPrefix(lower, "/miami/") {
		if lower == "/accesstoken/get" && req.URL.Path != lower {
			// The guide's quick-starts spell it /accessToken/get: same endpoint.
			req = req.Clone(req.Context())
			req.URL.Path = lower
		}
		return s.tokenRouter.FindRoute(req)
	}
	if strings.HasPrefix(lower, "/epayment/") {
		return s.epaymentRouter.FindRoute(req)
	}
	if strings.HasPrefix(lower, "/webhooks/") {
		return s.webhooksRouter.FindRoute(req)
	}
	if strings.HasPrefix(lower, "/report/") || strings.HasPrefix(lower, "/settlement/") {
		return s.reportRouter.FindRoute(req)
	}
	return s.ecomRouter.FindRoute(req)
}

// ValidateRequest validates req (whose body has been read into body) against
// the eCom or access token document. It returns nil for paths outside those
// APIs (see the package doc) and the request validation input for
// [Specs.ValidateResponse].
func (s *Specs) ValidateRequest(req *http.Request, body []byte) (*openapi3filter.RequestValidationInput, error) {
	if !isAPIPath(req.URL.Path) {
		return nil, nil
	}
	route, params, err := s.findRoute(req)
	if err != nil {
		return nil, fmt.Errorf("no operation in the spec for %s %s: %w", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.RequestValidationInput{
		Request:    requestWithBody(req, body),
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc:                openapi3filter.NoopAuthenticationFunc,
			MultiError:                        true,
			RejectWhenRequestBodyNotSpecified: true,
		},
	}
	if route.Operation.OperationID == "capturePaymentUsingPOST" {
		in.Request = requestWithBody(req, captureAmountQuirk(body))
	}
	// Validate the headers as a server receives them: names canonicalised, as on the wire they are
	// case-insensitive (the provider sends the spec's lowercase client_id verbatim).
	in.Request.Header = canonicalHeader(req.Header)
	if err := openapi3filter.ValidateRequest(req.Context(), in); err != nil {
		return in, err
	}
	return in, nil
}

func canonicalHeader(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, v := range h {
		ck := http.CanonicalHeaderKey(k)
		out[ck] = append(out[ck], v...)
	}
	return out
}

// captureAmountQuirk drops a transaction.amount of 0 or null from a capture
// body (the guide: "omitted, null or 0 captures the remaining amount").
func captureAmountQuirk(body []byte) []byte {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&m) != nil {
		return body
	}
	tx, ok := m["transaction"].(map[string]any)
	if !ok {
		return body
	}
	a, present := tx["amount"]
	if !present {
		return body
	}
	if n, isNum := a.(json.Number); a != nil && (!isNum || n.String() != "0") {
		return body
	}
	delete(tx, "amount")
	out, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return out
}

// ValidateResponse validates a response to the request in in (from
// [Specs.ValidateRequest]); undocumented status codes are violations.
func (s *Specs) ValidateResponse(in *openapi3filter.RequestValidationInput, resp *http.Response, body []byte) error {
	if in == nil {
		return nil
	}
	return openapi3filter.ValidateResponse(in.Request.Context(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
}

func requestWithBody(req *http.Request, body []byte) *http.Request {
	r := req.Clone(req.Context())
	if body == nil {
		r.Body = http.NoBody
	} else {
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	r.ContentLength = int64(len(body))
	return r
}

type expectInvalidKey struct{}

// ExpectInvalidRequest marks req as deliberately violating the spec (a
// negative test): the Transport then reports it if the request validates,
// instead of when it does not. The response is validated as usual.
func ExpectInvalidRequest(req *http.Request) *http.Request {
	return req.WithContext(context.WithValue(req.Context(), expectInvalidKey{}, true))
}

// Transport returns a RoundTripper that validates every request passing
// through it, and the response, with t.Errorf on each violation (naming the
// method, the path and the error), and otherwise behaves like next
// (http.DefaultTransport if nil).
func (s *Specs) Transport(t testing.TB, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{specs: s, t: t, next: next}
}

type transport struct {
	specs *Specs
	t     testing.TB
	next  http.RoundTripper
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("vippsspec: read request body: %w", err)
		}
	}
	expectInvalid, _ := req.Context().Value(expectInvalidKey{}).(bool)
	in, reqErr := tr.specs.ValidateRequest(req, body)
	switch {
	case reqErr != nil && !expectInvalid:
		tr.t.Errorf("vippsspec: %s %s: request violates the spec: %v", req.Method, req.URL.Path, reqErr)
	case reqErr == nil && expectInvalid && isAPIPath(req.URL.Path):
		tr.t.Errorf("vippsspec: %s %s: request was marked invalid, but the spec accepts it", req.Method, req.URL.Path)
	}

	out := requestWithBody(req, body)
	if body == nil {
		out.Body = req.Body // keep nil or NoBody as given
	}
	resp, err := tr.next.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("vippsspec: read response body: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if in != nil {
		if err := tr.specs.ValidateResponse(in, resp, respBody); err != nil {
			tr.t.Errorf("vippsspec: %s %s: response %d violates the spec: %v\nbody: %s", req.Method, req.URL.Path, resp.StatusCode, err, respBody)
		}
	}
	return resp, nil
}

// ValidateCallback checks a transaction update callback received by a
// merchant (POST {callbackPrefix}/v2/payments/{orderId}) against
// ms_import.yaml, with t.Errorf on violations. body is the raw request body.
func (s *Specs) ValidateCallback(t testing.TB, req *http.Request, body []byte) {
	t.Helper()
	if err := s.CheckCallback(req, body); err != nil {
		t.Errorf("%v", err)
	}
}

// CheckShippingDetails checks the Express shipping question Vipps sends a merchant (POST
// {shippingDetailsPrefix}/v2/payments/{orderId}/shippingDetails, ShippingCostAndMethod) against
// ms_import.yaml. body is the raw request body.
func (s *Specs) CheckShippingDetails(req *http.Request, body []byte) error {
	return s.checkMerchantRequest("shippingDetails", "/shippingDetailsPrefix", "/shippingDetails", req, body)
}

// CheckCallback is [Specs.ValidateCallback] returning the violation as an error.
func (s *Specs) CheckCallback(req *http.Request, body []byte) error {
	return s.checkMerchantRequest("callback", "/callbackPrefix", "", req, body)
}

// checkMerchantRequest validates a request Vipps sends to a merchant endpoint, whose path ends in
// /v2/payments/{orderId} and suffix: that end is matched under prefix, the placeholder ms_import.yaml puts
// in front of it.
func (s *Specs) checkMerchantRequest(what, prefix, suffix string, req *http.Request, body []byte) error {
	i := strings.LastIndex(req.URL.Path, "/v2/payments/")
	if i < 0 || !strings.HasSuffix(req.URL.Path, suffix) {
		return fmt.Errorf("vippsspec: %s %s %s: path does not end in /v2/payments/{orderId}%s", what, req.Method, req.URL.Path, suffix)
	}
	r := requestWithBody(req, body)
	r.URL.Path = prefix + req.URL.Path[i:]
	r.URL.RawPath = ""
	route, params, err := s.merchantRouter.FindRoute(r)
	if err != nil {
		return fmt.Errorf("vippsspec: %s %s %s: no operation in ms_import.yaml: %w", what, req.Method, req.URL.Path, err)
	}
	// Without SkipSettingDefaults, kin-openapi fills a missing member that has a default in before it
	// checks required members: ShippingCostAndMethod requires country, yet gives it the default "NO".
	err = openapi3filter.ValidateRequest(r.Context(), &openapi3filter.RequestValidationInput{
		Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true,
			SkipSettingDefaults: true},
	})
	if err != nil {
		return fmt.Errorf("vippsspec: %s %s %s: violates ms_import.yaml: %w", what, req.Method, req.URL.Path, err)
	}
	return nil
}
