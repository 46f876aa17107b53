package vippssim_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestCaptureRules covers capture's refusals and amounts.
func TestCaptureRules(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(h *harness, id string) // puts the payment in a state
		amount    any
		noReqID   bool
		wantCode  int
		wantGroup string
		wantErr   string
		captured  int64 // capturedAmount afterwards
	}{
		{name: "before reserve", setup: func(h *harness, id string) { h.initiate(id, 1000) }, amount: 500,
			wantCode: 400, wantGroup: "Payment", wantErr: "62"},
		{name: "more than reserved", setup: func(h *harness, id string) { h.reserved(id, 1000) }, amount: 1001,
			wantCode: 400, wantGroup: "Payment", wantErr: "61"},
		{name: "partial", setup: func(h *harness, id string) { h.reserved(id, 1000) }, amount: 400,
			wantCode: 200, captured: 400},
		{name: "amount omitted captures all", setup: func(h *harness, id string) { h.reserved(id, 1000) },
			wantCode: 200, captured: 1000},
		{name: "amount 0 captures all", setup: func(h *harness, id string) { h.reserved(id, 1000) }, amount: 0,
			wantCode: 200, captured: 1000},
		{name: "rest after partial", setup: func(h *harness, id string) {
			h.reserved(id, 1000)
			if resp, b := h.capture(id, 300, "first"); resp.StatusCode != 200 {
				t.Fatalf("first capture: %s", b)
			}
		}, wantCode: 200, captured: 1000},
		{name: "nothing left", setup: func(h *harness, id string) {
			h.reserved(id, 1000)
			h.capture(id, nil, "first")
		}, wantCode: 400, wantGroup: "Payment", wantErr: "61"},
		{name: "cancelled", setup: func(h *harness, id string) {
			h.reserved(id, 1000)
			h.cancel(id, false)
		}, amount: 500, wantCode: 400, wantGroup: "VippsError", wantErr: "91"},
		{name: "unknown order", setup: func(h *harness, id string) {}, amount: 500,
			wantCode: 404, wantGroup: "Merchant", wantErr: "35"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			id := "cap-" + strings.ReplaceAll(tc.name, " ", "-")
			tc.setup(h, id)
			resp, body := h.capture(id, tc.amount, "req-under-test")
			if tc.wantErr != "" {
				expectError(t, resp, body, tc.wantCode, tc.wantGroup, tc.wantErr)
				return
			}
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if s, _ := h.sim.Payment(id); s.Captured != tc.captured {
				t.Errorf("captured %d, want %d", s.Captured, tc.captured)
			}
		})
	}
}

// TestIdempotency covers X-Request-Id on capture and refund.
func TestIdempotency(t *testing.T) {
	h := newHarness(t)
	h.reserved("idem-1", 10000)

	resp1, body1 := h.capture("idem-1", 3000, "same-key")
	resp2, body2 := h.capture("idem-1", 3000, "same-key")
	if resp1.StatusCode != 200 || resp2.StatusCode != 200 || string(body1) != string(body2) {
		t.Fatalf("replay: %d %s / %d %s", resp1.StatusCode, body1, resp2.StatusCode, body2)
	}
	if s, _ := h.sim.Payment("idem-1"); s.Captured != 3000 {
		t.Fatalf("replay captured again: %d", s.Captured)
	}
	if d := h.details("idem-1"); d.ops() != "CAPTURE,RESERVE,INITIATE" {
		t.Errorf("log after replay: %s", d.ops())
	}

	resp, body := h.capture("idem-1", 4000, "same-key")
	expectError(t, resp, body, http.StatusConflict, "VippsError", "93")

	// The same key on another endpoint is another key.
	resp, body = h.refund("idem-1", 1000, "same-key")
	if resp.StatusCode != 200 {
		t.Fatalf("refund with capture's key: %d %s", resp.StatusCode, body)
	}
	resp, body = h.refund("idem-1", 1000, "same-key")
	if resp.StatusCode != 200 {
		t.Fatalf("refund replay: %d %s", resp.StatusCode, body)
	}
	resp, body = h.refund("idem-1", 500, "same-key")
	expectError(t, resp, body, http.StatusConflict, "VippsError", "93")
	if s, _ := h.sim.Payment("idem-1"); s.Refunded != 1000 {
		t.Errorf("refunded %d, want 1000", s.Refunded)
	}

	// A failed attempt is not remembered: the key can be used again.
	resp, body = h.capture("idem-1", 9000, "too-much")
	expectError(t, resp, body, http.StatusBadRequest, "Payment", "61")
	resp, body = h.capture("idem-1", 7000, "too-much")
	if resp.StatusCode != 200 {
		t.Errorf("capture after failed attempt with the same key: %d %s", resp.StatusCode, body)
	}

	// X-Request-Id is required (spec: required: true) and at most 40 characters.
	resp, body = h.do(call{method: "POST", path: "/ecomm/v2/payments/idem-1/capture", invalid: true,
		body: actionBody(h.tenant.MerchantSerialNumber, nil, "x")})
	expectError(t, resp, body, http.StatusBadRequest, "InvalidRequest", "X-Request-Id.missing")
	resp, body = h.refund("idem-1", 100, strings.Repeat("k", 41))
	expectError(t, resp, body, http.StatusBadRequest, "InvalidRequest", "X-Request-Id.invalid")
}

