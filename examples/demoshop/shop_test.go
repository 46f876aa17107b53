package demoshop_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kassehq/kasse/examples/demoshop"
	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/schemas"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testShop is a shop on a real loopback server, talking to a fake kasse, and a browser that does not
// follow redirects.
type testShop struct {
	t     *testing.T
	kasse *fakeKasse
	shop  *demoshop.Shop
	srv   *httptest.Server
	logs  *syncBuffer
	http  *http.Client
}

// newTestShop starts a shop; change, if not nil, adjusts its config.
func newTestShop(t *testing.T, kasse *fakeKasse, change func(*demoshop.Config)) *testShop {
	t.Helper()
	var handler atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.Load().(http.Handler).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	logs := &syncBuffer{}
	cfg := demoshop.Config{
		KasseURL:  kasse.URL(),
		Merchant:  "demo",
		APIKey:    testAPIKey,
		PublicURL: srv.URL,
		Logger:    slog.New(slog.NewTextHandler(logs, nil)),
	}
	if change != nil {
		change(&cfg)
	}
	shop, err := demoshop.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	handler.Store(shop.Handler())
	ts := &testShop{t: t, kasse: kasse, shop: shop, srv: srv, logs: logs, http: &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	t.Cleanup(func() {
		if strings.Contains(logs.String(), testAPIKey) {
			t.Errorf("the API key appears in the shop's logs:\n%s", logs.String())
		}
	})
	return ts
}

// response is what the browser got.
type response struct {
	status   int
	location string
	body     string
	header   http.Header
}

func (ts *testShop) do(req *http.Request) response {
	ts.t.Helper()
	resp, err := ts.http.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatalf("read %s: %v", req.URL, err)
	}
	return response{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(body), header: resp.Header}
}

func (ts *testShop) get(path string) response {
	ts.t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.srv.URL+path, nil)
	if err != nil {
		ts.t.Fatal(err)
	}
	return ts.do(req)
}

func (ts *testShop) post(path string, form url.Values) response {
	ts.t.Helper()
	return ts.postRaw(path, form.Encode())
}

func (ts *testShop) postRaw(path, body string) response {
	ts.t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.srv.URL+path, strings.NewReader(body))
	if err != nil {
		ts.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return ts.do(req)
}

// wantStatus fails the test unless r has status.
func (r response) wantStatus(t *testing.T, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body:\n%s", r.status, status, r.body)
	}
	return r
}

// wantBody fails the test unless the body contains every string.
func (r response) wantBody(t *testing.T, parts ...string) response {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(r.body, p) {
			t.Errorf("body lacks %q:\n%s", p, r.body)
		}
	}
	return r
}

// wantNoBody fails the test if the body contains any of the strings.
func (r response) wantNoBody(t *testing.T, parts ...string) response {
	t.Helper()
	for _, p := range parts {
		if strings.Contains(r.body, p) {
			t.Errorf("body contains %q:\n%s", p, r.body)
		}
	}
	return r
}

var opKeyInput = regexp.MustCompile(`name="key" value="([0-9a-f]{16})"`)

// opKey returns the hidden key of the order page's forms.
func (r response) opKey(t *testing.T) string {
	t.Helper()
	m := opKeyInput.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no key field in:\n%s", r.body)
	}
	return m[1]
}

// buy posts the product form and returns the kasse checkout id; the browser must be sent to its redirectUrl.
func (ts *testShop) buy(sku, qty string) string {
	ts.t.Helper()
	before := len(ts.kasse.Calls())
	r := ts.post("/checkout", url.Values{"sku": {sku}, "quantity": {qty}, "flow": {"vipps"}}).wantStatus(ts.t, http.StatusSeeOther)
	calls := ts.kasse.Calls()
	if len(calls) != before+1 {
		ts.t.Fatalf("checkout made %d kasse calls, want 1", len(calls)-before)
	}
	var out struct{ ID, RedirectURL string }
	for id, s := range ts.kasse.sessionsByKey(calls[len(calls)-1].IdempotencyKey) {
		out.ID, out.RedirectURL = id, s
	}
	if r.location != out.RedirectURL {
		ts.t.Fatalf("redirected to %q, want kasse's redirectUrl %q", r.location, out.RedirectURL)
	}
	return out.ID
}

// sessionsByKey returns {session id: redirectUrl} of the checkout created with this Idempotency-Key.
func (k *fakeKasse) sessionsByKey(key string) map[string]string {
	k.mu.Lock()
	defer k.mu.Unlock()
	use, ok := k.checkoutKeys[key]
	if !ok {
		k.t.Fatalf("no checkout with Idempotency-Key %q", key)
	}
	return map[string]string{use.id: k.sessions[use.id].RedirectURL}
}

