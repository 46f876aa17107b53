package vippssim_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kassehq/kasse/examples/vippssim"
)

func TestInitiateValidation(t *testing.T) {
	type mod func(b map[string]any)
	set := func(obj, key string, v any) mod {
		return func(b map[string]any) { b[obj].(map[string]any)[key] = v }
	}
	del := func(obj, key string) mod {
		return func(b map[string]any) { delete(b[obj].(map[string]any), key) }
	}
	tests := []struct {
		name    string
		mod     mod
		invalid bool // the spec refuses it too
		status  int
		group   string
		code    string
	}{
		{"orderId with space", set("transaction", "orderId", "order 1"), true, 400, "InvalidRequest", "transaction.orderId.invalid"},
		{"orderId too long", set("transaction", "orderId", strings.Repeat("a", 51)), true, 400, "InvalidRequest", "transaction.orderId.invalid"},
		{"orderId missing", del("transaction", "orderId"), true, 400, "InvalidRequest", "transaction.orderId.missing"},
		{"amount 99", set("transaction", "amount", 99), true, 400, "InvalidRequest", "transaction.amount.invalid"},
		{"amount decimal", set("transaction", "amount", 1000.5), true, 400, "InvalidRequest", "transaction.amount.invalid"},
		{"amount string", set("transaction", "amount", "1000"), true, 400, "InvalidRequest", "transaction.amount.invalid"},
		{"amount missing", del("transaction", "amount"), true, 400, "InvalidRequest", "transaction.amount.missing"},
		{"transactionText missing", del("transaction", "transactionText"), true, 400, "InvalidRequest", "transaction.transactionText.missing"},
		{"transactionText 101 chars", set("transaction", "transactionText", strings.Repeat("ø", 101)), true, 400, "InvalidRequest", "transaction.transactionText.invalid"},
		{"customerInfo missing", func(b map[string]any) { delete(b, "customerInfo") }, true, 400, "InvalidRequest", "customerInfo.missing"},
		{"customerInfo not object", func(b map[string]any) { b["customerInfo"] = "91234567" }, true, 400, "InvalidRequest", "customerInfo.invalid"},
		{"mobileNumber with +47", set("customerInfo", "mobileNumber", "+4791234567"), true, 400, "InvalidRequest", "customerInfo.mobileNumber.invalid"},
		{"mobileNumber as number", set("customerInfo", "mobileNumber", 91234567), true, 400, "InvalidRequest", "customerInfo.mobileNumber.invalid"},
		{"MSN as number", set("merchantInfo", "merchantSerialNumber", 123456), true, 400, "InvalidRequest", "merchantInfo.merchantSerialNumber.invalid"},
		{"MSN of another merchant", set("merchantInfo", "merchantSerialNumber", "654321"), false, 403, "Merchant", "merchantInfo.merchantSerialNumber.forbidden"},
		{"callbackPrefix missing", del("merchantInfo", "callbackPrefix"), true, 400, "InvalidRequest", "merchantInfo.callbackPrefix.missing"},
		{"callbackPrefix too long", set("merchantInfo", "callbackPrefix", "https://shop.example/"+strings.Repeat("a", 240)), true, 400, "InvalidRequest", "merchantInfo.callbackPrefix.invalid"},
		{"callbackPrefix http public host", set("merchantInfo", "callbackPrefix", "http://shop.example/cb"), false, 400, "InvalidRequest", "merchantInfo.callbackPrefix.invalid"},
		{"callbackPrefix not a URL", set("merchantInfo", "callbackPrefix", "shop.example/cb"), false, 400, "InvalidRequest", "merchantInfo.callbackPrefix.invalid"},
		{"fallBack missing", del("merchantInfo", "fallBack"), true, 400, "InvalidRequest", "merchantInfo.fallBack.missing"},
		{"fallBack javascript", set("merchantInfo", "fallBack", "javascript:alert(1)"), false, 400, "InvalidRequest", "merchantInfo.fallBack.invalid"},
		{"authToken too long", set("merchantInfo", "authToken", strings.Repeat("t", 256)), true, 400, "InvalidRequest", "merchantInfo.authToken.invalid"},
		{"paymentType unknown", set("merchantInfo", "paymentType", "eCom Regular Payment"), true, 400, "InvalidRequest", "merchantInfo.paymentType.invalid"},
		{"express without consentRemovalPrefix", set("merchantInfo", "paymentType", "eComm Express Payment"), false, 400, "InvalidRequest", "merchantInfo.consentRemovalPrefix.missing"},
		{"isApp not boolean", set("merchantInfo", "isApp", "false"), true, 400, "InvalidRequest", "merchantInfo.isApp.invalid"},
		{"skipLandingPage", set("transaction", "skipLandingPage", true), false, 400, "Merchant", "38"},
		{"unknown scope", set("transaction", "scope", "name shoeSize"), false, 400, "InvalidRequest", "transaction.scope.invalid"},
		{"staticShippingDetails wrong", set("merchantInfo", "staticShippingDetails", []any{map[string]any{"isDefault": "yes"}}), true, 400, "InvalidRequest", "merchantInfo.staticShippingDetails[0].isDefault.invalid"},
		{"additionalData incomplete", set("transaction", "additionalData", map[string]any{"passengerName": "X"}), true, 400, "InvalidRequest", "transaction.additionalData.airlineCode.missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			b := h.initiateBody("val-1", 1000)
			tc.mod(b)
			resp, body := h.do(call{method: "POST", path: "/ecomm/v2/payments", body: b, invalid: tc.invalid})
			expectError(t, resp, body, tc.status, tc.group, tc.code)
			if _, ok := h.sim.Payment("val-1"); ok {
				t.Errorf("a refused initiate created a payment")
			}
		})
	}

	t.Run("all errors at once", func(t *testing.T) {
		h := newHarness(t)
		resp, body := h.do(call{method: "POST", path: "/ecomm/v2/payments", body: map[string]any{}, invalid: true})
		expectError(t, resp, body, 400, "InvalidRequest", "customerInfo.missing")
		for _, want := range []string{"merchantInfo.missing", "transaction.missing"} {
			if !strings.Contains(string(body), want) {
				t.Errorf("missing %s in %s", want, body)
			}
		}
	})

	accepted := []struct {
		name string
		mod  mod
	}{
		{"unknown fields (no additionalProperties: false in the spec)", func(b map[string]any) {
			b["extra"] = 1
			b["transaction"].(map[string]any)["timeStamp"] = "2024-01-01T00:00:00Z"
		}},
		{"fallBack app scheme", set("merchantInfo", "fallBack", "myshop://order/1")},
		{"mobileNumber", set("customerInfo", "mobileNumber", "91234567")},
		{"no authToken", del("merchantInfo", "authToken")},
		{"paymentType omitted", del("merchantInfo", "paymentType")},
		{"orderId of 50", set("transaction", "orderId", strings.Repeat("A-1", 16)+"zz")},
		{"text of 100 characters", set("transaction", "transactionText", strings.Repeat("å", 100))},
		{"scope", set("transaction", "scope", "name phoneNumber")},
		{"static shipping", set("merchantInfo", "staticShippingDetails", []any{map[string]any{
			"isDefault": "Y", "priority": 1, "shippingCost": 99.5, "shippingMethod": "Posten", "shippingMethodId": "posten"}})},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			b := h.initiateBody("ok-1", 1000)
			tc.mod(b)
			if resp, body := h.do(call{method: "POST", path: "/ecomm/v2/payments", body: b}); resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
		})
	}
}

