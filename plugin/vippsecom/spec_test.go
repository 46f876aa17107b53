package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/kassehq/kasse/examples/vippssim/vippsspec"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/vippsecom/ecom"
)

// offSpec lists the golden vectors whose Vipps answer or callback deliberately differs from the published
// OpenAPI documents: the variants of vipps-reference.md §9 that real traffic shows, and malformed input.
// Every other recorded Vipps answer and callback must validate, and every one listed here must not (so the
// list cannot go stale).
var offSpec = map[string]string{
	"read_initiate-missing-url":                         "url is required",
	"read_initiate-not-json":                            "not a JSON object (the host passes non-JSON bodies as a JSON string)",
	"read_initiate-azure-401-short":                     "Azure's {statusCode, message} short form is not in ErrorResponse (§3.7, §9.5)",
	"read_initiate-error-500-string":                    "a JSON string error body",
	"read_initiate-error-502-html":                      "a proxy's HTML page",
	"read_initiate-error-503-empty":                     "no body",
	"read_capture-error-429":                            "Azure's {statusCode, message} short form (§9.5)",
	"read_details-not-json":                             "not a JSON object",
	"read_callback-reserve-express":                     "AddressExpress requires postCode but Vipps sends zipCode, as its own example does (§9.3)",
	"read_callback-express-shipping-in-amount-postcode": "country \"NO\" (the spec allows only \"Norway\") and addressLine2 null, as Vipps's own examples show (§9.3)",
	"read_callback-express-amount-mismatch":             "country \"NO\" and addressLine2 null (§9.3)",
	"read_callback-msn-number":                          "merchantSerialNumber as a number (§9.2)",
	"read_callback-error-code-number":                   "errorCode as a number and errorGroup PAYMENTS (§9.4)",
	"read_callback-rejected-not-acted-mt":               "errorGroup PAYMENTS, outside the enum (real MT traffic, §4.1, §9.4)",
	"read_callback-reserve-failed":                      "RESERVE_FAILED is in the guide only (§9.1)",
	"read_callback-sale-failed":                         "SALE_FAILED is in the guide only (§9.1)",
	"read_callback-auto-cancel":                         "AUTO_CANCEL is in old spec versions only (§9.1)",
	"read_callback-amount-fraction":                     "amount is not an integer",
	"read_callback-amount-missing":                      "amount is required",
	"read_callback-unknown-status":                      "status outside the enum",
	"read_callback-no-transaction-info":                 "transactionInfo is required",
	"read_callback-not-object":                          "not a JSON object",
}

// buildFor names the build operation whose request a read operation reads the answer to.
var buildFor = map[abi.Op]abi.Op{
	abi.OpReadInitiate: abi.OpBuildInitiate,
	abi.OpReadCapture:  abi.OpBuildCapture,
	abi.OpReadCancel:   abi.OpBuildCancel,
	abi.OpReadRefund:   abi.OpBuildRefund,
	abi.OpReadDetails:  abi.OpBuildDetails,
}

// TestGoldenMatchesSpec checks the golden vectors against Vipps's OpenAPI documents (ecom-v2.swagger.yaml
// and ms_import.yaml, loaded by vippsspec): every request a build operation produces names an eCom
// operation, carries X-Request-Id exactly where the operation declares it, and has a body that validates
// against the operation's request schema (after the host's injections); every recorded Vipps answer
// validates against the operation's response schema, and every callback against the callback schema,
// unless it is listed in offSpec.
func TestGoldenMatchesSpec(t *testing.T) {
	specs := vippsspec.Load(t)
	router, err := legacy.NewRouter(specs.ECom, openapi3.DisableExamplesValidation())
	if err != nil {
		t.Fatal(err)
	}
	requests := 0
	for _, v := range loadVectors(t) {
		in := decodeInput(t, v.name, v.input)
		var out abi.Output
		if err := json.Unmarshal(v.want, &out); err != nil {
			t.Fatalf("%s: %v", v.outputPath(), err)
		}
		t.Run(v.name, func(t *testing.T) {
			if out.OK && out.Request != nil {
				checkRequest(t, router, out.Request)
				requests++
			}
			var answerErr error
			checked := false
			switch {
			case in.Op == abi.OpReadCallback && len(in.Callback) > 0:
				req := httptest.NewRequest(http.MethodPost, "https://kasse.example.com/cb/v2/payments/"+in.Session.ProviderReference, bytes.NewReader(in.Callback))
				req.Header.Set("Content-Type", "application/json")
				answerErr, checked = specs.CheckCallback(req, in.Callback), true
			case buildFor[in.Op] != "" && in.Response != nil:
				answerErr, checked = checkAnswer(t, router, in), true
			}
			if !checked {
				if _, listed := offSpec[v.name]; listed {
					t.Errorf("listed in offSpec, but has no Vipps answer or callback")
				}
				return
			}
			reason, listed := offSpec[v.name]
			switch {
			case listed && answerErr == nil:
				t.Errorf("listed in offSpec (%s), but its Vipps answer or callback validates: remove it from the list", reason)
			case !listed && answerErr != nil:
				t.Errorf("Vipps answer or callback violates the spec: %v", answerErr)
			}
		})
	}
	if requests == 0 {
		t.Fatal("no vector produced a request")
	}
}