func TestProductPages(t *testing.T) {
	var express atomic.Bool
	ts := newTestShop(t, newFakeKasse(t), func(c *demoshop.Config) { c.ExpressEnabled = express.Load })

	home := ts.get("/").wantStatus(t, http.StatusOK)
	home.wantBody(t, `<a href="/products/SOCK-42">Wool socks, size 42</a>`, "499,00 kr",
		`<a href="/products/HAT-1">Knitted hat</a>`, "349,00 kr", `<a href="/products/MITT-M">`, "299,50 kr",
		`<html lang="en">`)
	if ct := home.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if csp := home.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}

	page := ts.get("/products/SOCK-42").wantStatus(t, http.StatusOK)
	page.wantBody(t, "<h1>Wool socks, size 42</h1>", "499,00 kr",
		`<form method="post" action="/checkout">`, `<input type="hidden" name="sku" value="SOCK-42">`,
		`<label for="quantity">`, `id="quantity" name="quantity" type="number"`, `min="1" max="99"`,
		`<label for="phone">`, `<button type="submit" class="vipps" name="flow" value="vipps">Pay with Vipps</button>`)
	page.wantNoBody(t, "Vipps Express Checkout", "<script")

	express.Store(true)
	ts.get("/products/SOCK-42").wantStatus(t, http.StatusOK).wantBody(t, "Pay with Vipps",
		`<button type="submit" name="flow" value="express">Vipps Express Checkout</button>`)
	express.Store(false)
	ts.get("/products/SOCK-42").wantNoBody(t, "Vipps Express Checkout")

	if n := len(ts.kasse.Calls()); n != 0 {
		t.Errorf("product pages made %d kasse calls", n)
	}
}

func TestNotFound(t *testing.T) {
	ts := newTestShop(t, newFakeKasse(t), nil)
	for _, path := range []string{"/products/NOPE", "/products/sock-42", "/products/", "/nothing", "/orders/1001",
		"/orders/1001/thanks", "/orders/abc", "/orders/-1", "/orders/0000000001001", "/orders/1001/capture"} {
		t.Run(path, func(t *testing.T) {
			ts.get(path).wantStatus(t, http.StatusNotFound).wantBody(t, "<h1>Not found</h1>")
		})
	}
	ts.post("/checkout", url.Values{"sku": {"NOPE"}, "quantity": {"1"}}).wantStatus(t, http.StatusNotFound).
		wantBody(t, "There is no product with this SKU.")
	ts.post("/orders/1001/capture", url.Values{}).wantStatus(t, http.StatusNotFound)
	if n := len(ts.kasse.Calls()); n != 0 {
		t.Errorf("made %d kasse calls", n)
	}
}

// TestReturnedPage: a checkout made with curl (examples/checkout.json) returns to /returned, which says the
// shop has no order for it instead of showing another order; its reference is escaped.
func TestReturnedPage(t *testing.T) {
	ts := newTestShop(t, newFakeKasse(t), nil)
	for _, tc := range []struct{ path, want string }{
		{"/returned?ref=curl-1", "Checkout curl-1 was created with kasse&#39;s API directly"},
		{"/returned", "Checkout (no reference) was created"},
		{"/returned?ref=%3Cb%3E", "Checkout &lt;b&gt; was created"},
	} {
		ts.get(tc.path).wantStatus(t, http.StatusOK).wantBody(t, "<h1>Back from Vipps</h1>").wantBody(t, tc.want)
	}
	if n := len(ts.kasse.Calls()); n != 0 {
		t.Errorf("made %d kasse calls", n)
	}

	// The README's example checkout returns here, on the demo shop the example config allows.
	raw, err := os.ReadFile("../checkout.json")
	if err != nil {
		t.Fatal(err)
	}
	var co struct{ Reference, ReturnURL string }
	if err := json.Unmarshal(raw, &co); err != nil {
		t.Fatal(err)
	}
	if co.ReturnURL != "http://127.0.0.1:8081/returned?ref="+co.Reference {
		t.Errorf("examples/checkout.json returns to %q", co.ReturnURL)
	}
}