// TestCancelRules covers cancel in every state.
func TestCancelRules(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(h *harness, id string)
		release   bool
		wantErr   string // "" for success
		wantGroup string
		wantState string
		wantLog   string
	}{
		{name: "initiated", setup: func(h *harness, id string) { h.initiate(id, 1000) },
			wantState: "CANCEL", wantLog: "CANCEL,INITIATE"},
		{name: "reserved", setup: func(h *harness, id string) { h.reserved(id, 1000) },
			wantState: "VOID", wantLog: "VOID,RESERVE,INITIATE"},
		{name: "partly captured without release", setup: func(h *harness, id string) {
			h.reserved(id, 1000)
			h.capture(id, 400, "c")
		}, wantErr: "51", wantGroup: "Payment"},
		{name: "partly captured with release", setup: func(h *harness, id string) {
			h.reserved(id, 1000)
			h.capture(id, 400, "c")
		}, release: true, wantState: "RESERVE", wantLog: "VOID,CAPTURE,RESERVE,INITIATE"},
		{name: "fully captured", setup: func(h *harness, id string) {
			h.reserved(id, 1000)
			h.capture(id, nil, "c")
		}, release: true, wantErr: "51", wantGroup: "Payment"},
		{name: "already cancelled", setup: func(h *harness, id string) {
			h.reserved(id, 1000)
			h.cancel(id, false)
		}, wantErr: "91", wantGroup: "VippsError"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			id := "cancel-" + strings.ReplaceAll(tc.name, " ", "-")
			tc.setup(h, id)
			resp, body := h.cancel(id, tc.release)
			if tc.wantErr != "" {
				expectError(t, resp, body, http.StatusBadRequest, tc.wantGroup, tc.wantErr)
				return
			}
			if resp.StatusCode != 200 || !strings.Contains(string(body), `"status":"Cancelled"`) {
				t.Fatalf("cancel: %d %s", resp.StatusCode, body)
			}
			s, _ := h.sim.Payment(id)
			if string(s.State) != tc.wantState || s.RemainingToCapture != 0 {
				t.Errorf("state %s remaining %d, want %s and 0", s.State, s.RemainingToCapture, tc.wantState)
			}
			if d := h.details(id); d.ops() != tc.wantLog {
				t.Errorf("log %s, want %s", d.ops(), tc.wantLog)
			}
			// Nothing can be captured afterwards.
			resp, body = h.capture(id, nil, "after-cancel")
			expectError(t, resp, body, http.StatusBadRequest, "VippsError", "91")
		})
	}
	t.Run("no callback on merchant cancel", func(t *testing.T) {
		h := newHarness(t)
		h.initiate("cancel-quiet", 1000)
		h.cancel("cancel-quiet", false)
		h.sink.expectNone(t, 100e6)
	})
}

// TestRefundRules covers refund's refusals.
func TestRefundRules(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(h *harness, id string)
		amount   any
		wantErr  string
		refunded int64
	}{
		{name: "nothing captured", setup: func(h *harness, id string) { h.reserved(id, 1000) }, amount: 500, wantErr: "72"},
		{name: "initiated", setup: func(h *harness, id string) { h.initiate(id, 1000) }, amount: 500, wantErr: "72"},
		{name: "cancelled", setup: func(h *harness, id string) {
			h.reserved(id, 1000)
			h.cancel(id, false)
		}, amount: 500, wantErr: "73"},
		{name: "more than captured", setup: func(h *harness, id string) {
			h.reserved(id, 1000)
			h.capture(id, 600, "c")
		}, amount: 700, wantErr: "71"},
		{name: "partial", setup: func(h *harness, id string) {
			h.reserved(id, 1000)
			h.capture(id, 600, "c")
		}, amount: 200, refunded: 200},
		{name: "omitted amount refunds the rest", setup: func(h *harness, id string) {
			h.reserved(id, 1000)
			h.capture(id, 600, "c")
			h.refund(id, 200, "r")
		}, refunded: 600},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			id := "refund-" + strings.ReplaceAll(tc.name, " ", "-")
			tc.setup(h, id)
			resp, body := h.refund(id, tc.amount, "under-test")
			if tc.wantErr != "" {
				expectError(t, resp, body, http.StatusBadRequest, "Payment", tc.wantErr)
				return
			}
			if resp.StatusCode != 200 {
				t.Fatalf("refund: %d %s", resp.StatusCode, body)
			}
			if s, _ := h.sim.Payment(id); s.Refunded != tc.refunded {
				t.Errorf("refunded %d, want %d", s.Refunded, tc.refunded)
			}
		})
	}
}

