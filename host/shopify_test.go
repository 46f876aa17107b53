package host_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// shopifyCall is one request kasse made to the Shopify Admin API.
type shopifyCall struct {
	method, path, token string
	query               string
	variables           map[string]any
	raw                 string
}

func (c shopifyCall) String() string {
	return c.method + " " + c.path + " token=" + c.token + " " + c.raw
}

// fakeShopify is a Shopify Admin GraphQL API on loopback that records every call kasse makes to it and
// answers the mutations kasse sends the way Shopify does.
type fakeShopify struct {
	mu    sync.Mutex
	calls []shopifyCall
	srv   *httptest.Server
}

func newFakeShopify(t *testing.T) *fakeShopify {
	f := &fakeShopify{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		call := shopifyCall{method: r.Method, path: r.URL.Path, token: r.Header.Get("X-Shopify-Access-Token"), raw: string(body)}
		var req struct {
			Query     string         `json:"query"`
			Variables map[string]any `json:"variables"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			t.Errorf("fake shopify: body is not GraphQL JSON: %v: %s", err, body)
		}
		call.query, call.variables = req.Query, req.Variables
		f.mu.Lock()
		f.calls = append(f.calls, call)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		gid, _ := req.Variables["id"].(string)
		node, _ := json.Marshal(map[string]any{"node": map[string]string{"id": gid}, "userErrors": []any{}})
		switch {
		case strings.Contains(req.Query, "orderMarkAsPaid"):
			order, _ := json.Marshal(map[string]any{"order": map[string]string{"id": gid}, "userErrors": []any{}})
			_, _ = w.Write([]byte(`{"data":{"orderMarkAsPaid":` + string(order) + `,"tagsAdd":` + string(node) + `},` +
				`"extensions":{"cost":{"requestedQueryCost":20,"actualQueryCost":20}}}`))
		case strings.Contains(req.Query, "tagsAdd"):
			_, _ = w.Write([]byte(`{"data":{"tagsAdd":` + string(node) + `},` +
				`"extensions":{"cost":{"requestedQueryCost":10,"actualQueryCost":10}}}`))
		default:
			_, _ = w.Write([]byte(`{"errors":[{"message":"unexpected query","extensions":{"code":"BAD_REQUEST"}}]}`))
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeShopify) snapshot() []shopifyCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]shopifyCall(nil), f.calls...)
}

// count returns how many calls sent a query containing mutation.
func (f *fakeShopify) count(mutation string) int {
	n := 0
	for _, c := range f.snapshot() {
		if strings.Contains(c.query, mutation) {
			n++
		}
	}
	return n
}

// waitCall waits for a call whose query contains mutation and whose raw body contains contains.
func (f *fakeShopify) waitCall(t *testing.T, mutation, contains string) shopifyCall {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		calls := f.snapshot()
		for _, c := range calls {
			if strings.Contains(c.query, mutation) && strings.Contains(c.raw, contains) {
				return c
			}
		}
		if time.Now().After(deadline) {
			var all []string
			for _, c := range calls {
				all = append(all, c.String())
			}
			t.Fatalf("no %s call containing %q; calls so far:\n%s", mutation, contains, strings.Join(all, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestShopifyOrderToCapture drives kasse the way a Shopify shop does: the orders/create webhook (the
// published sample, made a pending Vipps order in NOK) is acknowledged at once and starts a checkout
// after, the customer approves, kasse marks the order paid through the Admin GraphQL API, a redelivery
// and a forged delivery change nothing, and orders/fulfilled captures.
func TestShopifyOrderToCapture(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		shop := newFakeShopify(t)
		const (
			secret     = "shopify-webhook-secret"
			token      = "shpat_test_token"
			orderID    = "820982911946154508" // above 2^53 = 9007199254740992: a float64 would round it
			gid        = "gid://shopify/Order/" + orderID
			apiVersion = "2026-07"
			shopDomain = "jsmith.myshopify.com"
		)
		s := newStack(t, stackOptions{
			redisURL: redisURL,
			extraMerchants: `
  shopi:
    plugin: vipps-ecom
    apiKeyEnv: TEST_API_KEY
    returnUrlPrefixes: ["https://` + shopDomain + `/"]
    vipps:
      baseUrl: {{simURL}}
      merchantSerialNumber: "123456"
      clientId: demo-client-id
      clientSecretEnv: TEST_CLIENT_SECRET
      subscriptionKeyEnv: TEST_SUBSCRIPTION_KEY
    platform:
      kind: shopify
      webhookSecretEnv: TEST_SHOPIFY_SECRET
      baseUrl: ` + shop.srv.URL + `
      accessTokenEnv: TEST_SHOPIFY_TOKEN
      apiVersion: "` + apiVersion + `"
      gatewayId: Vipps MobilePay
`,
			env: map[string]string{"TEST_SHOPIFY_SECRET": secret, "TEST_SHOPIFY_TOKEN": token},
		})
		raw, err := os.ReadFile("../adapters/shopify/testdata/shopify-orders-create.json")
		if err != nil {
			t.Fatal(err)
		}
		// The published sample is a cancelled USD order paid by card; make it a pending Vipps order in NOK.
		replace := func(body string, pairs ...string) string {
			t.Helper()
			for i := 0; i < len(pairs); i += 2 {
				if !strings.Contains(body, pairs[i]) {
					t.Fatalf("order has no %q", pairs[i])
				}
				body = strings.ReplaceAll(body, pairs[i], pairs[i+1])
			}
			return body
		}
		order := replace(string(raw),
			`"cancel_reason": "customer"`, `"cancel_reason": null`,
			`"cancelled_at": "2021-12-31T19:00:00-05:00"`, `"cancelled_at": null`,
			`"financial_status": "voided"`, `"financial_status": "pending"`,
			`"bogus"`, `"Vipps MobilePay"`,
			`"USD"`, `"NOK"`)
		if !strings.Contains(order, `"id": `+orderID+`,`) {
			t.Fatalf("order does not carry the id %s as a JSON number", orderID)
		}

		deliver := func(topic, webhookID, key, body string) result {
			t.Helper()
			return s.do("POST", "/hooks/shopify/shopi", body,
				"Content-Type", "application/json", "Authorization", "",
				"X-Shopify-Topic", topic, "X-Shopify-Shop-Domain", shopDomain, "X-Shopify-API-Version", apiVersion,
				"X-Shopify-Webhook-Id", webhookID, "X-Shopify-Triggered-At", "2026-11-25T12:00:00.000000000Z",
				"X-Shopify-Event-Id", "event-"+webhookID, "X-Shopify-Hmac-Sha256", wooSign(key, []byte(body)))
		}
		expectStatus := func(res result, want string) {
			t.Helper()
			if res.status != http.StatusOK || res.body["status"] != want {
				t.Fatalf("status %d %s, want 200 with status %q", res.status, res.raw, want)
			}
		}

		// orders/create is acknowledged before the work is done: the checkout appears after. The session is
		// stored before its initiate is sent, so wait for the redirect URL: only then does Vipps know the
		// payment the customer approves.
		expectStatus(deliver("orders/create", "wh-create-1", secret, order), "accepted")
		deadline := time.Now().Add(10 * time.Second)
		sess, err := s.kasse.Service.Lookup(t.Context(), "shopi", orderID)
		for (err != nil || sess.RedirectURL == "") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			sess, err = s.kasse.Service.Lookup(t.Context(), "shopi", orderID)
		}
		if err != nil || sess.RedirectURL == "" {
			t.Fatalf("no initiated checkout for Shopify order %s: %v %+v", orderID, err, sess)
		}
		if sess.Reference != orderID || sess.Amount != 35997 || sess.Currency != "NOK" {
			t.Fatalf("checkout reference=%s amount=%d %s, want %s 35997 NOK (359.97 presentment money)",
				sess.Reference, sess.Amount, sess.Currency, orderID)
		}
		expectAmounts(t, s.get(sess.ID), "state=pending amount=35997 authorized=0 captured=0 refunded=0")

		if err := s.sim.Approve(sess.ProviderReference, "91234567"); err != nil {
			t.Fatal(err)
		}
		s.waitState(sess.ID, "authorized")
		paid := shop.waitCall(t, "orderMarkAsPaid", gid)
		if paid.method != http.MethodPost || paid.path != "/admin/api/"+apiVersion+"/graphql.json" || paid.token != token {
			t.Fatalf("orderMarkAsPaid not posted to the Admin API with the access token: %s", paid)
		}
		input, _ := paid.variables["input"].(map[string]any)
		tags, _ := json.Marshal(paid.variables["tags"])
		if input["id"] != gid || paid.variables["id"] != gid ||
			!strings.Contains(string(tags), `"vipps-ref-`+sess.ProviderReference+`"`) {
			t.Fatalf("orderMarkAsPaid does not name %s and tag the Vipps reference %s: %s", gid, sess.ProviderReference, paid)
		}

		// Shopify redelivers with the same X-Shopify-Webhook-Id: dropped.
		expectStatus(deliver("orders/create", "wh-create-1", secret, order), "duplicate")

		// A delivery signed with another secret is refused and claims nothing, not even its webhook id.
		fulfilled := replace(order, `"financial_status": "pending"`, `"financial_status": "paid"`,
			`"fulfillment_status": null`, `"fulfillment_status": "fulfilled"`)
		expectProblem(t, deliver("orders/fulfilled", "wh-fulfilled-1", "wrong-secret", fulfilled), http.StatusUnauthorized, "")
		expectAmounts(t, s.get(sess.ID), "state=authorized amount=35997 authorized=35997 captured=0 refunded=0")

		expectStatus(deliver("orders/fulfilled", "wh-fulfilled-1", secret, fulfilled), "accepted")
		expectAmounts(t, s.waitState(sess.ID, "captured"), "state=captured amount=35997 authorized=35997 captured=35997 refunded=0")
		captured := shop.waitCall(t, "mutation kasseTag", `"vipps-captured"`)
		if captured.token != token || captured.variables["id"] != gid {
			t.Fatalf("capture not reported on %s with the access token: %s", gid, captured)
		}

		// By now every stored delivery has been worked: one checkout, and the order marked paid once.
		again, err := s.kasse.Service.Lookup(t.Context(), "shopi", orderID)
		if err != nil || again.ID != sess.ID {
			t.Fatalf("order %s now maps to %v (%v), want the one checkout %s", orderID, again, err, sess.ID)
		}
		if n := shop.count("orderMarkAsPaid"); n != 1 {
			t.Fatalf("orderMarkAsPaid sent %d times, want once", n)
		}
		for _, c := range shop.snapshot() {
			if c.method != http.MethodPost || c.path != "/admin/api/"+apiVersion+"/graphql.json" || c.token != token {
				t.Fatalf("call outside the Admin GraphQL API or without the token: %s", c)
			}
		}
	})
}
