package main

import (
	"encoding/json"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/kassehq/kasse/examples/vippssim/vippsspec"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/plugintest"
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
	s := &plugintest.Spec{
		Doc:           "epayment-v1.yaml",
		Router:        router,
		BaseURL:       "https://api.vipps.no",
		Handle:        epayment.Handle,
		BuildFor:      map[abi.Op]abi.Op{epayment.OpReadEvents: epayment.OpBuildEvents},
		MediaTypes:    []string{"application/json", "application/problem+json"},
		What:          "Vipps answer or event",
		OffSpec:       offSpec,
		CheckRequest:  checkRequest,
		CheckCallback: func(in *abi.Input) error { return specs.CheckWebhookEvent(in.Callback) },
	}
	payment, report := plugintest.SplitReport(golden().Cases(t))
	s.Test(t, payment)
	t.Run("report", func(t *testing.T) { plugintest.ReportSpec(t, specs.Report, epayment.Handle).Test(t, report) })
}

// checkRequest validates a request a build operation produced.
func checkRequest(t *testing.T, s *plugintest.Spec, r *abi.Request) {
	t.Helper()
	rt := s.Route(t, r)
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