func TestInitiateDuplicateAndTenants(t *testing.T) {
	h := newHarness(t)
	h.initiate("dup-1", 1000)
	resp, body := h.do(call{method: "POST", path: "/ecomm/v2/payments", body: h.initiateBody("dup-1", 2000)})
	expectError(t, resp, body, http.StatusConflict, "Merchant", "34")

	// Unique per MSN: another merchant may use the same orderId.
	b := h.initiateBody("dup-1", 1000)
	b["merchantInfo"].(map[string]any)["merchantSerialNumber"] = h.other.MerchantSerialNumber
	resp, body = h.do(call{method: "POST", path: "/ecomm/v2/payments", body: b, header: map[string]string{
		"Authorization": "Bearer " + h.fetchToken(h.other), "Ocp-Apim-Subscription-Key": h.other.SubscriptionKey,
		"Merchant-Serial-Number": h.other.MerchantSerialNumber,
	}})
	if resp.StatusCode != 200 {
		t.Fatalf("other tenant, same orderId: %d %s", resp.StatusCode, body)
	}
	if _, ok := h.sim.Payment("dup-1"); ok {
		t.Errorf("Payment should refuse an orderId used by two merchants")
	}
	if err := h.sim.Approve("dup-1", ""); err == nil || !strings.Contains(err.Error(), "more than one") {
		t.Errorf("Approve of an ambiguous orderId: %v", err)
	}
}

