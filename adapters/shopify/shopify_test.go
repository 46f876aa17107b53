package shopify_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/adapters/adaptertest"
	"github.com/kassehq/kasse/adapters/shopify"
	"github.com/kassehq/kasse/host/payment"
)

const secret = "shopify-client-secret"

// sign computes X-Shopify-Hmac-Sha256 independently of the adapter.
func sign(key string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func merchant(gateway string) adapters.Merchant {
	return adapters.Merchant{ID: "shopi", ReturnURLPrefixes: []string{"https://jsmith.myshopify.com/"},
		Platform: &adapters.Platform{Kind: "shopify", WebhookSecretEnv: "S", WebhookSecret: secret,
			BaseURL: "https://jsmith.myshopify.com", GatewayID: gateway, AccessTokenEnv: "T", AccessToken: "shpat_test"}}
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func webhook(topic, key, webhookID string, body []byte) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-Shopify-Topic", topic)
	h.Set("X-Shopify-Hmac-Sha256", sign(key, body))
	h.Set("X-Shopify-Shop-Domain", "jsmith.myshopify.com")
	h.Set("X-Shopify-API-Version", "2026-07")
	h.Set("X-Shopify-Webhook-Id", webhookID)
	h.Set("X-Shopify-Triggered-At", "2025-07-10T16:15:47.000000Z")
	h.Set("X-Shopify-Event-Id", "98880550-7158-44d4-b7cd-2c97c8a091b5")
	return h
}

func derive(t testing.TB, body []byte, pairs ...string) []byte {
	t.Helper()
	for i := 0; i < len(pairs); i += 2 {
		if !bytes.Contains(body, []byte(pairs[i])) {
			t.Fatalf("fixture has no %q", pairs[i])
		}
		body = bytes.Replace(body, []byte(pairs[i]), []byte(pairs[i+1]), 1)
	}
	return body
}

// pendingOrder is the orders/create fixture as an order paid with Vipps and not yet paid or cancelled.
func pendingOrder(t testing.TB) []byte {
	return derive(t, fixture(t, "shopify-orders-create.json"),
		`"cancelled_at": "2021-12-31T19:00:00-05:00"`, `"cancelled_at": null`,
		`"financial_status": "voided"`, `"financial_status": "pending"`,
		`"bogus"`, `"Vipps"`)
}

func TestConformance(t *testing.T) {
	created := fixture(t, "shopify-orders-create.json")
	checkoutCreated := fixture(t, "shopify-checkouts-create.json")
	pending := pendingOrder(t)
	fulfilment := []byte(`{"id":255858046,"order_id":820982911946154508,"status":"success","created_at":"2021-12-31T19:00:00-05:00"}`)
	refund := []byte(`{"id":509562969,"order_id":820982911946154508,"note":"Item damaged","restock":true,` +
		`"transactions":[{"id":389404469,"kind":"refund","status":"success","amount":"41.94","gateway":"Vipps"},` +
		`{"id":389404470,"kind":"refund","status":"failure","amount":"1.00","gateway":"Vipps"}]}`)
	restockOnly := []byte(`{"id":509562970,"order_id":820982911946154508,"transactions":[]}`)
	rotating := merchant("Vipps")
	rotating.Platform.WebhookSecret, rotating.Platform.PreviousWebhookSecret = "new-secret", secret

	adaptertest.Run(t, shopify.Adapter{}, []adaptertest.Fixture{
		{Name: "fixture verbatim, another gateway", Merchant: merchant("vipps"),
			Header: webhook("orders/create", secret, "w1", created), Body: created,
			Want: adapters.Event{Action: adapters.ActionIgnore, DeliveryID: "w1", Reference: "820982911946154508",
				Reason: `payment gateways ["visa" "bogus"] do not include "vipps"`}},
		{Name: "fixture verbatim, cancelled order", Merchant: merchant("bogus"),
			Header: webhook("orders/create", secret, "w2", created), Body: created,
			Want: adapters.Event{Action: adapters.ActionIgnore, Reason: "order is cancelled"}},
		{Name: "pending Vipps order starts a checkout", Merchant: merchant("vipps"),
			Header: webhook("orders/create", secret, "w3", pending), Body: pending,
			Want: adapters.Event{Action: adapters.ActionCheckout, Topic: "orders/create", DeliveryID: "w3",
				Reference: "820982911946154508", Checkout: &payment.Checkout{
					Merchant: "shopi", Reference: "820982911946154508", Amount: 35997, Currency: "USD",
					Description: "Order #9999",
					ReturnURL:   "https://jsmith.myshopify.com/548380009/orders/123456abcd/authenticate?key=abcdefg",
					Lines: []payment.Line{
						{SKU: "SKU2006-001", Name: "Aviator sunglasses", Quantity: 1, UnitPrice: 8999},
						{SKU: "SKU2006-020", Name: "Mid-century lounger", Quantity: 1, UnitPrice: 15999},
						{SKU: "SKU2006-035", Name: "Coffee table", Quantity: 1, UnitPrice: 11999},
					}}}},
		{Name: "checkouts/create fixture verbatim is ignored", Merchant: merchant("vipps"),
			Header: webhook("checkouts/create", secret, "w4", checkoutCreated), Body: checkoutCreated,
			Want: adapters.Event{Action: adapters.ActionIgnore, Reason: `topic "checkouts/create" is not used by kasse`}},
		{Name: "orders/cancelled fixture verbatim cancels", Merchant: merchant("vipps"),
			Header: webhook("orders/cancelled", secret, "w5", created), Body: created,
			Want: adapters.Event{Action: adapters.ActionCancel, Reference: "820982911946154508", Key: "cancel"}},
		{Name: "orders/fulfilled captures", Merchant: merchant("vipps"),
			Header: webhook("orders/fulfilled", secret, "w6", pending), Body: pending,
			Want: adapters.Event{Action: adapters.ActionCapture, Reference: "820982911946154508", Key: "capture"}},
		{Name: "fulfillments/create captures", Merchant: merchant("vipps"),
			Header: webhook("fulfillments/create", secret, "w7", fulfilment), Body: fulfilment,
			Want: adapters.Event{Action: adapters.ActionCapture, Reference: "820982911946154508"}},
		{Name: "refunds/create refunds the successful transactions", Merchant: merchant("vipps"),
			Header: webhook("refunds/create", secret, "w8", refund), Body: refund,
			Want: adapters.Event{Action: adapters.ActionRefund, Reference: "820982911946154508", Amount: 4194,
				Key: "refund:509562969", Text: "Item damaged"}},
		{Name: "refund without money is ignored", Merchant: merchant("vipps"),
			Header: webhook("refunds/create", secret, "w9", restockOnly), Body: restockOnly,
			Want: adapters.Event{Action: adapters.ActionIgnore, Reason: "refund 509562970 has no refund transaction"}},
		{Name: "unknown topic is ignored", Merchant: merchant("vipps"),
			Header: webhook("products/update", secret, "w10", []byte(`{"id":1}`)), Body: []byte(`{"id":1}`),
			Want: adapters.Event{Action: adapters.ActionIgnore}},
		{Name: "old secret during rotation", Merchant: rotating,
			Header: webhook("orders/create", secret, "w11", pending), Body: pending,
			Want: adapters.Event{Action: adapters.ActionCheckout}},
	})
}

// TestIDsAbove2to53 checks the ids survive exactly: float64 would turn 820982911946154508 into
// 820982911946154496.
func TestIDsAbove2to53(t *testing.T) {
	body := pendingOrder(t)
	ev, err := shopify.Adapter{}.Parse(&adapters.Delivery{Merchant: merchant("vipps"),
		Header: webhook("orders/create", secret, "w", body), Body: body})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Reference != "820982911946154508" || ev.Checkout.Reference != "820982911946154508" {
		t.Errorf("reference %q", ev.Reference)
	}
	reqs, err := shopify.Adapter{}.Render(merchant("vipps"), adapters.StatusUpdate{Status: adapters.StatusPaid,
		Reference: ev.Reference, ProviderReference: "kref"})
	if err != nil || !bytes.Contains(reqs[0].Body, []byte(`"gid://shopify/Order/820982911946154508"`)) {
		t.Errorf("render: %v %s", err, reqs[0].Body)
	}
}

func TestVerify(t *testing.T) {
	body := pendingOrder(t)
	a := shopify.Adapter{}
	// Events delivery: unprefixed, lowercase header names (HTTP/2).
	h := http.Header{}
	h["shopify-hmac-sha256"] = []string{sign(secret, body)}
	h.Set("Shopify-Hmac-Sha256", sign(secret, body))
	h.Set("Shopify-Shop-Domain", "JSmith.myshopify.com")
	if err := a.Verify(&adapters.Delivery{Merchant: merchant("vipps"), Header: h, Body: body}); err != nil {
		t.Errorf("unprefixed headers: %v", err)
	}
	// Correctly signed with this merchant's secret, but for another shop.
	h = webhook("orders/create", secret, "w", body)
	h.Set("X-Shopify-Shop-Domain", "other.myshopify.com")
	err := a.Verify(&adapters.Delivery{Merchant: merchant("vipps"), Header: h, Body: body})
	if !errors.Is(err, adapters.ErrUnauthorized) || !strings.Contains(err.Error(), `delivery for shop "other.myshopify.com"`) {
		t.Errorf("other shop: %v", err)
	}
	// A signature that is not base64 of 32 bytes.
	h = webhook("orders/create", secret, "w", body)
	h.Set("X-Shopify-Hmac-Sha256", "not-base64!")
	if err := a.Verify(&adapters.Delivery{Merchant: merchant("vipps"), Header: h, Body: body}); !errors.Is(err, adapters.ErrUnauthorized) {
		t.Errorf("garbage signature: %v", err)
	}
}

func TestRender(t *testing.T) {
	m := merchant("vipps")
	m.Platform.APIVersion = "2025-10"
	reqs, err := shopify.Adapter{}.Render(m, adapters.StatusUpdate{Status: adapters.StatusPaid, Reference: "450789469",
		ProviderReference: "kref", Amount: 2935, Currency: "NOK"})
	if err != nil || len(reqs) != 1 {
		t.Fatalf("%v %v", reqs, err)
	}
	r := reqs[0]
	if r.Method != "POST" || r.URL != "https://jsmith.myshopify.com/admin/api/2025-10/graphql.json" ||
		r.Header.Get("X-Shopify-Access-Token") != "shpat_test" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request %s %s %v", r.Method, r.URL, r.Header)
	}
	want := `{"query":"mutation kasseMarkPaid($input: OrderMarkAsPaidInput!, $id: ID!, $tags: [String!]!) { ` +
		`orderMarkAsPaid(input: $input) { order { id } userErrors { field message } } ` +
		`tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } } }",` +
		`"variables":{"id":"gid://shopify/Order/450789469","input":{"id":"gid://shopify/Order/450789469"},"tags":["vipps-paid","vipps-ref-kref"]}}`
	if string(r.Body) != want {
		t.Errorf("body\n got %s\nwant %s", r.Body, want)
	}
	reqs, _ = shopify.Adapter{}.Render(m, adapters.StatusUpdate{Status: adapters.StatusRefunded, Reference: "450789469"})
	if !bytes.Contains(reqs[0].Body, []byte(`"variables":{"id":"gid://shopify/Order/450789469","tags":["vipps-refunded"]}`)) {
		t.Errorf("refunded body %s", reqs[0].Body)
	}
	for _, tt := range []struct {
		answer, want string
		retry        bool
	}{
		{`{"data":{"orderMarkAsPaid":{"order":{"id":"x"},"userErrors":[]},"tagsAdd":{"node":{"id":"x"},"userErrors":[]}}}`, "", false},
		{`{"errors":[{"message":"Throttled","extensions":{"code":"THROTTLED"}}]}`, "shopify: throttled: retry later", true},
		{`{"errors":[{"message":"Access denied"}]}`, "shopify: graphql error: Access denied", false},
		{`{"data":{"orderMarkAsPaid":{"order":null,"userErrors":[{"field":["id"],"message":"Order does not exist"}]}}}`,
			"shopify: orderMarkAsPaid: Order does not exist", false},
		{`<html>`, "shopify: answer is not GraphQL JSON: invalid character '<' looking for beginning of value", false},
	} {
		err := r.Accept(200, []byte(tt.answer))
		if (tt.want == "" && err != nil) || (tt.want != "" && (err == nil || err.Error() != tt.want)) {
			t.Errorf("%s: got %v, want %q", tt.answer, err, tt.want)
		}
		if errors.Is(err, adapters.ErrRetry) != tt.retry {
			t.Errorf("%s: retry = %v", tt.answer, !tt.retry)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := (shopify.Adapter{}).Validate(merchant("vipps")); err != nil {
		t.Error(err)
	}
	m := merchant("vipps")
	m.Platform = &adapters.Platform{Kind: "shopify", WebhookSecretEnv: "S"}
	want := "baseUrl: shopify needs the store's https://{shop}.myshopify.com URL\naccessTokenEnv: shopify needs an Admin API access token"
	if err := (shopify.Adapter{}).Validate(m); err == nil || err.Error() != want {
		t.Errorf("got %v", err)
	}
}

// FuzzParse feeds arbitrary bodies and topics to Parse: it may refuse them but must not panic.
func FuzzParse(f *testing.F) {
	f.Add(fixture(f, "shopify-orders-create.json"), "orders/create")
	f.Add(pendingOrder(f), "orders/create")
	f.Add(fixture(f, "shopify-checkouts-create.json"), "checkouts/create")
	f.Add(fixture(f, "shopify-orders-create.json"), "orders/cancelled")
	f.Add([]byte(`{"id":1,"order_id":2,"transactions":[{"kind":"refund","status":"success","amount":"1.00"}]}`), "refunds/create")
	f.Add([]byte(`{"order_id":2}`), "fulfillments/create")
	f.Fuzz(func(t *testing.T, body []byte, topic string) {
		h := http.Header{}
		h.Set("X-Shopify-Topic", topic)
		ev, err := shopify.Adapter{}.Parse(&adapters.Delivery{Merchant: merchant("vipps"), Header: h, Body: body})
		if err == nil && ev.Action == adapters.ActionRefund && ev.Amount <= 0 {
			t.Fatalf("refund of %d", ev.Amount)
		}
	})
}
