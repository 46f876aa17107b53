package hooks

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/host/checkout"
	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/problem"
)

// TestProblemForExpress checks the problems of the Express errors, wrapped as the checkout service wraps
// them, and whether a stored delivery failing with them is retried.
func TestProblemForExpress(t *testing.T) {
	for _, tt := range []struct {
		name      string
		err       error
		status    int
		typ       string
		detail    []string
		merchant  string
		permanent bool
	}{
		{"express off", fmt.Errorf("create: %w", &checkout.ExpressDisabledError{Merchant: "shop"}), http.StatusForbidden,
			"express-disabled", []string{`merchant "shop"`, "expressCheckout"}, "shop", true},
		{"order paid the regular way", &kindConflictError{Reference: "1001", Session: "ks1", State: payment.StatePending},
			http.StatusConflict, "payment-kind-conflict", []string{`order "1001"`, "state pending"}, "", true},
		{"idempotent request in progress", &checkout.IdempotencyError{InProgress: true, Detail: "still being processed"},
			http.StatusConflict, "idempotency-in-progress", []string{"still being processed"}, "", false},
		{"provider down", &checkout.ProviderError{Status: 503, Detail: "down"}, http.StatusBadGateway,
			"provider-unavailable", nil, "", false},
		{"body not understood", &adapters.InputError{Pointer: "/checkout/lines", Detail: "is required"},
			http.StatusBadRequest, "invalid-request", []string{"is required"}, "", true},
		{"unexpected", errors.New("boom"), http.StatusInternalServerError, "internal", nil, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := problemFor(tt.err)
			if p.Status != tt.status || p.Type != problem.Type(tt.typ) || p.Merchant != tt.merchant {
				t.Errorf("problem %+v, want %d %s merchant %q", p, tt.status, tt.typ, tt.merchant)
			}
			for _, d := range tt.detail {
				if !strings.Contains(p.Detail, d) {
					t.Errorf("detail %q does not say %q", p.Detail, d)
				}
			}
			if got := permanent(tt.err); got != tt.permanent {
				t.Errorf("permanent = %t, want %t", got, tt.permanent)
			}
		})
	}
}
