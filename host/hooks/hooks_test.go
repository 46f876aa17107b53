package hooks_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kassehq/kasse/adapters"
	_ "github.com/kassehq/kasse/adapters/standard"
	"github.com/kassehq/kasse/host/checkout"
	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/hooks"
	"github.com/kassehq/kasse/host/outbound"
	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/problem"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/schemas"
)

const (
	wooSecret     = "woo-secret"
	shopifySecret = "shopify-secret"
	genericSecret = "generic-secret"
)

var now = time.Unix(1_764_000_000, 0)

// fakeCheckouts stands for the checkout service: it records every call and keeps sessions by reference.
type fakeCheckouts struct {
	mu       sync.Mutex
	calls    []string
	sessions map[string]*payment.Session // by merchant/reference
	n        int
	// createErr, when set, is returned by the next Create or CreateExpress calls (one per element).
	createErr []error
	modifyErr error
	// expressOn lists the merchants whose expressCheckout is on; CreateExpress refuses the others as the
	// checkout service does.
	expressOn map[string]bool
	// lookedUp holds the sessions Lookup returned: ModifyFrom must start from one of them (the hooks
	// read the session once, for the order lookup).
	lookedUp map[*payment.Session]bool
}

func newFake() *fakeCheckouts {
	return &fakeCheckouts{sessions: map[string]*payment.Session{}, expressOn: map[string]bool{},
		lookedUp: map[*payment.Session]bool{}}
}

func (f *fakeCheckouts) Create(_ context.Context, co payment.Checkout, key string) (*payment.Session, bool, error) {
	return f.create(co, key, false)
}

func (f *fakeCheckouts) CreateExpress(_ context.Context, co payment.Checkout, key string) (*payment.Session, bool, error) {
	return f.create(co, key, true)
}

func (f *fakeCheckouts) create(co payment.Checkout, key string, express bool) (*payment.Session, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	call := fmt.Sprintf("create %s %s %d %s key=%s", co.Merchant, co.Reference, co.Amount, co.Currency, key)
	if express {
		call = fmt.Sprintf("express %s %s %d %s lines=%d key=%s", co.Merchant, co.Reference, co.Amount, co.Currency,
			len(co.Lines), key)
	}
	f.calls = append(f.calls, call)
	if express && !f.expressOn[co.Merchant] {
		return nil, false, &checkout.ExpressDisabledError{Merchant: co.Merchant}
	}
	if len(f.createErr) > 0 {
		err := f.createErr[0]
		f.createErr = f.createErr[1:]
		return nil, false, err
	}
	f.n++
	s := &payment.Session{ID: fmt.Sprintf("ks%d", f.n), Merchant: co.Merchant, Reference: co.Reference, State: payment.StatePending,
		Amount: co.Amount, Currency: co.Currency, Express: express, RedirectURL: fmt.Sprintf("https://vipps.test/pay/ks%d", f.n)}
	f.sessions[co.Merchant+"/"+co.Reference] = s
	return s, false, nil
}

func (f *fakeCheckouts) ModifyFrom(_ context.Context, sess *payment.Session, op string, amount int64, text, key string) (*payment.Session, error) {
	id := sess.ID
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.lookedUp[sess] {
		return nil, fmt.Errorf("%s of session[%s] from a session Lookup did not return", op, id)
	}
	f.calls = append(f.calls, fmt.Sprintf("%s %s %d %q key=%s", op, id, amount, text, key))
	if f.modifyErr != nil {
		return nil, f.modifyErr
	}
	for _, s := range f.sessions {
		if s.ID == id {
			switch op {
			case "capture":
				s.State, s.CapturedAmount = payment.StateCaptured, s.Amount
			case "refund":
				s.RefundedAmount += amount
			case "cancel":
				s.State = payment.StateCancelled
			}
			c := *s
			return &c, nil
		}
	}
	return nil, store.ErrNotFound
}

func (f *fakeCheckouts) Lookup(_ context.Context, merchant, ref string) (*payment.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sessions[merchant+"/"+ref]
	if !ok {
		return nil, fmt.Errorf("lookup %s: %w", ref, store.ErrNotFound)
	}
	c := *s
	f.lookedUp[&c] = true
	return &c, nil
}