func TestCheckoutRefusesBadInput(t *testing.T) {
	big := demoshop.Product{SKU: "CAR", Name: "A small car", Price: demoshop.MaxAmount}
	ts := newTestShop(t, newFakeKasse(t), func(c *demoshop.Config) {
		c.Products = append(demoshop.DefaultProducts(), big)
	})
	for _, tc := range []struct {
		name   string
		body   string
		status int
		want   string
	}{
		{"quantity 0", "sku=SOCK-42&quantity=0", 422, "Quantity must be a whole number from 1 to 99."},
		{"quantity 100", "sku=SOCK-42&quantity=100", 422, "Quantity must be a whole number from 1 to 99."},
		{"quantity negative", "sku=SOCK-42&quantity=-1", 422, "Quantity must be"},
		{"quantity plus", "sku=SOCK-42&quantity=%2B1", 422, "Quantity must be"},
		{"quantity decimal", "sku=SOCK-42&quantity=1.5", 422, "Quantity must be"},
		{"quantity exponent", "sku=SOCK-42&quantity=1e1", 422, "Quantity must be"},
		{"quantity words", "sku=SOCK-42&quantity=two", 422, "Quantity must be"},
		{"quantity empty", "sku=SOCK-42&quantity=", 422, "Quantity must be"},
		{"quantity missing", "sku=SOCK-42", 422, "Quantity must be"},
		{"quantity inner space", "sku=SOCK-42&quantity=1+0", 422, "Quantity must be"},
		{"quantity huge", "sku=SOCK-42&quantity=99999999999999999999999", 422, "Quantity must be"},
		{"quantity twice", "sku=SOCK-42&quantity=1&quantity=2", 400, "more than once"},
		{"sku twice", "sku=SOCK-42&sku=HAT-1&quantity=1", 400, "more than once"},
		{"sku missing", "quantity=1", 404, "There is no product with this SKU."},
		{"phone short", "sku=SOCK-42&quantity=1&phone=1234", 422, "Mobile number must be 8 digits"},
		{"phone letters", "sku=SOCK-42&quantity=1&phone=9123456a", 422, "Mobile number must be 8 digits"},
		{"phone foreign", "sku=SOCK-42&quantity=1&phone=%2B4691234567", 422, "Mobile number must be 8 digits"},
		{"both bad", "sku=SOCK-42&quantity=0&phone=1", 422, "Mobile number must be 8 digits"},
		{"total too large", "sku=CAR&quantity=2", 422, "more than Vipps takes in one payment (650000,00 kr)"},
		{"unknown flow", "sku=SOCK-42&quantity=1&flow=card", 400, "Unknown payment method."},
		{"express when off", "sku=SOCK-42&quantity=1&flow=express", 400, "not offered"},
		{"bad encoding", "sku=SOCK-42&quantity=%zz", 400, "The form could not be read."},
		{"too large", "sku=SOCK-42&quantity=1&x=" + strings.Repeat("a", 9000), 400, "The form could not be read."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.postRaw("/checkout", tc.body).wantStatus(t, tc.status).wantBody(t, tc.want)
			if tc.status == 422 {
				r.wantBody(t, `role="alert"`, `aria-invalid="true"`, "Pay with Vipps")
			}
		})
	}
	if n := len(ts.kasse.Calls()); n != 0 {
		t.Errorf("refused forms made %d kasse calls", n)
	}
	// A refused form keeps what was typed, escaped.
	ts.post("/checkout", url.Values{"sku": {"SOCK-42"}, "quantity": {`"><script>x</script>`}}).
		wantStatus(t, 422).wantBody(t, `value="&#34;&gt;&lt;script&gt;x&lt;/script&gt;"`).wantNoBody(t, "<script>")
}