// TestHTTPSRule: with AllowHTTPLoopback false, only public HTTPS URLs pass.
func TestHTTPSRule(t *testing.T) {
	tests := []struct {
		name           string
		allow          bool
		callback, back string
		wantField      string // "" = accepted
	}{
		{"strict: https public", false, "https://shop.example/cb", "https://shop.example/back", ""},
		{"strict: http loopback callback", false, "http://127.0.0.1:9/cb", "https://shop.example/back", "merchantInfo.callbackPrefix.invalid"},
		{"strict: http loopback fallBack", false, "https://shop.example/cb", "http://localhost:9/back", "merchantInfo.fallBack.invalid"},
		{"strict: https localhost", false, "https://localhost/cb", "https://shop.example/back", "merchantInfo.callbackPrefix.invalid"},
		{"strict: http ::1", false, "http://[::1]:9/cb", "https://shop.example/back", "merchantInfo.callbackPrefix.invalid"},
		{"loopback: http 127.0.0.1", true, "http://127.0.0.1:9/cb", "http://127.0.0.1:9/back", ""},
		{"loopback: http localhost", true, "http://localhost:9/cb", "http://localhost:9/back", ""},
		{"loopback: http ::1", true, "http://[::1]:9/cb", "http://[::1]:9/back", ""},
		{"loopback: http public host", true, "http://shop.example/cb", "https://shop.example/back", "merchantInfo.callbackPrefix.invalid"},
		{"loopback: http private address", true, "https://shop.example/cb", "http://192.168.1.10/back", "merchantInfo.fallBack.invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *vippssim.Config) { c.AllowHTTPLoopback = tc.allow })
			b := h.initiateBody("https-1", 1000)
			mi := b["merchantInfo"].(map[string]any)
			mi["callbackPrefix"], mi["fallBack"] = tc.callback, tc.back
			resp, body := h.do(call{method: "POST", path: "/ecomm/v2/payments", body: b})
			if tc.wantField == "" {
				if resp.StatusCode != 200 {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
				return
			}
			expectError(t, resp, body, 400, "InvalidRequest", tc.wantField)
		})
	}
}

func TestIsApp(t *testing.T) {
	h := newHarness(t)
	b := h.initiateBody("app-1", 1000)
	b["merchantInfo"].(map[string]any)["isApp"] = true
	b["merchantInfo"].(map[string]any)["fallBack"] = "INTENT"
	resp, body := h.do(call{method: "POST", path: "/ecomm/v2/payments", body: b})
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var out struct{ URL string }
	mustJSON(t, body, &out)
	if !strings.HasPrefix(out.URL, "vippsMT://?token=") {
		t.Errorf("isApp url %q", out.URL)
	}
}
