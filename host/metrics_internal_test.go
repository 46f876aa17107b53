package host

import "testing"

func TestPathTemplate(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/ecomm/v2/payments", "/ecomm/v2/payments"},
		{"/ecomm/v2/payments/kk2re5wvm5xqv4vq2swzmqcihk/capture", "/ecomm/v2/payments/{id}/capture"},
		{"/ecomm/v2/payments/abcdefghijklmnopqrstuvwxyz/details", "/ecomm/v2/payments/{id}/details"},
		{"/epayment/v1/payments/order-1001/events?x=1", "/epayment/v1/payments/{id}/events"},
		{"/report/v2/ledgers/302321/funds/dates/2026-12-01", "/report/v2/ledgers/{id}/funds/dates/{id}"},
		{"/accesstoken/get", "/accesstoken/get"},
		{"", ""},
	} {
		if got := pathTemplate(tc.in); got != tc.want {
			t.Errorf("pathTemplate(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