// TestExpressCheckout buys with the Express button: the shop asks kasse whether Express is on, starts the
// payment with POST /v1/express/{merchant} and the cart, and shows the address and shipping Vipps gave.
func TestExpressCheckout(t *testing.T) {
	kasse := newFakeKasse(t)
	ts := newTestShop(t, kasse, func(c *demoshop.Config) { c.ExpressFromKasse = true })
	ts.get("/products/SOCK-42").wantStatus(t, http.StatusOK).wantNoBody(t, "Vipps Express Checkout")
	ts.post("/checkout", url.Values{"sku": {"SOCK-42"}, "quantity": {"1"}, "flow": {"express"}}).
		wantStatus(t, http.StatusBadRequest).wantBody(t, "not offered")

	kasse.mu.Lock()
	kasse.expressOn = true
	kasse.mu.Unlock()
	ts.get("/products/SOCK-42").wantBody(t, `<button type="submit" name="flow" value="express">Vipps Express Checkout</button>`)
	r := ts.post("/checkout", url.Values{"sku": {"SOCK-42"}, "quantity": {"2"}, "flow": {"express"}}).
		wantStatus(t, http.StatusSeeOther)
	call := kasse.lastCall()
	if call.Method != http.MethodPost || call.Path != "/v1/express/demo" {
		t.Fatalf("last kasse call %s %s, want POST /v1/express/demo", call.Method, call.Path)
	}
	var body struct {
		Amount int64
		Lines  []struct{ SKU string }
	}
	if err := json.Unmarshal(call.Body, &body); err != nil || body.Amount != 99800 || len(body.Lines) != 1 {
		t.Fatalf("express body %s (%v)", call.Body, err)
	}
	id, _, _ := strings.Cut(strings.TrimPrefix(r.header.Get("Location"), kasse.URL()+"/landing/"), "?")
	ts.get("/orders/1001/thanks").wantBody(t, "Vipps has not told us the address and shipping yet")
	kasse.authorizeExpress(id)
	ts.get("/orders/1001/thanks").wantStatus(t, http.StatusOK).wantBody(t, "Payment authorized",
		"Ada Lovelace, ada@example.com", "Dronning Eufemias gate 42, 0191 OSLO, NO", "Posten Servicepakke – <data value=\"9900\">99,00 kr</data>",
		`<data value="109700">1097,00 kr</data>`)
	ts.get("/orders/1001").wantBody(t, "Delivery (Vipps Express Checkout)", "Posten Servicepakke", "Ship (capture)")
}

