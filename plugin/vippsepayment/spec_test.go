package main

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/kassehq/kasse/examples/vippssim/vippsspec"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/vippsepayment/epayment"
)

// offSpec lists the golden vectors whose Vipps answer or webhook event deliberately differs from
// epayment-v1.yaml: gateway errors, malformed answers, and values outside the spec's enums. Every other
// recorded answer and event must validate, and every one listed here must not (so the list cannot go stale).
var offSpec = map[string]string{
	"read_initiate-not-json":        "a JSON string, not an object",
	"read_initiate-azure-401":       "Azure API Management's error object, not a Problem",
	"read_initiate-azure-429-short": "Azure's {statusCode, message} short form, and 429 is not declared",
	"read_initiate-error-502-html":  "a proxy's HTML page",
	"read_initiate-error-503-empty": "no body",
	"read_details-unknown-state":    "state outside the enum",
	"read_details-no-aggregate":     "aggregate is required",
	"read_details-problem-404":      "getPayment declares no 404",
	"read_callback-msn-number":      "msn as a number (§9.2)",
	"read_callback-unknown-name":    "name outside the enum",
	"read_callback-no-success":      "success is required",
	"read_callback-not-object":      "not a JSON object",
}

// buildFor names the build operation whose request a read operation reads the answer to.
var buildFor = map[abi.Op]abi.Op{
	abi.OpReadInitiate:    abi.OpBuildInitiate,
	abi.OpReadCapture:     abi.OpBuildCapture,
	abi.OpReadCancel:      abi.OpBuildCancel,
	abi.OpReadRefund:      abi.OpBuildRefund,
	abi.OpReadDetails:     abi.OpBuildDetails,
	epayment.OpReadEvents: epayment.OpBuildEvents,
}

// TestGoldenMatchesSpec checks the golden vectors against epayment-v1.yaml (loaded by vippsspec): every
// request a build operation produces names an ePayment operation, carries Idempotency-Key exactly where
// the operation requires it, and has a body that validates against the operation's request schema; every
// recorded answer validates against the operation's response schema and every webhook event against
// WebhookEvent, unless the vector is listed in offSpec.
func TestGoldenMatchesSpec(t *testing.T) {
	specs := vippsspec.Load(t)
	router, err := legacy.NewRouter(specs.EPayment, openapi3.DisableExamplesValidation())
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
				answerErr, checked = specs.CheckWebhookEvent(in.Callback), true
			case buildFor[in.Op] != "" && in.Response != nil:
				answerErr, checked = checkAnswer(t, router, in), true
			}
			if !checked {
				if _, listed := offSpec[v.name]; listed {
					t.Errorf("listed in offSpec, but has no Vipps answer or event")
				}
				return
			}
			reason, listed := offSpec[v.name]
			switch {
			case listed && answerErr == nil:
				t.Errorf("listed in offSpec (%s), but its Vipps answer or event validates: remove it from the list", reason)
			case !listed && answerErr != nil:
				t.Errorf("Vipps answer or event violates the spec: %v", answerErr)
			}
		})
	}
	if requests == 0 {
		t.Fatal("no vector produced a request")
	}
}

// route finds the ePayment operation for an abi.Request.
func route(t *testing.T, router routers.Router, r *abi.Request) *routers.Route {
	t.Helper()
	req := httptest.NewRequest(r.Method, "https://api.vipps.no"+r.Path, nil)
	rt, _, err := router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s is no operation of epayment-v1.yaml: %v", r.Method, r.Path, err)
	}
	return rt
}

// checkRequest validates a request a build operation produced.
func checkRequest(t *testing.T, router routers.Router, r *abi.Request) {
	t.Helper()
	rt := route(t, router, r)
	op := rt.Operation
	needsKey := false
	params := append(openapi3.Parameters{}, rt.PathItem.Parameters...)
	params = append(params, op.Parameters...)
	for _, p := range params {
		if p.Value != nil && p.Value.In == openapi3.ParameterInHeader && p.Value.Name == "Idempotency-Key" && p.Value.Required {
			needsKey = true
		}
	}
	if got := r.IdempotencyHeader == "Idempotency-Key"; got != needsKey {
		t.Errorf("%s: idempotencyHeader %q, but the spec's Idempotency-Key required=%v", op.OperationID, r.IdempotencyHeader, needsKey)
	}
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		if len(r.Body) != 0 {
			t.Errorf("%s takes no body, got %s", op.OperationID, r.Body)
		}
		return
	}
	mt := op.RequestBody.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
		t.Fatalf("%s: no JSON request schema", op.OperationID)
	}
	var body any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("%s: body is not valid JSON: %s", op.OperationID, r.Body)
	}
	if len(r.Inject) > 0 {
		t.Errorf("%s: the ePayment plugin injects nothing, got %+v", op.OperationID, r.Inject)
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
	bout := epayment.Handle(&build)
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
	mt := resp.Value.Content.Get("application/json")
	if mt == nil {
		mt = resp.Value.Content.Get("application/problem+json")
	}
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
