package host_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kassehq/kasse/examples/vippssim"
)

// genericHookSecret is the shop merchant's webhook secret in the Express hook tests.
const genericHookSecret = "shop-hook-secret"

// kasseSign computes the generic hook's Kasse-Signature for body at time at, as a shop would (hex
// HMAC-SHA256 over "<unix seconds>.<raw body>"), independently of the adapter's own code.
func kasseSign(secret string, at time.Time, body []byte) string {
	ts := strconv.FormatInt(at.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "." + string(body)))
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// recorder is a provider transport that keeps the body of every request kasse sends to Vipps.
type recorder struct {
	mu     sync.Mutex
	bodies []string
	next   http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		_ = req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(b))
		r.mu.Lock()
		r.bodies = append(r.bodies, req.Method+" "+req.URL.Path+" "+string(b))
		r.mu.Unlock()
	}
	return r.next.RoundTrip(req)
}

// sent returns the recorded requests, "METHOD path body", to exactly the method and path given.
func (r *recorder) sent(methodPath string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, b := range r.bodies {
		if strings.HasPrefix(b, methodPath+" ") {
			out = append(out, b)
		}
	}
	return out
}

// fakeShop is a custom shop's status endpoint, the generic platform's baseUrl: it keeps each status update
// whose Kasse-Signature verifies, and counts the others.
type fakeShop struct {
	mu       sync.Mutex
	updates  []map[string]any
	unsigned int
	// down makes the shop answer 503 to every update, counted in refused.
	down    bool
	refused int
	srv     *httptest.Server
}