// TestFlow walks the whole demo: product, checkout, the customer's return, and the merchant's buttons.
func TestFlow(t *testing.T) {
	kasse := newFakeKasse(t)
	ts := newTestShop(t, kasse, nil)

	// Checkout: the shop calls kasse and sends the browser to the redirectUrl.
	r := ts.post("/checkout", url.Values{"sku": {"SOCK-42"}, "quantity": {" 2 "}, "phone": {"+47 912 34 567"},
		"flow": {"vipps"}}).wantStatus(t, http.StatusSeeOther)
	call := kasse.lastCall()
	if call.Method != http.MethodPost || call.Path != "/v1/checkouts" || call.ContentType != "application/json" {
		t.Fatalf("call %s %s (%s)", call.Method, call.Path, call.ContentType)
	}
	var sent map[string]any
	if err := json.Unmarshal(call.Body, &sent); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"merchant": "demo", "reference": "order-1001", "amount": 99800.0, "currency": "NOK",
		"description": "Order 1001: 2 x Wool socks, size 42", "returnUrl": ts.srv.URL + "/orders/1001/thanks",
		"customer": map[string]any{"phoneNumber": "91234567"},
		"lines":    []any{map[string]any{"sku": "SOCK-42", "name": "Wool socks, size 42", "quantity": 2.0, "unitPrice": 49900.0}},
	}
	if got, wantJSON := mustJSON(t, sent), mustJSON(t, want); got != wantJSON {
		t.Errorf("checkout body\n got %s\nwant %s", got, wantJSON)
	}
	if !regexp.MustCompile(`^demoshop-[0-9a-f]{8}-order-1001$`).MatchString(call.IdempotencyKey) {
		t.Errorf("Idempotency-Key %q", call.IdempotencyKey)
	}
	id := "cs000001"
	if r.location != kasse.redirectURL(id) {
		t.Fatalf("Location %q, want %q", r.location, kasse.redirectURL(id))
	}

	// Before paying the thank-you page says the payment is not confirmed.
	ts.get("/orders/1001/thanks").wantStatus(t, http.StatusOK).wantBody(t, "Thank you for your order",
		"Waiting for Vipps")

	// The customer approves; kasse sends the browser back. The state in the query is not trusted.
	kasse.authorize(id)
	thanks := ts.get("/orders/1001/thanks?kasse_checkout="+id+"&kasse_state=captured").wantStatus(t, http.StatusOK)
	thanks.wantBody(t, "<h1>Thank you for your order</h1>", "Order <strong>1001</strong>", "2 × Wool socks, size 42",
		"998,00 kr", "Payment authorized — we will charge you when we ship.", `<a href="/orders/1001">`)
	thanks.wantNoBody(t, "Payment received", "Try again")
	if c := kasse.lastCall(); c.Method != http.MethodGet || c.Path != "/v1/checkouts/"+id || len(c.Body) != 0 {
		t.Errorf("thanks page called %s %s", c.Method, c.Path)
	}

	// The merchant's views.
	ts.get("/orders").wantStatus(t, http.StatusOK).wantBody(t, `<a href="/orders/1001">1001</a>`, "998,00 kr", "authorized")
	page := ts.get("/orders/1001").wantStatus(t, http.StatusOK)
	page.wantBody(t, "<h1>Order 1001</h1>", "State: authorized", ">Ship (capture)</button>", ">Cancel</button>",
		`<label for="capture-amount">`, "Left to capture</th><td class=\"num\">998,00 kr")
	page.wantNoBody(t, ">Refund</button>")
	key := page.opKey(t)

	// Ship part of it.
	r = ts.post("/orders/1001/capture", url.Values{"amount": {"200,50"}, "key": {key}}).wantStatus(t, http.StatusSeeOther)
	if r.location != "/orders/1001?result=1#result" {
		t.Fatalf("Location %q", r.location)
	}
	c := kasse.lastCall()
	if c.Method != http.MethodPost || c.Path != "/v1/checkouts/"+id+"/capture" || string(c.Body) != `{"amount":20050}` ||
		c.IdempotencyKey != strings.Replace(call.IdempotencyKey, "1001", "1001-capture-"+key, 1) {
		t.Fatalf("capture call %s %s %s key %q", c.Method, c.Path, c.Body, c.IdempotencyKey)
	}
	// A double click sends the same key, and kasse captures once.
	ts.post("/orders/1001/capture", url.Values{"amount": {"200,50"}, "key": {key}}).wantStatus(t, http.StatusSeeOther)
	if s := kasse.session(id); s.CapturedAmount != 20050 {
		t.Fatalf("captured %d after a double click, want 20050", s.CapturedAmount)
	}
	page = ts.get("/orders/1001?result=1").wantStatus(t, http.StatusOK)
	page.wantBody(t, `<div id="result" class="ok" role="status">`, "Captured 200,50 kr. The payment is now captured.",
		"State: captured", ">Refund</button>", ">Ship (capture)</button>", ">Cancel</button>",
		"Left to capture</th><td class=\"num\">797,50 kr", "Left to refund</th><td class=\"num\">200,50 kr", "History (from kasse)",
		"<td>created (pending)</td><td>checkout created</td>", "<td>authorized → captured</td><td>capture</td>")
	key = page.opKey(t)

	// Refund part, then the rest.
	ts.post("/orders/1001/refund", url.Values{"amount": {"100 kr"}, "key": {key}}).wantStatus(t, http.StatusSeeOther)
	if c := kasse.lastCall(); c.Path != "/v1/checkouts/"+id+"/refund" || string(c.Body) != `{"amount":10000}` {
		t.Fatalf("refund call %s %s", c.Path, c.Body)
	}
	// The same form's key with another amount is refused by kasse: it is another request.
	r = ts.post("/orders/1001/refund", url.Values{"amount": {"1"}, "key": {key}}).wantStatus(t, http.StatusSeeOther)
	ts.get(r.location).wantBody(t, "Refund failed: Idempotency-Key reused")
	key = ts.get("/orders/1001").opKey(t)
	r = ts.post("/orders/1001/refund", url.Values{"amount": {""}, "key": {key}}).wantStatus(t, http.StatusSeeOther)
	if c := kasse.lastCall(); c.Path != "/v1/checkouts/"+id+"/refund" || len(c.Body) != 0 || c.ContentType != "" {
		t.Fatalf("refund-the-rest call %s %q (%s)", c.Path, c.Body, c.ContentType)
	}
	ts.get(r.location).wantBody(t, "Refunded all that was left; refunded in total 200,50 kr.")

	// Cancel releases what was never shipped.
	key = ts.get("/orders/1001").opKey(t)
	r = ts.post("/orders/1001/cancel", url.Values{"key": {key}}).wantStatus(t, http.StatusSeeOther)
	if c := kasse.lastCall(); c.Path != "/v1/checkouts/"+id+"/cancel" || len(c.Body) != 0 {
		t.Fatalf("cancel call %s %q", c.Path, c.Body)
	}
	page = ts.get(r.location).wantStatus(t, http.StatusOK)
	page.wantBody(t, "Cancelled. The payment is now refunded.", "State: refunded",
		"Nothing can be done with this payment in state refunded.")
	page.wantNoBody(t, ">Ship (capture)</button>", ">Refund</button>", ">Cancel</button>")

	// kasse refuses what the state does not allow; the merchant sees its problem.
	r = ts.post("/orders/1001/capture", url.Values{}).wantStatus(t, http.StatusSeeOther)
	ts.get(r.location).wantBody(t, `class="problem" role="alert"`, "Capture failed: Operation not allowed in this state",
		"capture in state refunded: transition not allowed")

	// The customer's page follows kasse.
	ts.get("/orders/1001/thanks").wantBody(t, "Payment refunded — the money is on its way back to you.")
}