// route finds the eCom operation for an abi.Request.
func route(t *testing.T, router routers.Router, r *abi.Request) *routers.Route {
	t.Helper()
	req := httptest.NewRequest(r.Method, "https://api.vipps.no"+r.Path, nil)
	rt, _, err := router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s is no operation of ecom-v2.swagger.yaml: %v", r.Method, r.Path, err)
	}
	return rt
}

// checkRequest validates a request a build operation produced.
func checkRequest(t *testing.T, router routers.Router, r *abi.Request) {
	t.Helper()
	op := route(t, router, r).Operation
	needsRequestID := false
	for _, p := range op.Parameters {
		if p.Value != nil && p.Value.In == openapi3.ParameterInHeader && p.Value.Name == "X-Request-Id" && p.Value.Required {
			needsRequestID = true
		}
	}
	if got := r.IdempotencyHeader == "X-Request-Id"; got != needsRequestID {
		t.Errorf("%s: idempotencyHeader %q, but the spec's X-Request-Id required=%v", op.OperationID, r.IdempotencyHeader, needsRequestID)
	}
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		if len(r.Body) != 0 {
			t.Errorf("%s takes no body, got %s", op.OperationID, r.Body)
		}
		return
	}
	mt := op.RequestBody.Value.Content.Get("application/json;charset=UTF-8")
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
		t.Fatalf("%s: no JSON request schema", op.OperationID)
	}
	if !json.Valid(r.Body) {
		t.Fatalf("%s: body is not valid JSON: %s", op.OperationID, r.Body)
	}
	var body any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	for _, inj := range r.Inject {
		if inj.Value != abi.InjectCallbackToken {
			t.Errorf("%s: injects unknown host value %q", op.OperationID, inj.Value)
		}
		// A callback token as the host makes them: 64 hex characters.
		if err := setPointer(body, inj.Pointer, strings.Repeat("0f", 32)); err != nil {
			t.Errorf("%s: inject %s: %v", op.OperationID, inj.Pointer, err)
		}
	}
	if err := mt.Schema.Value.VisitJSON(body); err != nil {
		t.Errorf("%s: body violates the request schema: %v\nbody: %s", op.OperationID, err, r.Body)
	}
}

// checkAnswer validates the Vipps answer a read operation was given against the response schema of the
// operation its build operation calls.
func checkAnswer(t *testing.T, router routers.Router, in *abi.Input) error {
	t.Helper()
	build := *in
	build.Op, build.Response = buildFor[in.Op], nil
	if build.Operation == nil {
		build.Operation = &abi.Operation{Amount: in.Session.Amount}
	}
	bout := ecom.Handle(&build)
	if !bout.OK {
		t.Fatalf("the vector's %s fails: %+v", build.Op, bout.Error)
	}
	op := route(t, router, bout.Request).Operation
	resp := op.Responses.Status(in.Response.Status)
	if resp == nil {
		resp = op.Responses.Default()
	}
	if resp == nil || resp.Value == nil {
		return errors.New("no response declared for this status")
	}
	mt := resp.Value.Content.Get("application/json;charset=UTF-8")
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
		return errors.New("no JSON schema for this response")
	}
	if len(in.Response.Body) == 0 {
		return errors.New("no body")
	}
	var body any
	if err := json.Unmarshal(in.Response.Body, &body); err != nil {
		return err
	}
	if _, isString := body.(string); isString {
		return errors.New("body is a JSON string: the host's encoding of a non-JSON body")
	}
	return mt.Schema.Value.VisitJSON(body)
}

// setPointer sets the member at an RFC 6901 pointer whose parent object exists.
func setPointer(doc any, pointer, value string) error {
	if !strings.HasPrefix(pointer, "/") {
		return errors.New("pointer does not start with /")
	}
	parts := strings.Split(pointer[1:], "/")
	cur := doc
	for i, p := range parts {
		p = strings.NewReplacer("~1", "/", "~0", "~").Replace(p)
		obj, ok := cur.(map[string]any)
		if !ok {
			return errors.New("parent of " + p + " is not an object")
		}
		if i == len(parts)-1 {
			obj[p] = value
			return nil
		}
		cur = obj[p]
	}
	return nil
}