func newFakeShop(t *testing.T) *fakeShop {
	f := &fakeShop{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sig := r.Header.Get("Kasse-Signature")
		ts, _, _ := strings.Cut(strings.TrimPrefix(sig, "t="), ",")
		n, _ := strconv.ParseInt(ts, 10, 64)
		var update map[string]any
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.down {
			f.refused++
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if sig == "" || sig != kasseSign(genericHookSecret, time.Unix(n, 0), body) || json.Unmarshal(body, &update) != nil {
			f.unsigned++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		f.updates = append(f.updates, update)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// waitStatus waits for a verified status update for reference.
func (f *fakeShop) waitStatus(t *testing.T, status, reference string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		for _, u := range f.updates {
			if u["status"] == status && u["reference"] == reference {
				f.mu.Unlock()
				return u
			}
		}
		got, unsigned := fmt.Sprint(f.updates), f.unsigned
		f.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no %s update for %s; got %s (%d unsigned)", status, reference, got, unsigned)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newShopStack is a stack with a second merchant, "shop", a custom shop on the generic platform. It is the
// config file's last merchant, so setExpress switches its Express Checkout.
func newShopStack(t *testing.T, redisURL string) (*stack, *recorder, *fakeShop) {
	t.Helper()
	rec := &recorder{next: http.DefaultTransport}
	shop := newFakeShop(t)
	s := newStack(t, stackOptions{redisURL: redisURL, transport: rec,
		extraMerchants: `
  shop:
    plugin: vipps-ecom
    apiKeyEnv: TEST_API_KEY
    returnUrlPrefixes: ["http://shop.test/"]
    vipps:
      baseUrl: {{simURL}}
      merchantSerialNumber: "123456"
      clientId: demo-client-id
      clientSecretEnv: TEST_CLIENT_SECRET
      subscriptionKeyEnv: TEST_SUBSCRIPTION_KEY
    platform:
      kind: generic
      webhookSecretEnv: TEST_SHOP_HOOK_SECRET
      baseUrl: ` + shop.srv.URL + `/kasse-status
`,
		env: map[string]string{"TEST_SHOP_HOOK_SECRET": genericHookSecret}})
	return s, rec, shop
}

// expressDelivery is the generic hook's Express body for reference: what a product page's button sends.
func expressDelivery(reference string, lines ...map[string]any) []byte {
	co := expressBody(reference, lines...)
	delete(co, "merchant") // the merchant is the one in the path
	b, err := json.Marshal(map[string]any{"type": "express", "checkout": co})
	if err != nil {
		panic(err)
	}
	return b
}

// hookSender posts signed deliveries to kasse's platform hooks, each signed with a timestamp a second
// older than the last, so that no two share a signature (kasse refuses a signature it has seen).
type hookSender struct {
	s     *stack
	n     int
	start time.Time
}

// post sends body to path, signed with secret. The timestamps step back from the first post's time, not
// from the clock: a slow request (the race detector, a busy machine) must not make two posts land on
// the same second and so share a signature.
func (h *hookSender) post(path string, body []byte, secret string) result {
	h.s.t.Helper()
	if h.start.IsZero() {
		h.start = time.Now()
	}
	h.n++
	at := h.start.Add(-time.Duration(h.n) * time.Second)
	return h.s.do("POST", path, body, "Authorization", "", "Kasse-Signature", kasseSign(secret, at, body))
}

// TestExpressThroughGenericHook drives Express Checkout the way a custom shop's product-page button does,
// through the signed generic hook instead of POST /v1/express: refused with a problem naming the merchant
// and the setting while expressCheckout is off; once switched on (a config reload), an "eComm Express
// Payment" is initiated at the simulator with kasse's shipping and consent-removal prefixes, the customer
// chooses address and shipping in Vipps, the session keeps them, and the shop hears "paid" signed with
// its secret. Switched off again, the hook refuses new Express deliveries without a restart.
func TestExpressThroughGenericHook(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		s, rec, shop := newShopStack(t, redisURL)
		hooks := &hookSender{s: s}
		requireExpressRoutes(t, s)
		body := expressDelivery("x-1", line("SOCK", 1, 49900))

		res := hooks.post("/hooks/generic/shop", body, genericHookSecret)
		expectProblem(t, res, http.StatusForbidden, "")
		if res.body["type"] != "https://kasse.dev/problems/express-disabled" || res.body["merchant"] != "shop" ||
			!strings.Contains(res.body["detail"].(string), "expressCheckout") {
			t.Fatalf("off: the problem does not name the merchant and the setting: %s", res.raw)
		}
		if got := rec.sent("POST /ecomm/v2/payments"); len(got) != 0 {
			t.Fatalf("a refused Express delivery initiated a payment: %q", got)
		}
		// A wrong signature is refused before anything else.
		expectProblem(t, hooks.post("/hooks/generic/shop", body, "not-the-secret"), http.StatusUnauthorized, "")

		s.setExpress("dynamic")
		res = hooks.post("/hooks/generic/shop", body, genericHookSecret)
		if res.status != http.StatusOK || res.body["status"] != "express" || res.body["state"] != "pending" {
			t.Fatalf("express delivery: %d %s", res.status, res.raw)
		}
		id, _ := res.body["sessionId"].(string)
		if u, _ := res.body["redirectUrl"].(string); !strings.HasPrefix(u, s.simURL+"/") {
			t.Fatalf("redirectUrl %q does not lead to the simulator", u)
		}
		sess := s.get(id)
		orderID, _ := sess.body["providerReference"].(string)
		if sess.body["express"] != true || sess.body["merchant"] != "shop" || sess.body["reference"] != "x-1" {
			t.Fatalf("not an Express session of shop's order x-1: %s", sess.raw)
		}

		// The initiate kasse sent is an Express one, with the merchant's Express prefixes.
		prefix := s.kasse.Service.ExpressPrefix("shop")
		if !strings.HasPrefix(prefix, s.baseURL+"/v1/vipps/shop/express/") {
			t.Fatalf("Express prefix %q has no secret segment", prefix)
		}
		initiates := rec.sent("POST /ecomm/v2/payments")
		if len(initiates) != 1 || !strings.Contains(initiates[0], `"paymentType":"eComm Express Payment"`) ||
			!strings.Contains(initiates[0], `"shippingDetailsPrefix":"`+prefix+`"`) ||
			!strings.Contains(initiates[0], `"consentRemovalPrefix":"`+prefix+`"`) {
			t.Fatalf("initiate sent to Vipps: %q", initiates)
		}
		snap, ok := s.sim.Payment(orderID)
		if !ok || snap.Express == nil || snap.Express.ShippingDetailsPrefix != prefix {
			t.Fatalf("the simulator has no Express payment %s: %+v", orderID, snap)
		}

		// The same button clicked again (a new signature) gets the live session; nothing new is initiated.
		if res := hooks.post("/hooks/generic/shop/checkout", body, genericHookSecret); res.body["sessionId"] != id {
			t.Fatalf("repeated express delivery: %d %s", res.status, res.raw)
		}
		if got := rec.sent("POST /ecomm/v2/payments"); len(got) != 1 {
			t.Fatalf("%d initiates after a repeated delivery, want 1", len(got))
		}

		// The customer ships to Tromsø: Posten costs 149 NOK by the rule, computed from the stored cart.
		addr := vippssim.DemoAddress()
		addr.Line1, addr.PostCode, addr.City = "Storgata 1", "9008", "TROMSØ"
		if err := s.sim.ApproveExpress(context.Background(), orderID, vippssim.ExpressChoice{Phone: "91234567", Address: addr}); err != nil {
			t.Fatal(err)
		}
		sess = s.waitState(id, "authorized")
		expectAmounts(t, sess, "state=authorized amount=49900 authorized=64800 captured=0 refunded=0")
		ship, _ := sess.body["shipping"].(map[string]any)
		if ship["methodId"] != "posten" || ship["cost"] != float64(14900) {
			t.Fatalf("shipping not stored: %s", sess.raw)
		}
		paid := shop.waitStatus(t, "paid", "x-1")
		if paid["session"] != id || paid["providerReference"] != orderID || paid["amount"] != float64(64800) {
			t.Fatalf("paid update %v", paid)
		}

		// Capture through the same hook: goods and shipping.
		capture := []byte(`{"type":"capture","reference":"x-1"}`)
		if res := hooks.post("/hooks/generic/shop", capture, genericHookSecret); res.status != http.StatusOK || res.body["status"] != "capture" {
			t.Fatalf("capture: %d %s", res.status, res.raw)
		}
		expectAmounts(t, s.get(id), "state=captured amount=49900 authorized=64800 captured=64800 refunded=0")

		// Off again, without a restart: a new Express delivery is refused.
		s.setExpress("")
		expectProblem(t, hooks.post("/hooks/generic/shop", expressDelivery("x-2", line("HAT", 1, 34900)), genericHookSecret),
			http.StatusForbidden, "")
		if got := rec.sent("POST /ecomm/v2/payments"); len(got) != 1 {
			t.Fatalf("%d initiates after the refusal, want 1", len(got))
		}
	})
}

// TestExpressHookNeedsTheCart: the generic hook refuses an Express delivery without the cart's lines
// (400, naming the field) and one whose lines do not add up to the amount (422, from the checkout
// service), and neither reaches Vipps.
func TestExpressHookNeedsTheCart(t *testing.T) {
	s, rec, _ := newShopStack(t, "")
	hooks := &hookSender{s: s}
	requireExpressRoutes(t, s)
	s.setExpress("static")
	noLines := []byte(`{"type":"express","checkout":{"reference":"x-3","amount":10000,"currency":"NOK",` +
		`"description":"x","returnUrl":"http://shop.test/thanks"}}`)
	expectProblem(t, hooks.post("/hooks/generic/shop", noLines, genericHookSecret), http.StatusBadRequest, "/checkout/lines")
	wrongSum := []byte(`{"type":"express","checkout":{"reference":"x-3","amount":10000,"currency":"NOK",` +
		`"description":"x","returnUrl":"http://shop.test/thanks","lines":[{"name":"Coat","quantity":1,"unitPrice":120000}]}}`)
	expectProblem(t, hooks.post("/hooks/generic/shop", wrongSum, genericHookSecret), http.StatusUnprocessableEntity, "/amount")
	if got := rec.sent("POST /ecomm/v2/payments"); len(got) != 0 {
		t.Fatalf("refused Express deliveries initiated payments: %q", got)
	}
}