// TestSettlementShown: once kasse has read the payment off the Vipps ledger, the merchant's order page
// shows what was settled and the payout.
func TestSettlementShown(t *testing.T) {
	ts := newTestShop(t, newFakeKasse(t), nil)
	id := ts.buy("HAT-1", "1")
	ts.kasse.authorize(id)
	ts.get("/orders/1001").wantNoBody(t, "Settlement (from the Vipps ledger)")
	ts.kasse.mu.Lock()
	s := ts.kasse.sessions[id]
	s.Settlement = &payment.Settlement{LedgerDate: "2026-12-03", Captured: 29900, Refunded: 10000, Fees: 400,
		Net: 19500, PayoutReference: "Vipps utbet. 2000001 Vippsnr 123456", PayoutDate: "2026-12-05"}
	ts.kasse.mu.Unlock()
	ts.get("/orders/1001").wantStatus(t, http.StatusOK).wantBody(t, "Settlement (from the Vipps ledger)",
		"Ledger date 2026-12-03", "Fees</th><td class=\"num\">4,00 kr", "Net to the bank</th><td class=\"num\">195,00 kr",
		"Vipps utbet. 2000001 Vippsnr 123456, expected 2026-12-05").wantNoBody(t, "does not match")
}

func TestCustomerRejects(t *testing.T) {
	ts := newTestShop(t, newFakeKasse(t), nil)
	id := ts.buy("HAT-1", "1")
	ts.get("/orders/1001").wantBody(t, "State: pending", ">Cancel</button>").wantNoBody(t, ">Ship (capture)</button>")
	ts.kasse.reject(id)
	ts.get("/orders/1001/thanks").wantStatus(t, http.StatusOK).wantBody(t, "Your order is not paid",
		"Payment not completed — it was declined or cancelled in Vipps. You have not been charged.",
		"declined by the user", `<a href="/products/HAT-1">Try again</a>`)
	ts.get("/orders/1001").wantBody(t, "State: rejected", "Nothing can be done")
}

func TestCancelPending(t *testing.T) {
	ts := newTestShop(t, newFakeKasse(t), nil)
	id := ts.buy("MITT-M", "3")
	r := ts.post("/orders/1001/cancel", url.Values{}).wantStatus(t, http.StatusSeeOther)
	if c := ts.kasse.lastCall(); c.Path != "/v1/checkouts/"+id+"/cancel" || c.IdempotencyKey != "" {
		t.Errorf("cancel without a form key: %s key %q", c.Path, c.IdempotencyKey)
	}
	ts.get(r.location).wantBody(t, "Cancelled. The payment is now cancelled.")
	ts.get("/orders/1001/thanks").wantBody(t, "Payment cancelled — you have not been charged.", "898,50 kr")
}

func TestOperationRefusesBadInput(t *testing.T) {
	ts := newTestShop(t, newFakeKasse(t), nil)
	id := ts.buy("SOCK-42", "1")
	ts.kasse.authorize(id)
	calls := len(ts.kasse.Calls())
	for i, tc := range []struct {
		amount string
		want   string
	}{
		{"abc", "The amount must be written in kroner, like 120 or 120,50."},
		{"-5", "The amount must be written in kroner"},
		{"1 000", "The amount must be written in kroner"},
		{"1,234", "The amount must be written in kroner"},
		{"1e3", "The amount must be written in kroner"},
		{"0", "The amount must be at least 0,01 kr"},
		{"0,00 kr", "The amount must be at least 0,01 kr"},
		{"650000,01", "The amount must be at most 650000,00 kr."},
	} {
		t.Run(tc.amount, func(t *testing.T) {
			r := ts.post("/orders/1001/capture", url.Values{"amount": {tc.amount}}).wantStatus(t, http.StatusSeeOther)
			if want := fmt.Sprintf("/orders/1001?result=%d#result", i+1); r.location != want {
				t.Fatalf("Location %q, want %q", r.location, want)
			}
			ts.get(r.location).wantBody(t, `role="alert"`, tc.want)
		})
	}
	ts.postRaw("/orders/1001/refund", "key=XYZ").wantStatus(t, http.StatusBadRequest).wantBody(t, "malformed")
	ts.postRaw("/orders/1001/refund", "amount=1&amount=2").wantStatus(t, http.StatusBadRequest)
	if n := len(ts.kasse.Calls()) - calls; n != 8 {
		// Each result page reads the checkout once; no capture or refund reached kasse.
		t.Errorf("%d kasse calls, want the 8 reads of the result pages", n)
	}
	for _, c := range ts.kasse.Calls()[calls:] {
		if c.Method != http.MethodGet {
			t.Errorf("refused input reached kasse: %s %s", c.Method, c.Path)
		}
	}
}

