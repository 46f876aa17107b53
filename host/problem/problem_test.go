package problem_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"encoding/json"
	"github.com/gin-gonic/gin"
	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/host/checkout"
	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/problem"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/schemas"
	"net/http/httptest"
	"strings"
)

// TestFor checks the status and type of every error the layers below return, and that each problem
// matches problem.schema.json.
func TestFor(t *testing.T) {
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
		{"in doubt", &checkout.InDoubtError{Session: "s", Operation: "o", Kind: "capture"}, 409, "operation-in-doubt"},
		{"outcome unknown", &checkout.OutcomeUnknownError{Session: "s", Operation: "o", Kind: "capture"}, 504, "outcome-unknown"},
		{"store down", fmt.Errorf("get: %w", store.ErrUnavailable), 503, "store-unavailable"},
		{"delivery signature", adapters.ErrUnauthorized, 401, "unauthorized"},
		{"delivery body", &adapters.InputError{Pointer: "/line_items", Detail: "is required"}, 400, "invalid-request"},
		{"anything else", errors.New("boom"), 500, "internal"},
	}
	set, err := schemas.Compile()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := problem.For(c.err)
			if p.Status != c.status || p.Type != problem.Type(c.typ) || p.Title == "" {
				t.Fatalf("got %d %s %q, want %d %s", p.Status, p.Type, p.Title, c.status, c.typ)
			}
			p.Instance = "urn:kasse:request:0123456789abcdef"
			if err := set.ValidateValue(schemas.Problem, toJSONValue(t, p)); err != nil {
				t.Fatalf("problem does not match problem.schema.json: %v", err)
			}
		})
	}
}

func toJSONValue(t *testing.T, v any) any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAbort checks the answer a surface writes: the problem type, Retry-After where the problem has one,
// '&' kept unescaped and a trailing newline.
func TestAbort(t *testing.T) {
	gin.SetMode(gin.TestMode)
	for _, tc := range []struct {
		name       string
		p          problem.Problem
		retryAfter string
	}{
		{"store down", problem.For(store.ErrUnavailable), "2"},
		{"plain", problem.New(http.StatusNotFound, "not-found", "Not found", "see https://x.test/?a=1&b=<2>"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			c, _ := gin.CreateTestContext(w)
			problem.Abort(c, "0123456789abcdef", tc.p)
			if !c.IsAborted() || w.Code != tc.p.Status || w.Header().Get("Content-Type") != problem.ContentType ||
				w.Header().Get("Retry-After") != tc.retryAfter {
				t.Fatalf("answer %d %v", w.Code, w.Header())
			}
			body := w.Body.String()
			if !strings.HasSuffix(body, "}\n") || strings.Contains(body, `\u0026`) {
				t.Errorf("body %q: want unescaped JSON with a trailing newline", body)
			}
			var got problem.Problem
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.Instance != "urn:kasse:request:0123456789abcdef" ||
				got.Detail != tc.p.Detail {
				t.Errorf("decoded %+v, %v", got, err)
			}
		})
	}
}
