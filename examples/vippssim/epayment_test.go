package vippssim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kassehq/kasse/examples/vippssim"
	"github.com/kassehq/kasse/host/webhooks"
)

const epRef = "acme-shop-123-order123abc"

func epCreateBody(ref string, amount int64, flow string) map[string]any {
	b := map[string]any{
		"amount": map[string]any{"currency": "NOK", "value": amount}, "paymentMethod": map[string]any{"type": "WALLET"},
		"reference": ref, "userFlow": flow, "paymentDescription": "One pair of socks",
	}
	switch flow {
	case "PUSH_MESSAGE":
		b["customer"] = map[string]any{"phoneNumber": "4791234567"}
	default:
		b["returnUrl"] = "http://127.0.0.1:9/return?ref=" + ref
	}
	return b
}

func (h *harness) epCreate(ref string, amount int64, flow, key string) (*http.Response, []byte) {
	h.t.Helper()
	return h.do(call{method: "POST", path: "/epayment/v1/payments", body: epCreateBody(ref, amount, flow),
		header: map[string]string{"Idempotency-Key": key}})
}

func (h *harness) epModify(ref, action string, amount int64, key string) (*http.Response, []byte) {
	h.t.Helper()
	c := call{method: "POST", path: "/epayment/v1/payments/" + ref + "/" + action, header: map[string]string{"Idempotency-Key": key}}
	if action != "cancel" {
		c.body = map[string]any{"modificationAmount": map[string]any{"currency": "NOK", "value": amount}}
	}
	return h.do(c)
}

type epGet struct {
	State     string `json:"state"`
	Aggregate map[string]struct {
		Value int64 `json:"value"`
	} `json:"aggregate"`
}

func (h *harness) epGet(ref string) epGet {
	h.t.Helper()
	resp, body := h.do(call{method: "GET", path: "/epayment/v1/payments/" + ref})
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("get: %d %s", resp.StatusCode, body)
	}
	var g epGet
	mustJSON(h.t, body, &g)
	return g
}

func (g epGet) String() string {
	return g.State + " a=" + itoa(g.Aggregate["authorizedAmount"].Value) + " c=" + itoa(g.Aggregate["capturedAmount"].Value) +
		" r=" + itoa(g.Aggregate["refundedAmount"].Value) + " x=" + itoa(g.Aggregate["cancelledAmount"].Value)
}

func itoa(n int64) string { return jsonInt(n) }

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func expectProblem(t *testing.T, resp *http.Response, body []byte, status int, title string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	var p struct {
		Type, Title, TraceID string
		Status               int
	}
	mustJSON(t, body, &p)
	if p.Title != title || p.Status != status || p.Type == "" || p.TraceID == "" {
		t.Fatalf("problem %s, want title %q", body, title)
	}
}