func TestKasseProblemIsShownEscaped(t *testing.T) {
	kasse := newFakeKasse(t)
	kasse.createFail = &problemDoc{Title: "Request body is invalid", Status: http.StatusUnprocessableEntity,
		Detail: `returnUrl <script>alert(1)</script> refused`,
		Errors: []schemas.Violation{{Pointer: "/returnUrl", Detail: "must start with one of merchant \"demo\"'s returnUrlPrefixes"}}}
	ts := newTestShop(t, kasse, nil)
	r := ts.post("/checkout", url.Values{"sku": {"SOCK-42"}, "quantity": {"1"}}).wantStatus(t, http.StatusBadGateway)
	r.wantBody(t, "We could not start the payment", "Request body is invalid", "(HTTP 422)",
		"returnUrl &lt;script&gt;alert(1)&lt;/script&gt; refused", "<code>/returnUrl</code>",
		"must start with one of merchant &#34;demo&#34;&#39;s returnUrlPrefixes", `<a href="/products/SOCK-42">`)
	r.wantNoBody(t, "<script>")
	ts.get("/orders/1001/thanks").wantStatus(t, http.StatusOK).wantBody(t, "Your order is not paid",
		"The payment was not started: Request body is invalid")
	ts.get("/orders").wantBody(t, "not started (Request body is invalid)")
	r = ts.post("/orders/1001/capture", url.Values{}).wantStatus(t, http.StatusSeeOther)
	ts.get(r.location).wantBody(t, "The payment of this order was never started.")
	if !strings.Contains(ts.logs.String(), "create checkout") {
		t.Errorf("the failure is not logged:\n%s", ts.logs.String())
	}
}

func TestKasseUnreachable(t *testing.T) {
	kasse := newFakeKasse(t)
	ts := newTestShop(t, kasse, nil)
	id := ts.buy("SOCK-42", "1")
	kasse.srv.Close()
	ts.get("/orders/1001/thanks").wantStatus(t, http.StatusOK).
		wantBody(t, "We could not read the payment state just now (The payment service did not answer")
	ts.get("/orders/1001").wantStatus(t, http.StatusOK).
		wantBody(t, "Could not read the payment from kasse").wantNoBody(t, ">Ship (capture)</button>", kasse.URL())
	ts.get("/orders").wantStatus(t, http.StatusOK).wantBody(t, "unknown: The payment service did not answer")
	r := ts.post("/checkout", url.Values{"sku": {"SOCK-42"}, "quantity": {"1"}}).wantStatus(t, http.StatusBadGateway)
	r.wantBody(t, "The payment service did not answer").wantNoBody(t, kasse.URL())
	r = ts.post("/orders/1001/capture", url.Values{}).wantStatus(t, http.StatusSeeOther)
	ts.get(r.location).wantBody(t, "Capture failed: The payment service did not answer")
	if !strings.Contains(ts.logs.String(), id) {
		t.Errorf("the failed reads are not logged with the checkout id:\n%s", ts.logs.String())
	}
}

