package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/kassehq/kasse/host/checkout"
	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/schemas"
)

func TestProblemFor(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		status int
		typ    string
	}{
		{"schema violation", &schemas.ValidationError{Schema: "checkout.schema.json",
			Violations: []schemas.Violation{{Pointer: "/amount", Detail: "must be >= 100"}}}, 400, "invalid-request"},
		{"input", &checkout.InputError{Pointer: "/returnUrl", Detail: "not allowed"}, 422, "invalid-request"},
		{"unknown merchant", &checkout.UnknownMerchantError{Merchant: "x"}, 404, "unknown-merchant"},
		{"not found, wrapped", fmt.Errorf("get: %w", store.ErrNotFound), 404, "not-found"},
		{"callback token", checkout.ErrCallbackUnauthorized, 401, "unauthorized"},
		{"state", &checkout.StateError{State: payment.StateRefunded, Err: payment.ErrTransition}, 409, "operation-not-allowed"},
		{"idempotency reuse", &checkout.IdempotencyError{Detail: "x"}, 422, "idempotency-key-reused"},
		{"idempotency in progress", &checkout.IdempotencyError{InProgress: true, Detail: "x"}, 409, "idempotency-in-progress"},
		{"provider refused", &checkout.ProviderError{Status: 400, Detail: "Vipps: Payment 61"}, 422, "provider-refused"},
		{"provider throttled", &checkout.ProviderError{Status: 429}, 502, "provider-unavailable"},
		{"provider down", &checkout.ProviderError{Cause: errors.New("dial")}, 502, "provider-unavailable"},
		{"plugin trap", &checkout.PluginError{Plugin: "p", Version: "1", Op: abi.OpBuildInitiate, Cause: errors.New("trap")}, 500, "plugin-failed"},
		{"plugin refuses input", &checkout.PluginError{Err: &abi.Error{Code: "invalid_input", Message: "m"}}, 422, "invalid-request"},
		{"unavailable", &checkout.UnavailableError{What: "plugin"}, 503, "unavailable"},
		{"express off", &checkout.ExpressDisabledError{Merchant: "demo"}, 403, "express-disabled"},
		{"webhook unverified", fmt.Errorf("webhook: %w", checkout.ErrWebhookUnverified), 401, "unauthorized"},
		{"body too large", &http.MaxBytesError{Limit: 10}, 413, "body-too-large"},
		{"anything else", errors.New("boom"), 500, "internal"},
	}
	set, err := schemas.Compile()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := problemFor(c.err)
			if p.Status != c.status || p.Type != problemBase+c.typ || p.Title == "" {
				t.Fatalf("got %d %s %q, want %d %s", p.Status, p.Type, p.Title, c.status, c.typ)
			}
			p.Instance = "urn:kasse:request:0123456789abcdef"
			if err := set.ValidateValue(schemas.Problem, toJSONValue(t, p)); err != nil {
				t.Fatalf("problem does not match problem.schema.json: %v", err)
			}
		})
	}
}
