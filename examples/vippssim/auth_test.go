package vippssim_test

import (
	"net/http"
	"testing"
	"time"
)

func TestAccessToken(t *testing.T) {
	h := newHarness(t)
	good := map[string]string{
		"client_id": h.tenant.ClientID, "client_secret": h.tenant.ClientSecret, "Ocp-Apim-Subscription-Key": h.tenant.SubscriptionKey,
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name    string
		header  map[string]string
		path    string
		invalid bool
		want    int
	}{
		{"ok", good, "/accesstoken/get", false, 200},
		{"quick-start spelling", good, "/accessToken/get", false, 200},
		{"matching MSN header", with("Merchant-Serial-Number", "123456"), "/accesstoken/get", false, 200},
		{"wrong secret", with("client_secret", "nope"), "/accesstoken/get", false, 401},
		{"unknown client", with("client_id", "nope"), "/accesstoken/get", false, 401},
		{"other tenant's subscription key", with("Ocp-Apim-Subscription-Key", h.other.SubscriptionKey), "/accesstoken/get", false, 401},
		{"missing secret", with("client_secret", ""), "/accesstoken/get", true, 401},
		{"missing subscription key", with("Ocp-Apim-Subscription-Key", ""), "/accesstoken/get", true, 401},
		{"other MSN header", with("Merchant-Serial-Number", "654321"), "/accesstoken/get", false, 401},
		{"malformed MSN header", with("Merchant-Serial-Number", "12"), "/accesstoken/get", true, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.do(call{method: "POST", path: tc.path, noAuth: true, header: tc.header, invalid: tc.invalid})
			if tc.want != 200 {
				expectAzure(t, resp, body, tc.want)
				return
			}
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
		})
	}
	t.Run("GET is not allowed", func(t *testing.T) {
		resp, body := h.do(call{method: "GET", path: "/accesstoken/get", noAuth: true, header: good, invalid: true})
		expectAzure(t, resp, body, http.StatusMethodNotAllowed)
		if resp.Header.Get("Allow") != "POST" {
			t.Errorf("Allow = %q", resp.Header.Get("Allow"))
		}
	})
}

// TestAPIAuth: every eCom call needs a live token of the tenant owning the
// subscription key.
func TestAPIAuth(t *testing.T) {
	h := newHarness(t)
	h.initiate("auth-1", 1000)
	otherToken := h.fetchToken(h.other)

	tests := []struct {
		name    string
		header  map[string]string
		invalid bool
		status  int
	}{
		{"missing Authorization", map[string]string{"Authorization": ""}, true, 401},
		{"no Bearer", map[string]string{"Authorization": h.token}, false, 401},
		{"unknown token", map[string]string{"Authorization": "Bearer abcd"}, false, 401},
		{"missing subscription key", map[string]string{"Ocp-Apim-Subscription-Key": ""}, true, 401},
		{"bad subscription key", map[string]string{"Ocp-Apim-Subscription-Key": "wrong"}, false, 401},
		{"token of another tenant", map[string]string{"Authorization": "Bearer " + otherToken}, false, 401},
		{"other tenant's token and key", map[string]string{"Authorization": "Bearer " + otherToken,
			"Ocp-Apim-Subscription-Key": h.other.SubscriptionKey, "Merchant-Serial-Number": ""}, false, 404},
		{"lowercase bearer", map[string]string{"Authorization": "bearer " + h.token}, false, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.do(call{method: "GET", path: "/ecomm/v2/payments/auth-1/details", header: tc.header, invalid: tc.invalid})
			switch tc.status {
			case 401:
				expectAzure(t, resp, body, 401)
			case 404: // the other tenant cannot see this tenant's payment
				expectError(t, resp, body, 404, "Merchant", "35")
			default:
				if resp.StatusCode != tc.status {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
			}
		})
	}
	t.Run("MSN header of another merchant", func(t *testing.T) {
		resp, body := h.do(call{method: "GET", path: "/ecomm/v2/payments/auth-1/details",
			header: map[string]string{"Merchant-Serial-Number": "654321"}})
		expectError(t, resp, body, http.StatusForbidden, "Authentication", "merchantSerialNumber.forbidden")
	})
	t.Run("expired token", func(t *testing.T) {
		h.clock.Advance(time.Hour)
		resp, body := h.do(call{method: "GET", path: "/ecomm/v2/payments/auth-1/details"})
		expectAzure(t, resp, body, 401)
		h.token = h.fetchToken(h.tenant)
		if resp, body := h.do(call{method: "GET", path: "/ecomm/v2/payments/auth-1/details"}); resp.StatusCode != 200 {
			t.Errorf("fresh token: %d %s", resp.StatusCode, body)
		}
	})
}