// TestEPaymentLifecycle runs a WEB_REDIRECT payment through the landing page, partial and full capture,
// a refund, and the errors the API gives on the way; every request and answer is checked against
// epayment-v1.yaml.
func TestEPaymentLifecycle(t *testing.T) {
	h := newHarness(t)
	resp, body := h.epCreate(epRef, 49900, "WEB_REDIRECT", "create-1")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var created struct{ RedirectURL, Reference string }
	mustJSON(t, body, &created)
	if created.Reference != epRef || !strings.HasPrefix(created.RedirectURL, h.srv.URL+"/epayment-landing/v1?token=") {
		t.Fatalf("create answered %s", body)
	}
	// The same request with the same key is answered the same; another body with it is a conflict.
	if r2, b2 := h.epCreate(epRef, 49900, "WEB_REDIRECT", "create-1"); r2.StatusCode != http.StatusCreated || string(b2) != string(body) {
		t.Fatalf("idempotent replay: %d %s", r2.StatusCode, b2)
	}
	r, b := h.epCreate(epRef, 50000, "WEB_REDIRECT", "create-1")
	expectProblem(t, r, b, http.StatusConflict, "Idempotency error")
	r, b = h.epCreate(epRef, 49900, "WEB_REDIRECT", "create-2")
	expectProblem(t, r, b, http.StatusConflict, "Reference already exists")

	if got := h.epGet(epRef).String(); got != "CREATED a=0 c=0 r=0 x=0" {
		t.Fatalf("after create: %s", got)
	}
	r, b = h.epModify(epRef, "capture", 100, "cap-0")
	expectProblem(t, r, b, http.StatusBadRequest, "Cannot capture before reservation")

	// The customer confirms on the landing page and is sent to returnUrl.
	land := h.epLanding(created.RedirectURL, "91234567", "confirm")
	if loc := land.Header.Get("Location"); land.StatusCode != http.StatusSeeOther || loc != "http://127.0.0.1:9/return?ref="+epRef {
		t.Fatalf("landing: %d to %q", land.StatusCode, loc)
	}
	if got := h.epGet(epRef).String(); got != "AUTHORIZED a=49900 c=0 r=0 x=0" {
		t.Fatalf("after approval: %s", got)
	}
	steps := []struct {
		action string
		amount int64
		key    string
		want   string
	}{
		{"capture", 20000, "cap-1", "AUTHORIZED a=49900 c=20000 r=0 x=0"},
		{"capture", 20000, "cap-1", "AUTHORIZED a=49900 c=20000 r=0 x=0"}, // retried: applied once
		{"capture", 29900, "cap-2", "AUTHORIZED a=49900 c=49900 r=0 x=0"},
		{"refund", 10000, "ref-1", "AUTHORIZED a=49900 c=49900 r=10000 x=0"},
	}
	for _, st := range steps {
		r, b := h.epModify(epRef, st.action, st.amount, st.key)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s %d: %d %s", st.action, st.amount, r.StatusCode, b)
		}
		if got := h.epGet(epRef).String(); got != st.want {
			t.Fatalf("%s %d: %s, want %s", st.action, st.amount, got, st.want)
		}
	}
	r, b = h.epModify(epRef, "capture", 1, "cap-3")
	expectProblem(t, r, b, http.StatusBadRequest, "Capture amount too high")
	r, b = h.epModify(epRef, "refund", 40000, "ref-2")
	expectProblem(t, r, b, http.StatusBadRequest, "Not enough refundable")
	r, b = h.epModify(epRef, "cancel", 0, "can-1")
	expectProblem(t, r, b, http.StatusBadRequest, "Cannot cancel a captured payment")
	r, b = h.epModify(epRef, "capture", 100, "cap-1") // the key of another capture
	expectProblem(t, r, b, http.StatusConflict, "Idempotency error")

	resp, body = h.do(call{method: "GET", path: "/epayment/v1/payments/" + epRef + "/events"})
	var events []struct {
		Name   string
		Amount struct{ Value int64 }
	}
	mustJSON(t, body, &events)
	var names []string
	for _, e := range events {
		names = append(names, e.Name+":"+jsonInt(e.Amount.Value))
	}
	if got := strings.Join(names, " "); resp.StatusCode != http.StatusOK || got != "CREATED:49900 AUTHORIZED:49900 CAPTURED:20000 CAPTURED:29900 REFUNDED:10000" {
		t.Fatalf("events: %d %s", resp.StatusCode, got)
	}
}