// TestActionBodies covers body validation shared by capture, refund and cancel.
func TestActionBodies(t *testing.T) {
	h := newHarness(t)
	h.reserved("body-1", 10000)
	tests := []struct {
		name    string
		method  string
		path    string
		body    any
		invalid bool
		code    int
		group   string
		errCode string
	}{
		{"capture without transactionText", "POST", "capture",
			map[string]any{"merchantInfo": map[string]any{"merchantSerialNumber": "123456"}, "transaction": map[string]any{"amount": 100}},
			true, 400, "InvalidRequest", "transaction.transactionText.missing"},
		{"capture amount below 100", "POST", "capture", actionBody("123456", 99, "x"),
			true, 400, "InvalidRequest", "transaction.amount.invalid"},
		{"capture amount as string", "POST", "capture", actionBody("123456", "100", "x"),
			true, 400, "InvalidRequest", "transaction.amount.invalid"},
		{"capture decimal amount", "POST", "capture", actionBody("123456", 100.5, "x"),
			true, 400, "InvalidRequest", "transaction.amount.invalid"},
		{"refund text too long", "POST", "refund", actionBody("123456", 100, strings.Repeat("x", 101)),
			true, 400, "InvalidRequest", "transaction.transactionText.invalid"},
		{"cancel without transaction", "PUT", "cancel",
			map[string]any{"merchantInfo": map[string]any{"merchantSerialNumber": "123456"}},
			true, 400, "InvalidRequest", "transaction.missing"},
		{"cancel release not boolean", "PUT", "cancel",
			map[string]any{"merchantInfo": map[string]any{"merchantSerialNumber": "123456"}, "transaction": map[string]any{"transactionText": "x"}, "shouldReleaseRemainingFunds": "yes"},
			true, 400, "InvalidRequest", "shouldReleaseRemainingFunds.invalid"},
		{"capture for another MSN", "POST", "capture", actionBody("654321", 100, "x"),
			false, 403, "Merchant", "merchantInfo.merchantSerialNumber.forbidden"},
		{"capture numeric MSN", "POST", "capture",
			map[string]any{"merchantInfo": map[string]any{"merchantSerialNumber": 123456}, "transaction": map[string]any{"transactionText": "x"}},
			true, 400, "InvalidRequest", "merchantInfo.merchantSerialNumber.invalid"},
		{"capture body not JSON", "POST", "capture", "amount=100", true, 400, "InvalidRequest", "requestBody.invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.do(call{method: tc.method, path: "/ecomm/v2/payments/body-1/" + tc.path, body: tc.body, invalid: tc.invalid,
				header: map[string]string{"X-Request-Id": "k-" + tc.path}})
			expectError(t, resp, body, tc.code, tc.group, tc.errCode)
		})
	}
	t.Run("content type", func(t *testing.T) {
		resp, body := h.do(call{method: "POST", path: "/ecomm/v2/payments/body-1/capture", invalid: true,
			body: actionBody("123456", 100, "x"), header: map[string]string{"X-Request-Id": "ct", "Content-Type": "text/plain"}})
		expectError(t, resp, body, http.StatusUnsupportedMediaType, "InvalidRequest", "Content-Type.invalid")
	})
	t.Run("charset parameter accepted", func(t *testing.T) {
		resp, body := h.do(call{method: "POST", path: "/ecomm/v2/payments/body-1/capture",
			body: actionBody("123456", 100, "x"), header: map[string]string{"X-Request-Id": "cs", "Content-Type": "application/json;charset=UTF-8"}})
		if resp.StatusCode != 200 {
			t.Errorf("%d %s", resp.StatusCode, body)
		}
	})
	if s, _ := h.sim.Payment("body-1"); s.Captured != 100 {
		t.Errorf("captured %d after refused requests, want 100", s.Captured)
	}
}