func (f *fakeCheckouts) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

type merchants map[string]config.Merchant

func (m merchants) Merchant(id string) (config.Merchant, bool) { v, ok := m[id]; return v, ok }

type env struct {
	srv   *httptest.Server
	fake  *fakeCheckouts
	hooks *hooks.Hooks
	inbox outbound.Storage
	store store.Store
	logs  *bytes.Buffer
}

func setup(t testing.TB) *env {
	t.Helper()
	return setupWith(t, envOptions{})
}

// envOptions let hooks instances share a store, an inbox and a checkout service, as kasse instances
// sharing Redis do; zero fields get fresh ones.
type envOptions struct {
	fake *fakeCheckouts
	// checkouts, if set, stands for the checkout service instead of fake.
	checkouts  hooks.Checkouts
	store      store.Store
	claims     hooks.Claims // default store
	inbox      outbound.Storage
	pendingTTL time.Duration
}

func setupWith(t testing.TB, o envOptions) *env {
	t.Helper()
	set, err := schemas.Compile()
	if err != nil {
		t.Fatal(err)
	}
	ms := merchants{
		"woo": {ID: "woo", ReturnURLPrefixes: []string{"https://woo.example/"}, Platform: &config.Platform{Kind: "woocommerce",
			WebhookSecret: wooSecret, BaseURL: "https://woo.example", ConsumerKey: "ck", ConsumerSecret: "cs"}},
		"shopi": {ID: "shopi", Platform: &config.Platform{Kind: "shopify", WebhookSecret: shopifySecret,
			BaseURL: "https://jsmith.myshopify.com", AccessToken: "t", GatewayID: "Vipps"}},
		"custom": {ID: "custom", Platform: &config.Platform{Kind: "generic", WebhookSecret: genericSecret}},
		"plain":  {ID: "plain"},
	}
	e := &env{fake: o.fake, inbox: o.inbox, store: o.store, logs: &bytes.Buffer{}}
	if e.fake == nil {
		e.fake = newFake()
	}
	if e.inbox == nil {
		e.inbox = outbound.NewMemoryStorage()
	}
	if e.store == nil {
		e.store = store.NewMemory()
	}
	if o.claims == nil {
		o.claims = e.store
	}
	if o.checkouts == nil {
		o.checkouts = e.fake
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	e.hooks, err = hooks.Mount(r, hooks.Deps{Adapters: adapters.Registered(), Merchants: ms, Checkouts: o.checkouts,
		Claims: o.claims, PendingClaimTTL: o.pendingTTL, Schemas: set, InboxStorage: e.inbox, MaxBodyBytes: 64 << 10,
		Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(e.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(r)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) post(t *testing.T, path string, header http.Header, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func hmacBase64(key string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func kasseSignature(key string, t time.Time, body []byte) string {
	ts := fmt.Sprint(t.Unix())
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(ts + "." + string(body)))
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

func wooHeader(topic, key string, body []byte) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-WC-Webhook-Topic", topic)
	h.Set("X-WC-Webhook-Signature", hmacBase64(key, body))
	return h
}

func fixture(t *testing.T, path string, pairs ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(pairs); i += 2 {
		if !bytes.Contains(b, []byte(pairs[i])) {
			t.Fatalf("%s has no %q", path, pairs[i])
		}
		b = bytes.Replace(b, []byte(pairs[i]), []byte(pairs[i+1]), 1)
	}
	return b
}

// wooOrder is the WooCommerce fixture as a pending NOK order paid with Vipps.
func wooOrder(t *testing.T, pairs ...string) []byte {
	base := []string{`"status": "processing"`, `"status": "pending"`, `"payment_method": "bacs"`, `"payment_method": "vipps"`,
		`"currency": "USD"`, `"currency": "NOK"`}
	return fixture(t, "../../adapters/woocommerce/testdata/woocommerce-order-created.json", append(base, pairs...)...)
}

func wantProblem(t *testing.T, resp *http.Response, body []byte, status int, typ string) problem.Problem {
	t.Helper()
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("got %d %s: %s, want a %d problem", resp.StatusCode, resp.Header.Get("Content-Type"), body, status)
	}
	var p problem.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != "https://kasse.dev/problems/"+typ || p.Status != status || !strings.HasPrefix(p.Instance, "urn:kasse:request:") {
		t.Errorf("problem %+v, want type %s", p, typ)
	}
	return p
}

func result(t *testing.T, resp *http.Response, body []byte) hooks.Result {
	t.Helper()
	if resp.StatusCode != 200 {
		t.Fatalf("got %d: %s", resp.StatusCode, body)
	}
	var r hooks.Result
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return r
}

func TestWooCommercePing(t *testing.T) {
	e := setup(t)
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "User-Agent": {"WooCommerce/9.0 Hookshot (WordPress/6.5)"}}
	resp, body := e.post(t, "/hooks/woocommerce/woo", h, []byte("webhook_id=142"))
	if resp.StatusCode != 200 || len(body) != 0 {
		t.Errorf("ping answered %d %q, want exactly 200", resp.StatusCode, body)
	}
	if len(e.fake.log()) != 0 {
		t.Errorf("ping had effects: %v", e.fake.log())
	}
}

func TestWooCommerceFlow(t *testing.T) {
	e := setup(t)
	order := wooOrder(t)
	// The shop's payment step asks synchronously.
	resp, body := e.post(t, "/hooks/woocommerce/woo/checkout", wooHeader("", wooSecret, order), order)
	r := result(t, resp, body)
	if r.Status != "checkout" || r.RedirectURL != "https://vipps.test/pay/ks1" || r.SessionID != "ks1" || r.State != payment.StatePending {
		t.Errorf("checkout result %+v", r)
	}
	// The order.created webhook for the same order finds the same session.
	resp, body = e.post(t, "/hooks/woocommerce/woo", wooHeader("order.created", wooSecret, order), order)
	if r := result(t, resp, body); r.SessionID != "ks1" {
		t.Errorf("webhook result %+v", r)
	}
	// Completed captures; repeated deliveries are the checkout service's to make idempotent (same key).
	completed := wooOrder(t, `"status": "pending"`, `"status": "completed"`)
	resp, body = e.post(t, "/hooks/woocommerce/woo", wooHeader("order.updated", wooSecret, completed), completed)
	if r := result(t, resp, body); r.Status != "capture" || r.State != payment.StateCaptured {
		t.Errorf("capture result %+v", r)
	}
	// A partial refund, then the same refund again (WooCommerce sends the whole order every time).
	refunded := wooOrder(t, `"status": "pending"`, `"status": "completed"`, `"refunds": []`, `"refunds": [{"id": 9, "reason": "", "total": "-5.00"}]`)
	for range 2 {
		resp, body = e.post(t, "/hooks/woocommerce/woo", wooHeader("order.updated", wooSecret, refunded), refunded)
		result(t, resp, body)
	}
	want := []string{
		"create woo 727 2935 NOK key=woocommerce:order:727:after:first",
		`capture ks1 0 "Order 727 completed" key=woocommerce:capture`,
		`refund ks1 500 "Refund for order 727" key=woocommerce:refund-total:500`,
	}
	if got := e.fake.log(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestWooCommerceRefusals(t *testing.T) {
	e := setup(t)
	order := wooOrder(t)
	tampered := bytes.Replace(order, []byte(`"total": "29.35"`), []byte(`"total": "0.35"`), 1)
	resp, body := e.post(t, "/hooks/woocommerce/woo", wooHeader("order.created", wooSecret, order), tampered)
	wantProblem(t, resp, body, 401, "unauthorized")
	resp, body = e.post(t, "/hooks/woocommerce/woo", wooHeader("order.created", "wrong-secret", order), order)
	wantProblem(t, resp, body, 401, "unauthorized")
	resp, body = e.post(t, "/hooks/woocommerce/nobody", wooHeader("order.created", wooSecret, order), order)
	wantProblem(t, resp, body, 404, "unknown-merchant")
	resp, body = e.post(t, "/hooks/woocommerce/plain", wooHeader("order.created", wooSecret, order), order)
	wantProblem(t, resp, body, 404, "unknown-merchant")
	resp, body = e.post(t, "/hooks/woocommerce/shopi", wooHeader("order.created", wooSecret, order), order)
	wantProblem(t, resp, body, 404, "unknown-merchant")
	resp, body = e.post(t, "/hooks/magento/woo", wooHeader("order.created", wooSecret, order), order)
	wantProblem(t, resp, body, 404, "unknown-adapter")
	big := bytes.Repeat([]byte(" "), 65<<10)
	resp, body = e.post(t, "/hooks/woocommerce/woo", wooHeader("order.created", wooSecret, big), big)
	wantProblem(t, resp, body, 413, "body-too-large")
	if calls := e.fake.log(); len(calls) != 0 {
		t.Errorf("refused deliveries had effects: %v", calls)
	}
	if !strings.Contains(e.logs.String(), "X-WC-Webhook-Signature does not match the body") {
		t.Errorf("refusal not logged: %s", e.logs)
	}

	// Unknown topic: acknowledged and ignored.
	resp, body = e.post(t, "/hooks/woocommerce/woo", wooHeader("product.updated", wooSecret, order), order)
	if r := result(t, resp, body); r.Status != "ignored" || r.Reason != `topic "product.updated" is not used by kasse` {
		t.Errorf("unknown topic %+v", r)
	}
	// A USD order translates, but the checkout schema refuses it, naming the field.
	usd := fixture(t, "../../adapters/woocommerce/testdata/woocommerce-order-created.json", `"status": "processing"`, `"status": "pending"`,
		`"payment_method": "bacs"`, `"payment_method": "vipps"`)
	resp, body = e.post(t, "/hooks/woocommerce/woo", wooHeader("order.created", wooSecret, usd), usd)
	p := wantProblem(t, resp, body, 422, "invalid-request")
	if len(p.Errors) != 1 || p.Errors[0].Pointer != "/currency" {
		t.Errorf("errors %+v", p.Errors)
	}
	// Bad money in the body: 400 naming the field.
	bad := wooOrder(t, `"total": "29.35"`, `"total": "29.355"`)
	resp, body = e.post(t, "/hooks/woocommerce/woo", wooHeader("order.created", wooSecret, bad), bad)
	p = wantProblem(t, resp, body, 400, "invalid-request")
	if len(p.Errors) != 1 || p.Errors[0].Pointer != "/total" {
		t.Errorf("errors %+v", p.Errors)
	}
	// The checkout hook with an order that is already paid.
	paid := wooOrder(t, `"status": "pending"`, `"status": "processing"`)
	resp, body = e.post(t, "/hooks/woocommerce/woo/checkout", wooHeader("", wooSecret, paid), paid)
	wantProblem(t, resp, body, 400, "invalid-request")
	if calls := e.fake.log(); len(calls) != 0 {
		t.Errorf("refused deliveries had effects: %v", calls)
	}
	// Capture of an order kasse never saw: acknowledged.
	completed := wooOrder(t, `"status": "pending"`, `"status": "completed"`)
	resp, body = e.post(t, "/hooks/woocommerce/woo", wooHeader("order.updated", wooSecret, completed), completed)
	if r := result(t, resp, body); r.Status != "ignored" || r.Reason != "no kasse payment for order 727" {
		t.Errorf("unknown order %+v", r)
	}
}

func TestProviderFailureIsRetryable(t *testing.T) {
	e := setup(t)
	e.fake.createErr = []error{&checkout.ProviderError{Detail: "timeout", Retryable: true}}
	order := wooOrder(t)
	resp, body := e.post(t, "/hooks/woocommerce/woo/checkout", wooHeader("", wooSecret, order), order)
	wantProblem(t, resp, body, 502, "provider-unavailable")
	resp, body = e.post(t, "/hooks/woocommerce/woo/checkout", wooHeader("", wooSecret, order), order)
	if r := result(t, resp, body); r.SessionID != "ks1" {
		t.Errorf("retry %+v", r)
	}
}

func TestStateErrorIsNothingToDo(t *testing.T) {
	e := setup(t)
	order := wooOrder(t)
	e.post(t, "/hooks/woocommerce/woo", wooHeader("order.created", wooSecret, order), order)
	e.fake.modifyErr = &checkout.StateError{Session: "ks1", State: payment.StatePending,
		Err: fmt.Errorf("capture in state pending: %w", payment.ErrTransition)}
	completed := wooOrder(t, `"status": "pending"`, `"status": "completed"`)
	resp, body := e.post(t, "/hooks/woocommerce/woo", wooHeader("order.updated", wooSecret, completed), completed)
	if r := result(t, resp, body); r.Status != "nothing-to-do" || !strings.Contains(r.Reason, "capture in state pending") {
		t.Errorf("%+v", r)
	}
}

func shopifyHeader(topic, webhookID string, body []byte) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-Shopify-Topic", topic)
	h.Set("X-Shopify-Hmac-Sha256", hmacBase64(shopifySecret, body))
	h.Set("X-Shopify-Shop-Domain", "jsmith.myshopify.com")
	h.Set("X-Shopify-API-Version", "2026-07")
	h.Set("X-Shopify-Webhook-Id", webhookID)
	return h
}

func TestShopifyAckFirstAndDuplicates(t *testing.T) {
	e := setup(t)
	order := fixture(t, "../../adapters/shopify/testdata/shopify-orders-create.json",
		`"cancelled_at": "2021-12-31T19:00:00-05:00"`, `"cancelled_at": null`, `"financial_status": "voided"`, `"financial_status": "pending"`,
		`"bogus"`, `"Vipps"`, `"presentment_currency": "USD"`, `"presentment_currency": "NOK"`)
	order = bytes.ReplaceAll(order, []byte(`"currency_code": "USD"`), []byte(`"currency_code": "NOK"`))
	h := shopifyHeader("orders/create", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", order)
	resp, body := e.post(t, "/hooks/shopify/shopi", h, order)
	if r := result(t, resp, body); r.Status != "accepted" {
		t.Errorf("first delivery %+v", r)
	}
	if calls := e.fake.log(); len(calls) != 0 {
		t.Errorf("work done before the answer: %v", calls)
	}
	// Shopify retries the same delivery: dropped.
	resp, body = e.post(t, "/hooks/shopify/shopi", h, order)
	if r := result(t, resp, body); r.Status != "duplicate" {
		t.Errorf("retry %+v", r)
	}
	// A tampered copy with a new id is refused before it is stored.
	resp, body = e.post(t, "/hooks/shopify/shopi", shopifyHeader("orders/create", "other", order), append(order, ' '))
	wantProblem(t, resp, body, 401, "unauthorized")

	// The inbox worker does the work.
	if n, _ := outboundRun(e); n != 1 {
		t.Fatalf("inbox ran %d jobs", n)
	}
	want := "create shopi 820982911946154508 35997 NOK key=shopify:order:820982911946154508:after:first"
	if calls := e.fake.log(); len(calls) != 1 || calls[0] != want {
		t.Errorf("calls %v", calls)
	}
	st, _ := e.hooks.InboxStats(context.Background())
	if st.Enqueued != 1 || st.Delivered != 1 || st.Pending != 0 {
		t.Errorf("inbox stats %+v", st)
	}
}

func TestShopifyInboxRetries(t *testing.T) {
	e := setup(t)
	e.fake.createErr = []error{&checkout.UnavailableError{What: "payment plugin vipps-ecom"}}
	refund := []byte(`{"id":509562969,"order_id":820982911946154508,"transactions":[{"kind":"refund","status":"success","amount":"41.94"}]}`)
	// No session for this order yet: the refund is acknowledged and, when processed, ignored.
	resp, body := e.post(t, "/hooks/shopify/shopi", shopifyHeader("refunds/create", "r1", refund), refund)
	result(t, resp, body)
	order := []byte(`{"id":820982911946154508,"name":"#1","financial_status":"pending","cancelled_at":null,` +
		`"presentment_currency":"NOK","payment_gateway_names":["Vipps"],"order_status_url":"https://jsmith.myshopify.com/s",` +
		`"total_price_set":{"shop_money":{"amount":"41.94","currency_code":"NOK"},"presentment_money":{"amount":"41.94","currency_code":"NOK"}}}`)
	resp, body = e.post(t, "/hooks/shopify/shopi", shopifyHeader("orders/create", "c1", order), order)
	result(t, resp, body)
	outboundRun(e) // refund ignored; create fails with 503-like error and is rescheduled
	if st, _ := e.hooks.InboxStats(context.Background()); st.Retried != 1 || st.Delivered != 1 || st.Pending != 1 {
		t.Errorf("inbox stats %+v", st)
	}
	if !strings.Contains(e.logs.String(), "no kasse payment for order 820982911946154508") {
		t.Errorf("ignored refund not logged: %s", e.logs)
	}
}

// outboundRun steps the inbox as its workers would, a minute later each time so that retries are due.
func outboundRun(e *env) (int, error) {
	return e.hooks.RunInboxOnce(context.Background(), 10)
}

func genericHeader(t time.Time, body []byte) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Kasse-Signature", kasseSignature(genericSecret, t, body))
	return h
}

func TestGenericHook(t *testing.T) {
	e := setup(t)
	body := []byte(`{"type":"checkout","checkout":{"reference":"1001","amount":49900,"currency":"NOK","description":"Order 1001",` +
		`"returnUrl":"https://custom.example/thanks"}}`)
	h := genericHeader(now, body)
	resp, b := e.post(t, "/hooks/generic/custom", h, body)
	if r := result(t, resp, b); r.Status != "checkout" || r.RedirectURL == "" {
		t.Errorf("%+v", r)
	}
	// Replayed as captured: refused, nothing done again.
	resp, b = e.post(t, "/hooks/generic/custom", h, body)
	wantProblem(t, resp, b, 409, "replayed-delivery")
	// Signed too long ago.
	old := genericHeader(now.Add(-6*time.Minute), body)
	resp, b = e.post(t, "/hooks/generic/custom", old, body)
	wantProblem(t, resp, b, 401, "unauthorized")
	// A capture signed anew.
	capture := []byte(`{"type":"capture","reference":"1001","amount":10000}`)
	resp, b = e.post(t, "/hooks/generic/custom", genericHeader(now, capture), capture)
	if r := result(t, resp, b); r.Status != "capture" {
		t.Errorf("%+v", r)
	}
	want := []string{"create custom 1001 49900 NOK key=generic:order:1001:after:first",
		`capture ks1 10000 "" key=generic:capture:10000`}
	if got := e.fake.log(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls %q", got)
	}
}

func TestNewNeedsDeps(t *testing.T) {
	if _, err := hooks.New(hooks.Deps{}); err == nil || !strings.Contains(err.Error(), "no adapters") {
		t.Errorf("got %v", err)
	}
	if _, err := hooks.New(hooks.Deps{Adapters: adapters.Registered()}); err == nil || err.Error() != "hooks: deps: Merchants is required" {
		t.Errorf("got %v", err)
	}
}

// TestReleaseOnFailure: a sync delivery with a delivery id that fails is not remembered, so the platform
// may retry it.
func TestReleaseOnFailure(t *testing.T) {
	e := setup(t)
	e.fake.createErr = []error{errors.New("store down")}
	body := []byte(`{"type":"checkout","checkout":{"reference":"1002","amount":1000,"currency":"NOK","description":"x",` +
		`"returnUrl":"https://custom.example/thanks"}}`)
	h := genericHeader(now, body)
	resp, b := e.post(t, "/hooks/generic/custom", h, body)
	wantProblem(t, resp, b, 500, "internal")
	resp, b = e.post(t, "/hooks/generic/custom", h, body)
	result(t, resp, b)
}

// BenchmarkShopifyAck measures the synchronous part of a Shopify delivery: verify, de-duplicate, store,
// answer. Shopify allows 5 s in all; this path does no payment work.
func BenchmarkShopifyAck(b *testing.B) {
	e := setup(b)
	order, err := os.ReadFile("../../adapters/shopify/testdata/shopify-orders-create.json")
	if err != nil {
		b.Fatal(err)
	}
	client := e.srv.Client()
	b.ResetTimer()
	for i := range b.N {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/hooks/shopify/shopi", bytes.NewReader(order))
		req.Header = shopifyHeader("orders/cancelled", fmt.Sprint("bench-", i), order)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// TestPayAgainAfterFailure: an order whose payment failed gets a new session under a new key; a live
// session is returned as it is.
func TestPayAgainAfterFailure(t *testing.T) {
	e := setup(t)
	order := wooOrder(t)
	e.post(t, "/hooks/woocommerce/woo/checkout", wooHeader("", wooSecret, order), order)
	e.fake.mu.Lock()
	e.fake.sessions["woo/727"].State = payment.StateRejected
	e.fake.mu.Unlock()
	resp, body := e.post(t, "/hooks/woocommerce/woo/checkout", wooHeader("", wooSecret, order), order)
	if r := result(t, resp, body); r.SessionID != "ks2" {
		t.Errorf("second attempt %+v", r)
	}
	resp, body = e.post(t, "/hooks/woocommerce/woo/checkout", wooHeader("", wooSecret, order), order)
	if r := result(t, resp, body); r.SessionID != "ks2" {
		t.Errorf("third call %+v", r)
	}
	want := []string{"create woo 727 2935 NOK key=woocommerce:order:727:after:first",
		"create woo 727 2935 NOK key=woocommerce:order:727:after:ks1"}
	if got := e.fake.log(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls %q", got)
	}
}

// TestEditedOrderKeepsFirstSession: when the checkout service says the key was used with another body
// (the order changed between two deliveries racing each other), the first session is returned.
func TestEditedOrderKeepsFirstSession(t *testing.T) {
	e := setup(t)
	order := wooOrder(t)
	e.post(t, "/hooks/woocommerce/woo", wooHeader("order.created", wooSecret, order), order)
	e.fake.mu.Lock()
	e.fake.sessions["woo/727"].State = payment.StateExpired
	e.fake.mu.Unlock()
	e.fake.createErr = []error{&checkout.IdempotencyError{Detail: "Idempotency-Key was already used with a different request body"}}
	resp, body := e.post(t, "/hooks/woocommerce/woo", wooHeader("order.created", wooSecret, order), order)
	if r := result(t, resp, body); r.SessionID != "ks1" || r.State != payment.StateExpired {
		t.Errorf("%+v", r)
	}
	e.fake.createErr = []error{&checkout.IdempotencyError{InProgress: true, Detail: "still being processed"}}
	resp, body = e.post(t, "/hooks/woocommerce/woo", wooHeader("order.created", wooSecret, order), order)
	wantProblem(t, resp, body, 409, "idempotency-in-progress")
}

// TestGenericExpress: the generic hook's "express" delivery starts an Express Checkout through
// Checkouts.CreateExpress, is refused with a problem naming the merchant and the setting while the
// merchant's expressCheckout is off, and keeps one live session per order.
func TestGenericExpress(t *testing.T) {
	e := setup(t)
	express := func(ref string) []byte {
		return []byte(`{"type":"express","checkout":{"reference":"` + ref + `","amount":64850,"currency":"NOK",` +
			`"description":"Express order","returnUrl":"https://custom.example/thanks",` +
			`"lines":[{"name":"Mug","quantity":2,"unitPrice":24950},{"name":"Hat","quantity":1,"unitPrice":14950}]}}`)
	}
	body := express("x-1")
	resp, b := e.post(t, "/hooks/generic/custom", genericHeader(now, body), body)
	p := wantProblem(t, resp, b, http.StatusForbidden, "express-disabled")
	if p.Merchant != "custom" || !strings.Contains(p.Detail, `merchant "custom"`) || !strings.Contains(p.Detail, "expressCheckout") {
		t.Errorf("the problem does not name the merchant and the setting: %+v", p)
	}
	if !strings.Contains(e.logs.String(), "status=403") {
		t.Errorf("refusal not logged: %s", e.logs)
	}

	e.fake.mu.Lock()
	e.fake.expressOn["custom"] = true
	e.fake.mu.Unlock()
	// The same delivery, signed anew a second later (the refused one's signature was not kept).
	resp, b = e.post(t, "/hooks/generic/custom", genericHeader(now.Add(time.Second), body), body)
	r := result(t, resp, b)
	if r.Status != "express" || r.SessionID != "ks1" || r.RedirectURL != "https://vipps.test/pay/ks1" || r.State != payment.StatePending {
		t.Errorf("express result %+v", r)
	}
	// Again, and through the synchronous checkout route: the live session is returned.
	resp, b = e.post(t, "/hooks/generic/custom/checkout", genericHeader(now.Add(2*time.Second), body), body)
	if r := result(t, resp, b); r.Status != "express" || r.SessionID != "ks1" {
		t.Errorf("repeated express %+v", r)
	}
	// An Express request for an order that is being paid the regular way is a conflict.
	regular := []byte(`{"type":"checkout","checkout":{"reference":"1001","amount":49900,"currency":"NOK","description":"Order 1001",` +
		`"returnUrl":"https://custom.example/thanks"}}`)
	resp, b = e.post(t, "/hooks/generic/custom", genericHeader(now, regular), regular)
	result(t, resp, b)
	conflict := express("1001")
	resp, b = e.post(t, "/hooks/generic/custom", genericHeader(now, conflict), conflict)
	if p := wantProblem(t, resp, b, http.StatusConflict, "payment-kind-conflict"); !strings.Contains(p.Detail, `order "1001"`) {
		t.Errorf("conflict %+v", p)
	}
	// Once that payment failed, the order may be paid with Express.
	e.fake.mu.Lock()
	e.fake.sessions["custom/1001"].State = payment.StateFailed
	e.fake.mu.Unlock()
	resp, b = e.post(t, "/hooks/generic/custom", genericHeader(now.Add(time.Second), conflict), conflict)
	if r := result(t, resp, b); r.Status != "express" || r.SessionID != "ks3" {
		t.Errorf("express after a failed payment %+v", r)
	}
	// A body the adapter refuses never reaches the checkout service.
	noLines := []byte(`{"type":"express","checkout":{"reference":"x-9","amount":100,"currency":"NOK"}}`)
	resp, b = e.post(t, "/hooks/generic/custom", genericHeader(now, noLines), noLines)
	if p := wantProblem(t, resp, b, http.StatusBadRequest, "invalid-request"); len(p.Errors) != 1 || p.Errors[0].Pointer != "/checkout/lines" {
		t.Errorf("no lines %+v", p)
	}
	want := []string{
		"express custom x-1 64850 NOK lines=2 key=generic:order:x-1:after:first",
		"express custom x-1 64850 NOK lines=2 key=generic:order:x-1:after:first",
		"create custom 1001 49900 NOK key=generic:order:1001:after:first",
		"express custom 1001 64850 NOK lines=2 key=generic:order:1001:after:ks2",
	}
	if got := e.fake.log(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestExpressSchemaRefusal: an Express checkout the adapter accepts but the checkout schema refuses is a
// 422 naming the field, before the checkout service is asked.
func TestExpressSchemaRefusal(t *testing.T) {
	e := setup(t)
	e.fake.expressOn["custom"] = true
	body := []byte(`{"type":"express","checkout":{"reference":"x-1","amount":100,"currency":"USD","description":"x",` +
		`"returnUrl":"https://custom.example/thanks","lines":[{"name":"Mug","quantity":1,"unitPrice":100}]}}`)
	resp, b := e.post(t, "/hooks/generic/custom", genericHeader(now, body), body)
	if p := wantProblem(t, resp, b, http.StatusUnprocessableEntity, "invalid-request"); len(p.Errors) != 1 || p.Errors[0].Pointer != "/currency" {
		t.Errorf("errors %+v", p.Errors)
	}
	if calls := e.fake.log(); len(calls) != 0 {
		t.Errorf("refused delivery had effects: %v", calls)
	}
}
