package checkout_test

import (
	"testing"

	"github.com/kassehq/kasse/host/checkout"
	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/plugin/abi"
)

// TestApplyExpressDetails checks how a plugin's Express details land in a session: only on Express
// sessions, kept when a later answer lacks them, never again after consent removal.
func TestApplyExpressDetails(t *testing.T) {
	details := &abi.Payment{State: "authorized",
		Contact: &abi.Contact{UserID: "u1==", FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.com"},
		Shipping: &abi.ShippingChoice{MethodID: "posten", Method: "Posten", Cost: 9900,
			Address: &abi.Address{Line1: "Storgata 1", PostCode: "9008", City: "TROMSØ", Country: "NO"}}}
	stored := payment.Session{Express: true,
		Contact: payment.Contact{UserID: "u1==", FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.com"},
		Shipping: payment.Shipping{MethodID: "posten", Method: "Posten", Cost: 9900,
			Address: payment.Address{Line1: "Storgata 1", PostCode: "9008", City: "TROMSØ", Country: "NO"}}}
	erased := payment.Session{Express: true, Shipping: payment.Shipping{MethodID: "posten", Method: "Posten", Cost: 9900},
		History: []payment.Event{{To: payment.StateAuthorized, Cause: checkout.CauseConsentRemoved}}}

	tests := []struct {
		name        string
		sess        payment.Session
		pay         *abi.Payment
		wantChanged bool
		want        payment.Session
	}{
		{"express callback", payment.Session{Express: true}, details, true, stored},
		{"same details again", stored, details, false, stored},
		{"answer without details keeps them", stored, &abi.Payment{State: "captured"}, false, stored},
		{"regular session", payment.Session{}, details, false, payment.Session{}},
		{"after consent removal", erased, details, false, erased},
		{"nil payment", payment.Session{Express: true}, nil, false, payment.Session{Express: true}},
		{"negative cost", payment.Session{Express: true}, &abi.Payment{Shipping: &abi.ShippingChoice{MethodID: "x", Cost: -5}},
			true, payment.Session{Express: true, Shipping: payment.Shipping{MethodID: "x"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.sess
			if got := checkout.ApplyExpressDetails(&s, tc.pay); got != tc.wantChanged {
				t.Errorf("changed = %t, want %t", got, tc.wantChanged)
			}
			if s.Contact != tc.want.Contact || s.Shipping != tc.want.Shipping {
				t.Errorf("session\ngot  %+v %+v\nwant %+v %+v", s.Contact, s.Shipping, tc.want.Contact, tc.want.Shipping)
			}
		})
	}
}
