package adaptertest

import (
	"strings"
	"testing"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/host/payment"
)

// TestProblems checks what the kit reports about a parsed event, the Express checks included.
func TestProblems(t *testing.T) {
	cart := []payment.Line{{Name: "Mug", Quantity: 2, UnitPrice: 24950}}
	express := func(co *payment.Checkout) *adapters.Event {
		return &adapters.Event{Action: adapters.ActionExpressCheckout, Reference: "x-1", Checkout: co}
	}
	for _, tt := range []struct {
		name      string
		got, want *adapters.Event
		// wantProblems are substrings of the problems, one each, in order; none means a clean event.
		wantProblems []string
	}{
		{"express with its cart",
			express(&payment.Checkout{Merchant: "custom", Reference: "x-1", Amount: 49900, Lines: cart}),
			&adapters.Event{Action: adapters.ActionExpressCheckout, Reference: "x-1"}, nil},
		{"express without lines",
			express(&payment.Checkout{Merchant: "custom", Reference: "x-1", Amount: 49900}),
			&adapters.Event{Action: adapters.ActionExpressCheckout}, []string{"express event without the cart's Lines"}},
		{"express without a checkout", express(nil),
			&adapters.Event{Action: adapters.ActionExpressCheckout}, []string{"express event without a Checkout"}},
		{"express whose checkout names another order",
			express(&payment.Checkout{Merchant: "custom", Reference: "x-2", Lines: cart}),
			&adapters.Event{Action: adapters.ActionExpressCheckout}, []string{`checkout reference "x-2"`}},
		{"express wanted, checkout given",
			&adapters.Event{Action: adapters.ActionCheckout, Reference: "x-1",
				Checkout: &payment.Checkout{Merchant: "custom", Reference: "x-1"}},
			&adapters.Event{Action: adapters.ActionExpressCheckout}, []string{`Action = "checkout", want "express"`}},
		{"checkout needs no lines",
			&adapters.Event{Action: adapters.ActionCheckout, Reference: "1001",
				Checkout: &payment.Checkout{Merchant: "custom", Reference: "1001"}},
			&adapters.Event{Action: adapters.ActionCheckout}, nil},
		{"checkout without a merchant",
			&adapters.Event{Action: adapters.ActionCheckout, Reference: "1001", Checkout: &payment.Checkout{Reference: "1001"}},
			&adapters.Event{Action: adapters.ActionCheckout}, []string{`merchant ""`}},
		{"wanted field differs",
			&adapters.Event{Action: adapters.ActionRefund, Reference: "1001", Amount: 400},
			&adapters.Event{Action: adapters.ActionRefund, Amount: 500}, []string{"Amount = 400, want 500"}},
		{"cancel without a reference", &adapters.Event{Action: adapters.ActionCancel},
			&adapters.Event{Action: adapters.ActionCancel}, []string{"cancel event without a Reference"}},
		{"ignore", &adapters.Event{Action: adapters.ActionIgnore, Reason: "draft"},
			&adapters.Event{Action: adapters.ActionIgnore}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(tt.got, tt.want)
			if len(got) != len(tt.wantProblems) {
				t.Fatalf("problems %q, want %d matching %q", got, len(tt.wantProblems), tt.wantProblems)
			}
			for i, want := range tt.wantProblems {
				if !strings.Contains(got[i], want) {
					t.Errorf("problem %d = %q, want one containing %q", i, got[i], want)
				}
			}
		})
	}
}