// epLanding walks the WEB_REDIRECT landing page: phone, then confirm or reject.
func (h *harness) epLanding(redirectURL, phone, button string) *http.Response {
	h.t.Helper()
	c := browser()
	resp, err := c.Get(redirectURL)
	if err != nil || resp.StatusCode != http.StatusOK {
		h.t.Fatalf("landing page: %v %v", err, resp)
	}
	resp.Body.Close()
	post := func(form string) *http.Response {
		resp, err := c.Post(redirectURL, "application/x-www-form-urlencoded", strings.NewReader(form))
		if err != nil {
			h.t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if r := post("step=phone&phone=" + phone); r.StatusCode != http.StatusOK {
		h.t.Fatalf("phone step: %d", r.StatusCode)
	}
	return post("step=confirm&phone=" + phone + "&action=" + button)
}

// TestEPaymentCancelAndFlows covers cancel before and after authorization, the PUSH_MESSAGE, QR and
// NATIVE_REDIRECT flows, expiry, force approve and the request checks.
func TestEPaymentCancelAndFlows(t *testing.T) {
	h := newHarness(t)
	resp, body := h.epCreate("push-order-0001", 15000, "PUSH_MESSAGE", "k1")
	if resp.StatusCode != http.StatusCreated || strings.Contains(string(body), "redirectUrl") {
		t.Fatalf("push create: %d %s", resp.StatusCode, body)
	}
	if r, b := h.epModify("push-order-0001", "cancel", 0, "c1"); r.StatusCode != http.StatusOK {
		t.Fatalf("cancel: %d %s", r.StatusCode, b)
	}
	if got := h.epGet("push-order-0001").String(); got != "TERMINATED a=0 c=0 r=0 x=15000" {
		t.Fatalf("after cancel: %s", got)
	}

	resp, body = h.epCreate("qr-order-00001", 15000, "QR", "k2")
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), "/qr/v1/") {
		t.Fatalf("qr create: %d %s", resp.StatusCode, body)
	}
	resp, body = h.epCreate("app-order-0001", 15000, "NATIVE_REDIRECT", "k3")
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), "vippsMT://") {
		t.Fatalf("native create: %d %s", resp.StatusCode, body)
	}
	if err := h.sim.ApproveEPayment("app-order-0001", ""); err != nil {
		t.Fatal(err)
	}
	if r, b := h.epModify("app-order-0001", "capture", 5000, "c2"); r.StatusCode != http.StatusOK {
		t.Fatalf("capture: %d %s", r.StatusCode, b)
	}
	if r, b := h.epModify("app-order-0001", "cancel", 0, "c3"); r.StatusCode != http.StatusOK {
		t.Fatalf("cancel rest: %d %s", r.StatusCode, b)
	}
	if got := h.epGet("app-order-0001").String(); got != "AUTHORIZED a=15000 c=5000 r=0 x=10000" {
		t.Fatalf("after partial capture and cancel: %s", got)
	}

	// Force approve (test environment) and expiry.
	h.epCreate("force-order-01", 15000, "PUSH_MESSAGE", "k4")
	if r, b := h.do(call{method: "POST", path: "/epayment/v1/test/payments/force-order-01/approve",
		body: map[string]any{"customer": map[string]any{"phoneNumber": "4791234567"}}}); r.StatusCode != http.StatusOK {
		t.Fatalf("force approve: %d %s", r.StatusCode, b)
	}
	if got := h.epGet("force-order-01").State; got != "AUTHORIZED" {
		t.Fatalf("after force approve: %s", got)
	}
	h.epCreate("late-order-001", 15000, "PUSH_MESSAGE", "k5")
	h.clock.Advance(11 * time.Minute)
	if got := h.epGet("late-order-001").State; got != "EXPIRED" {
		t.Fatalf("after the payment TTL: %s", got)
	}
	h.epCreate("gone-order-001", 15000, "PUSH_MESSAGE", "k6")
	if err := h.sim.RejectEPayment("gone-order-001"); err != nil {
		t.Fatal(err)
	}
	if got := h.epGet("gone-order-001").State; got != "ABORTED" {
		t.Fatalf("after reject: %s", got)
	}

	// Refused requests.
	r, b := h.do(call{method: "POST", path: "/epayment/v1/payments", body: epCreateBody("x-order-00001", 15000, "WEB_REDIRECT"),
		header: map[string]string{"Idempotency-Key": ""}, invalid: true})
	expectProblem(t, r, b, http.StatusBadRequest, "Bad Request")
	r, b = h.epCreate("small-order-01", 99, "WEB_REDIRECT", "k7")
	expectProblem(t, r, b, http.StatusBadRequest, "Amount too small")
	bad := epCreateBody("short", 15000, "PUSH_MESSAGE")
	bad["customer"] = map[string]any{"phoneNumber": "91234567"}
	r, b = h.do(call{method: "POST", path: "/epayment/v1/payments", body: bad, header: map[string]string{"Idempotency-Key": "k8"}, invalid: true})
	expectProblem(t, r, b, http.StatusBadRequest, "Bad Request")
	if !strings.Contains(string(b), "reference") || !strings.Contains(string(b), "customer.phoneNumber") {
		t.Fatalf("problem does not name both fields: %s", b)
	}
	r, b = h.do(call{method: "POST", path: "/epayment/v1/payments/app-order-0001/cancel",
		header: map[string]string{"Merchant-Serial-Number": "", "Idempotency-Key": "c9"}, invalid: true})
	expectProblem(t, r, b, http.StatusBadRequest, "Bad Request")
}

// hookSink is kasse's side of a webhook: it verifies each delivery with host/webhooks against the secret
// and can fail the first deliveries on purpose.
type hookSink struct {
	t      *testing.T
	srv    *httptest.Server
	now    func() time.Time
	mu     sync.Mutex
	secret string
	fail   int // answer 500 to this many more deliveries
	got    []string
	errs   []string
}

