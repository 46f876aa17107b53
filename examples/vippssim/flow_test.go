package vippssim_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kassehq/kasse/examples/vippssim"
)

// TestFullFlow walks one payment through its whole life the way kasse will:
// token, initiate, the user on the landing page, the callback, details,
// captures and refunds.
func TestFullFlow(t *testing.T) {
	h := newHarness(t)
	const orderID = "acme-shop-123-order123abc"

	// Token response: every field a string, as the spec says.
	resp, body := h.do(call{method: "POST", path: "/accesstoken/get", noAuth: true, header: map[string]string{
		"client_id": h.tenant.ClientID, "client_secret": h.tenant.ClientSecret,
		"Ocp-Apim-Subscription-Key": h.tenant.SubscriptionKey, "Merchant-Serial-Number": h.tenant.MerchantSerialNumber,
	}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	var tok map[string]any
	mustJSON(t, body, &tok)
	for _, k := range []string{"token_type", "expires_in", "ext_expires_in", "expires_on", "not_before", "resource", "access_token"} {
		if _, isStr := tok[k].(string); !isStr {
			t.Errorf("token field %s = %#v, want a string", k, tok[k])
		}
	}
	if tok["token_type"] != "Bearer" || tok["expires_in"] != "3600" || tok["ext_expires_in"] != "0" {
		t.Errorf("token = %v", tok)
	}
	if want := strconv.FormatInt(h.clock.Now().Add(time.Hour).Unix(), 10); tok["expires_on"] != want {
		t.Errorf("expires_on = %v, want %s", tok["expires_on"], want)
	}

	landingURL := h.initiate(orderID, 49900)
	if want := h.srv.URL + "/dwo-api-application/v1/deeplink/vippsgateway?v=2&token="; !strings.HasPrefix(landingURL, want) || tokenOf(t, landingURL) == "" {
		t.Fatalf("url = %q, want prefix %q and a token", landingURL, want)
	}

	d := h.details(orderID)
	if d.TransactionSummary != nil || d.ops() != "INITIATE" {
		t.Fatalf("details before the user acted: summary %v, ops %s", d.TransactionSummary, d.ops())
	}

	// The user on the landing page.
	resp = h.landing(landingURL, "91234567", "confirm")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "https://shop.example/return/"+orderID {
		t.Fatalf("confirm: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// The callback.
	cb := h.sink.wait(t)
	if cb.req.Method != http.MethodPost || cb.req.URL.Path != "/vipps/callbacks/v2/payments/"+orderID {
		t.Errorf("callback %s %s", cb.req.Method, cb.req.URL.Path)
	}
	if got := cb.req.Header.Get("Authorization"); got != "cb-secret-"+orderID {
		t.Errorf("callback Authorization = %q, want the bare authToken", got)
	}
	if ct := cb.req.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("callback Content-Type = %q", ct)
	}
	h.specs.ValidateCallback(t, cb.req, cb.body)
	var cbBody struct {
		MerchantSerialNumber string
		OrderID              string
		TransactionInfo      map[string]any
		ErrorInfo            map[string]any
	}
	mustJSON(t, cb.body, &cbBody)
	if cbBody.MerchantSerialNumber != "123456" || cbBody.OrderID != orderID || cbBody.TransactionInfo["status"] != "RESERVED" ||
		cbBody.TransactionInfo["amount"] != 49900.0 || cbBody.TransactionInfo["transactionId"] == nil || cbBody.ErrorInfo != nil {
		t.Errorf("callback body %s", cb.body)
	}
	if ts, _ := cbBody.TransactionInfo["timeStamp"].(string); ts != "2024-03-01T12:00:00.000Z" {
		t.Errorf("callback timeStamp %q", ts)
	}

	d = h.details(orderID)
	if d.ops() != "RESERVE,INITIATE" || d.TransactionSummary == nil || d.TransactionSummary.RemainingAmountToCapture != 49900 {
		t.Fatalf("details after reserve: %+v", d)
	}
	if !d.TransactionLogHistory[0].OperationSuccess || d.TransactionLogHistory[0].TransactionID != cbBody.TransactionInfo["transactionId"] {
		t.Errorf("RESERVE entry %+v", d.TransactionLogHistory[0])
	}

	// Partial capture, then the rest without an amount.
	h.clock.Advance(time.Minute)
	resp, body = h.capture(orderID, 20000, "cap-1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("capture: %d %s", resp.StatusCode, body)
	}
	var capt struct {
		OrderID         string
		TransactionInfo struct {
			Amount                                            int64
			Status, TimeStamp, TransactionID, TransactionText string
		}
		TransactionSummary struct{ CapturedAmount, RemainingAmountToCapture, RemainingAmountToRefund int64 }
	}
	mustJSON(t, body, &capt)
	if capt.TransactionInfo.Status != "Captured" || capt.TransactionInfo.Amount != 20000 ||
		capt.TransactionSummary.CapturedAmount != 20000 || capt.TransactionSummary.RemainingAmountToCapture != 29900 ||
		capt.TransactionInfo.TimeStamp != "2024-03-01T12:01:00.000Z" || capt.TransactionInfo.TransactionText != "Shipped" {
		t.Errorf("capture response %s", body)
	}
	resp, body = h.capture(orderID, nil, "cap-2")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("capture rest: %d %s", resp.StatusCode, body)
	}
	mustJSON(t, body, &capt)
	if capt.TransactionInfo.Amount != 29900 || capt.TransactionSummary.RemainingAmountToCapture != 0 || capt.TransactionSummary.CapturedAmount != 49900 {
		t.Errorf("capture rest response %s", body)
	}

	// Partial refund, then too much.
	resp, body = h.refund(orderID, 10000, "ref-1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("refund: %d %s", resp.StatusCode, body)
	}
	var ref map[string]json.RawMessage
	mustJSON(t, body, &ref)
	if _, hasInfo := ref["transactionInfo"]; hasInfo {
		t.Errorf("refund response uses transactionInfo; the spec says transaction: %s", body)
	}
	var refTx struct {
		Amount int64
		Status string
	}
	mustJSON(t, ref["transaction"], &refTx)
	if refTx.Status != "Refund" || refTx.Amount != 10000 {
		t.Errorf("refund transaction %s", ref["transaction"])
	}
	resp, body = h.refund(orderID, 40000, "ref-2")
	expectError(t, resp, body, http.StatusBadRequest, "Payment", "71")

	d = h.details(orderID)
	if got := d.ops(); got != "REFUND,CAPTURE,CAPTURE,RESERVE,INITIATE" {
		t.Errorf("log = %s", got)
	}
	if d.TransactionLogHistory[0].RequestID != "ref-1" || d.TransactionLogHistory[1].RequestID != "cap-2" {
		t.Errorf("requestIds not echoed: %+v", d.TransactionLogHistory[:2])
	}
	if s := d.TransactionSummary; s.CapturedAmount != 49900 || s.RefundedAmount != 10000 || s.RemainingAmountToRefund != 39900 {
		t.Errorf("summary %+v", *s)
	}

	snap, ok := h.sim.Payment(orderID)
	if !ok || snap.State != vippssim.StateReserve || snap.Captured != 49900 || snap.Refunded != 10000 || snap.CustomerPhone != "91234567" {
		t.Errorf("snapshot %+v", snap)
	}

	// The landing page is done with this payment.
	resp, err := browser().Get(landingURL)
	if err != nil {
		t.Fatal(err)
	}
	if page := readAll(t, resp); resp.StatusCode != http.StatusGone || !strings.Contains(page, "no longer available") {
		t.Errorf("landing page after approval: %d %s", resp.StatusCode, page)
	}

	h.sim.Flush()
	cbs := h.sim.Callbacks()
	if len(cbs) != 1 || !cbs[0].Sent || cbs[0].StatusCode != http.StatusOK || cbs[0].Status != "RESERVED" ||
		cbs[0].Header.Get("Authorization") != "cb-secret-"+orderID {
		t.Errorf("callback record %+v", cbs)
	}

	// The deprecated status call.
	resp, body = h.do(call{method: "GET", path: "/ecomm/v2/payments/" + orderID + "/status"})
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"status":"REFUND"`) {
		t.Errorf("status: %d %s", resp.StatusCode, body)
	}
}

// TestLandingPage covers the page's error paths and escaping.
func TestLandingPage(t *testing.T) {
	h := newHarness(t)
	body := h.initiateBody("landing-1", 123456)
	body["transaction"].(map[string]any)["transactionText"] = `<script>alert("x")</script> & socks`
	body["customerInfo"] = map[string]any{"mobileNumber": "48059999"}
	resp, raw := h.do(call{method: "POST", path: "/ecomm/v2/payments", body: body})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("initiate: %d %s", resp.StatusCode, raw)
	}
	var out struct{ URL string }
	mustJSON(t, raw, &out)

	b := browser()
	get := func(u string) (int, string) {
		t.Helper()
		resp, err := b.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, readAll(t, resp)
	}

	code, page := get(out.URL)
	if code != http.StatusOK {
		t.Fatalf("GET: %d", code)
	}
	for _, want := range []string{`<label for="phone">`, `value="48059999"`, "1\u00a0234,56 NOK", `lang="en"`,
		`<strong id="shop">Demo shop</strong>`, `<strong id="order">&lt;script&gt;`, "Vipps order id landing-1"} {
		if !strings.Contains(page, want) {
			t.Errorf("page 1 lacks %q:\n%s", want, page)
		}
	}

	// A bad phone number re-renders the form with an error.
	action := h.formAction(page)
	resp, err := b.PostForm(action, map[string][]string{"step": {"phone"}, "phone": {"+47 123"}})
	if err != nil {
		t.Fatal(err)
	}
	if page := readAll(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, `role="alert"`) {
		t.Errorf("bad phone: %d %s", resp.StatusCode, page)
	}

	// Page 2 escapes the merchant's text.
	resp, err = b.PostForm(action, map[string][]string{"step": {"phone"}, "phone": {"48059999"}})
	if err != nil {
		t.Fatal(err)
	}
	page = readAll(t, resp)
	if strings.Contains(page, "<script>") || !strings.Contains(page, "&lt;script&gt;") {
		t.Errorf("transactionText not escaped:\n%s", page)
	}
	for _, want := range []string{"Confirm payment", "Reject", "1\u00a0234,56 NOK", "<dt>Shop</dt><dd>Demo shop</dd>"} {
		if !strings.Contains(page, want) {
			t.Errorf("page 2 lacks %q", want)
		}
	}

	for _, tc := range []struct {
		name string
		url  string
		want int
	}{
		{"unknown token", h.srv.URL + "/dwo-api-application/v1/deeplink/vippsgateway?v=2&token=nope", http.StatusNotFound},
		{"no token", h.srv.URL + "/dwo-api-application/v1/deeplink/vippsgateway?v=2", http.StatusNotFound},
		{"wrong version", strings.Replace(out.URL, "v=2", "v=1", 1), http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, page := get(tc.url); code != tc.want || !strings.Contains(page, "<h1>") {
				t.Errorf("%d, want %d: %s", code, tc.want, page)
			}
		})
	}

	// Expired: 410.
	h.clock.Advance(11 * time.Minute)
	if code, page := get(out.URL); code != http.StatusGone || !strings.Contains(page, "expired") {
		t.Errorf("expired page: %d %s", code, page)
	}
	cb := h.sink.wait(t) // lazy expiry sent the REJECTED callback
	if !strings.Contains(string(cb.body), `"REJECTED"`) {
		t.Errorf("callback %s", cb.body)
	}
}

// TestLandingReject: the user presses Reject.
func TestLandingReject(t *testing.T) {
	h := newHarness(t)
	u := h.initiate("reject-1", 1000)
	resp := h.landing(u, "91234567", "reject")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "https://shop.example/return/reject-1" {
		t.Fatalf("reject: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	cb := h.sink.wait(t)
	h.specs.ValidateCallback(t, cb.req, cb.body)
	var body struct {
		TransactionInfo struct {
			Status        string
			TransactionID string
		}
	}
	mustJSON(t, cb.body, &body)
	if body.TransactionInfo.Status != "CANCELLED" || body.TransactionInfo.TransactionID == "" {
		t.Errorf("callback %s", cb.body)
	}
	d := h.details("reject-1")
	if d.ops() != "CANCEL,INITIATE" || d.TransactionSummary == nil {
		t.Errorf("details %+v", d)
	}
	resp2, raw := h.capture("reject-1", nil, "c1")
	expectError(t, resp2, raw, http.StatusBadRequest, "VippsError", "91")
}