func TestCrossSitePostRefused(t *testing.T) {
	ts := newTestShop(t, newFakeKasse(t), nil)
	req, err := http.NewRequest(http.MethodPost, ts.srv.URL+"/checkout", strings.NewReader("sku=SOCK-42&quantity=1"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	ts.do(req).wantStatus(t, http.StatusForbidden).wantBody(t, "posted from another site")
	if n := len(ts.kasse.Calls()); n != 0 {
		t.Errorf("made %d kasse calls", n)
	}
	req, _ = http.NewRequest(http.MethodPost, ts.srv.URL+"/checkout", strings.NewReader("sku=SOCK-42&quantity=1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	ts.do(req).wantStatus(t, http.StatusSeeOther)
}

// TestConcurrentCheckouts gives every order its own number and its own Idempotency-Key (run with -race).
func TestConcurrentCheckouts(t *testing.T) {
	ts := newTestShop(t, newFakeKasse(t), nil)
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			ts.post("/checkout", url.Values{"sku": {"SOCK-42"}, "quantity": {"1"}}).wantStatus(t, http.StatusSeeOther)
		})
	}
	wg.Wait()
	refs, keys := map[string]bool{}, map[string]bool{}
	for _, c := range ts.kasse.Calls() {
		var body struct{ Reference string }
		if err := json.Unmarshal(c.Body, &body); err != nil {
			t.Fatal(err)
		}
		refs[body.Reference], keys[c.IdempotencyKey] = true, true
	}
	for i := 1001; i < 1001+n; i++ {
		if !refs[fmt.Sprintf("order-%d", i)] {
			t.Errorf("no checkout for order %d; references %v", i, refs)
		}
	}
	if len(keys) != n {
		t.Errorf("%d distinct Idempotency-Keys for %d orders", len(keys), n)
	}
	ts.get("/orders").wantStatus(t, http.StatusOK).wantBody(t, `<a href="/orders/1020">1020</a>`, `<a href="/orders/1001">1001</a>`)
}

// TestRestartedShopGetsNewCheckouts: a restarted shop numbers orders from 1001 again, but kasse still
// remembers the first run's Idempotency-Keys; the new order must get its own checkout, not a replay.
func TestRestartedShopGetsNewCheckouts(t *testing.T) {
	kasse := newFakeKasse(t)
	first := newTestShop(t, kasse, nil).buy("SOCK-42", "1")
	second := newTestShop(t, kasse, nil).buy("HAT-1", "1")
	if first == second {
		t.Fatalf("the restarted shop's order 1001 got the first run's checkout %s", first)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	valid := func() demoshop.Config {
		return demoshop.Config{KasseURL: "http://127.0.0.1:8080", Merchant: "demo", APIKey: "k", PublicURL: "http://127.0.0.1:8081"}
	}
	if _, err := demoshop.New(valid()); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*demoshop.Config)
		want   string
	}{
		{"no kasse url", func(c *demoshop.Config) { c.KasseURL = "" }, `demoshop: kasse url: "": must be an absolute http or https URL`},
		{"relative kasse url", func(c *demoshop.Config) { c.KasseURL = "/v1" }, "demoshop: kasse url"},
		{"kasse url with query", func(c *demoshop.Config) { c.KasseURL = "http://k/?a=1" }, "must have no credentials, query or fragment"},
		{"ftp public url", func(c *demoshop.Config) { c.PublicURL = "ftp://shop" }, "demoshop: public url"},
		{"public url with user", func(c *demoshop.Config) { c.PublicURL = "http://u:p@shop" }, "must have no credentials"},
		{"merchant", func(c *demoshop.Config) { c.Merchant = "Demo Shop" }, `demoshop: merchant "Demo Shop"`},
		{"api key newline", func(c *demoshop.Config) { c.APIKey = "secret\nX-Evil: 1" }, "demoshop: api key: must be printable ASCII without spaces"},
		{"empty catalogue", func(c *demoshop.Config) { c.Products = []demoshop.Product{} }, "the catalogue is empty"},
		{"bad sku", func(c *demoshop.Config) { c.Products = []demoshop.Product{{SKU: "a/b", Name: "X", Price: 100}} }, `product[0]: sku "a/b"`},
		{"duplicate sku", func(c *demoshop.Config) {
			c.Products = []demoshop.Product{{SKU: "A", Name: "X", Price: 100}, {SKU: "A", Name: "Y", Price: 100}}
		}, `product[1]: sku "A" listed twice`},
		{"no name", func(c *demoshop.Config) { c.Products = []demoshop.Product{{SKU: "A", Price: 100}} }, "name: must be 1 to 60 characters"},
		{"name with control", func(c *demoshop.Config) { c.Products = []demoshop.Product{{SKU: "A", Name: "X\tY", Price: 100}} }, "control characters"},
		{"name padded", func(c *demoshop.Config) { c.Products = []demoshop.Product{{SKU: "A", Name: " X", Price: 100}} }, "spaces"},
		{"price too low", func(c *demoshop.Config) { c.Products = []demoshop.Product{{SKU: "A", Name: "X", Price: 99}} }, `price 99 øre: must be from 100 to 65000000`},
		{"price too high", func(c *demoshop.Config) {
			c.Products = []demoshop.Product{{SKU: "A", Name: "X", Price: demoshop.MaxAmount + 1}}
		}, "must be from 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid()
			tc.change(&cfg)
			_, err := demoshop.New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the error shows the API key: %v", err)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