func newHookSink(t *testing.T, now func() time.Time) *hookSink {
	k := &hookSink{t: t, now: now}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		k.mu.Lock()
		defer k.mu.Unlock()
		if err := webhooks.Verify(k.secret, webhooks.RequestFrom(r, body), k.now(), time.Minute); err != nil {
			k.errs = append(k.errs, err.Error())
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if k.fail > 0 {
			k.fail--
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		var ev struct{ Reference, Name string }
		_ = json.Unmarshal(body, &ev)
		k.got = append(k.got, ev.Reference+":"+ev.Name)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(k.srv.Close)
	return k
}

func (k *hookSink) events() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return strings.Join(k.got, " ")
}

// TestWebhooks registers a webhook, checks list and delete, and checks that deliveries are signed (as
// host/webhooks verifies them), valid WebhookEvents, retried after failures, and in order per payment.
func TestWebhooks(t *testing.T) {
	h := newHarness(t, func(c *vippssim.Config) { c.WebhookRetry, c.WebhookRetryMax = 5*time.Millisecond, 20*time.Millisecond })
	sink := newHookSink(t, h.clock.Now)
	resp, body := h.do(call{method: "POST", path: "/webhooks/v1/webhooks", body: map[string]any{
		"url": sink.srv.URL + "/v1/vipps/demo/webhooks?x=1", "events": []string{"epayments.payment.created.v1",
			"epayments.payment.authorized.v1", "epayments.payment.captured.v1", "epayments.payment.aborted.v1"}}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("register: %d %s", resp.StatusCode, body)
	}
	var reg struct{ ID, Secret string }
	mustJSON(t, body, &reg)
	sink.mu.Lock()
	sink.secret = reg.Secret
	sink.fail = 3
	sink.mu.Unlock()

	h.epCreate("hook-order-001", 15000, "PUSH_MESSAGE", "k1")
	h.epCreate("hook-order-002", 15000, "PUSH_MESSAGE", "k2")
	if err := h.sim.ApproveEPayment("hook-order-001", ""); err != nil {
		t.Fatal(err)
	}
	h.epModify("hook-order-001", "capture", 15000, "c1")
	if err := h.sim.RejectEPayment("hook-order-002"); err != nil {
		t.Fatal(err)
	}
	if !h.sim.FlushWebhooks(5 * time.Second) {
		t.Fatal("webhooks still queued")
	}
	// Per payment, in order, each once (a failed attempt is retried, not skipped).
	var one, two []string
	for _, e := range strings.Fields(sink.events()) {
		if strings.HasPrefix(e, "hook-order-001") {
			one = append(one, e)
		} else {
			two = append(two, e)
		}
	}
	if got := strings.Join(one, " "); got != "hook-order-001:CREATED hook-order-001:AUTHORIZED hook-order-001:CAPTURED" {
		t.Errorf("order 1 got %s", got)
	}
	if got := strings.Join(two, " "); got != "hook-order-002:CREATED hook-order-002:ABORTED" {
		t.Errorf("order 2 got %s", got)
	}
	retried := 0
	for _, d := range h.sim.Webhooks() {
		if d.Attempt > 1 {
			retried++
		}
		if err := h.specs.CheckWebhookEvent(d.Body); err != nil {
			t.Errorf("delivery body: %v", err)
		}
	}
	if retried == 0 || len(sink.errs) > 0 {
		t.Errorf("retried %d deliveries; verification errors %v", retried, sink.errs)
	}

	resp, body = h.do(call{method: "GET", path: "/webhooks/v1/webhooks"})
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), reg.ID) {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	if resp, body = h.do(call{method: "DELETE", path: "/webhooks/v1/webhooks/" + reg.ID}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	resp, body = h.do(call{method: "DELETE", path: "/webhooks/v1/webhooks/" + reg.ID})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("delete again: %d %s", resp.StatusCode, body)
	}
	resp, body = h.do(call{method: "POST", path: "/webhooks/v1/webhooks", body: map[string]any{
		"url": "http://example.com/hook", "events": []string{"epayments.payment.settled.v1"}}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "url") || !strings.Contains(string(body), "events") {
		t.Fatalf("bad registration: %d %s", resp.StatusCode, body)
	}
}

// TestWebhookDuplicateAndHold checks the at-least-once modes: duplicates, and an outage after which
// queued events still arrive in order.
func TestWebhookDuplicateAndHold(t *testing.T) {
	h := newHarness(t)
	sink := newHookSink(t, h.clock.Now)
	resp, body := h.do(call{method: "POST", path: "/webhooks/v1/webhooks", body: map[string]any{
		"url": sink.srv.URL + "/hook", "events": []string{"epayments.payment.created.v1", "epayments.payment.authorized.v1"}}})
	var reg struct{ ID, Secret string }
	mustJSON(t, body, &reg)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("register: %d", resp.StatusCode)
	}
	sink.mu.Lock()
	sink.secret = reg.Secret
	sink.mu.Unlock()
	h.sim.SetWebhookMode(vippssim.WebhookHold)
	h.epCreate("held-order-001", 15000, "PUSH_MESSAGE", "k1")
	if err := h.sim.ApproveEPayment("held-order-001", ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if got := sink.events(); got != "" {
		t.Fatalf("held events were sent: %s", got)
	}
	h.sim.SetWebhookMode(vippssim.WebhookDuplicate)
	if !h.sim.FlushWebhooks(5 * time.Second) {
		t.Fatal("webhooks still queued")
	}
	if got := sink.events(); got != "held-order-001:CREATED held-order-001:CREATED held-order-001:AUTHORIZED held-order-001:AUTHORIZED" {
		t.Fatalf("got %s", got)
	}
}

// TestEPaymentManagesEComPayments checks the migration rule: the ePayment API reads, captures, refunds and
// cancels eCom-created payments (and the eCom API sees what it did), while the eCom API does not know
// ePayment-created payments.
func TestEPaymentManagesEComPayments(t *testing.T) {
	h := newHarness(t)
	h.reserved("ecom-order-0001", 30000)
	if got := h.epGet("ecom-order-0001").String(); got != "AUTHORIZED a=30000 c=0 r=0 x=0" {
		t.Fatalf("eCom payment through ePayment: %s", got)
	}
	for _, st := range []struct {
		action string
		amount int64
		want   string
	}{
		{"capture", 10000, "AUTHORIZED a=30000 c=10000 r=0 x=0"},
		{"refund", 4000, "AUTHORIZED a=30000 c=10000 r=4000 x=0"},
		{"cancel", 0, "AUTHORIZED a=30000 c=10000 r=4000 x=20000"},
	} {
		if r, b := h.epModify("ecom-order-0001", st.action, st.amount, "mig-"+st.action); r.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", st.action, r.StatusCode, b)
		}
		if got := h.epGet("ecom-order-0001").String(); got != st.want {
			t.Fatalf("after %s: %s, want %s", st.action, got, st.want)
		}
	}
	d := h.details("ecom-order-0001")
	if got := d.ops(); got != "VOID,REFUND,CAPTURE,RESERVE,INITIATE" {
		t.Fatalf("eCom log after ePayment operations: %s", got)
	}
	if s := d.TransactionSummary; s == nil || s.CapturedAmount != 10000 || s.RefundedAmount != 4000 || s.RemainingAmountToCapture != 0 {
		t.Fatalf("eCom summary: %+v", s)
	}
	// An eCom payment still waiting is terminated by an ePayment cancel.
	h.initiate("ecom-order-0002", 15000)
	if r, b := h.epModify("ecom-order-0002", "cancel", 0, "mig-cancel-2"); r.StatusCode != http.StatusOK {
		t.Fatalf("cancel pending: %d %s", r.StatusCode, b)
	}
	if got := h.details("ecom-order-0002").ops(); got != "CANCEL,INITIATE" {
		t.Fatalf("eCom log after ePayment cancel: %s", got)
	}

	// Not the other way.
	h.epCreate("epay-order-0001", 15000, "PUSH_MESSAGE", "k1")
	resp, body := h.do(call{method: "GET", path: "/ecomm/v2/payments/epay-order-0001/details"})
	expectError(t, resp, body, http.StatusNotFound, "Merchant", "35")
}

func TestEPaymentSimControls(t *testing.T) {
	h := newHarness(t)
	h.epCreate("ctrl-order-001", 15000, "PUSH_MESSAGE", "k1")
	post := func(path, body string) int {
		resp, err := http.Post(h.srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/_sim/epayments/ctrl-order-001/approve", `{"phone":"4798765432"}`); code != http.StatusNoContent {
		t.Fatalf("approve: %d", code)
	}
	if code := post("/_sim/epayments/ctrl-order-001/reject", ``); code != http.StatusConflict {
		t.Fatalf("reject after approve: %d", code)
	}
	if code := post("/_sim/epayments/no-such-order/expire", ``); code != http.StatusNotFound {
		t.Fatalf("expire unknown: %d", code)
	}
	resp, err := http.Get(h.srv.URL + "/_sim/epayments/ctrl-order-001")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var snap vippssim.EPaymentSnapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil || snap.State != "AUTHORIZED" || snap.Phone != "4798765432" {
		t.Fatalf("snapshot %+v %v", snap, err)
	}
}

func TestEPaymentForeignMSN(t *testing.T) {
	h := newHarness(t)
	r, b := h.do(call{method: "POST", path: "/epayment/v1/payments", body: epCreateBody("msn-order-0001", 15000, "WEB_REDIRECT"),
		header: map[string]string{"Idempotency-Key": "k1", "Merchant-Serial-Number": h.other.MerchantSerialNumber}})
	expectProblem(t, r, b, http.StatusForbidden, "Forbidden")
}
