package vippssim_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestEPaymentUserFlowAnswers checks the redirectUrl of each userFlow against epayment-v1.yaml's
// CreatePaymentResponse: NATIVE_REDIRECT an app link, QR a link to the image or (TEXT/TARGETURL) the code's
// target, PUSH_MESSAGE none; and that a QR target, opened like a scanned code, approves the payment.
func TestEPaymentUserFlowAnswers(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name, ref, flow string
		edit            func(map[string]any)
		wantPrefix      string // "" means no redirectUrl
	}{
		{"native redirect", "flow-native-01", "NATIVE_REDIRECT", nil, "vippsMT://?token="},
		{"native redirect without returnUrl", "flow-native-02", "NATIVE_REDIRECT",
			func(b map[string]any) { delete(b, "returnUrl") }, "vippsMT://?token="},
		{"qr default image", "flow-qr-00001", "QR", func(b map[string]any) { delete(b, "returnUrl") }, h.srv.URL + "/qr/v1/"},
		{"qr png", "flow-qr-00002", "QR", func(b map[string]any) {
			delete(b, "returnUrl")
			b["qrFormat"] = map[string]any{"format": "IMAGE/PNG", "size": 400}
		}, h.srv.URL + "/qr/v1/"},
		{"qr target url", "flow-qr-00003", "QR", func(b map[string]any) {
			delete(b, "returnUrl")
			b["qrFormat"] = map[string]any{"format": "TEXT/TARGETURL"}
		}, h.srv.URL + "/epayment-landing/v1?token="},
		{"push message", "flow-push-0001", "PUSH_MESSAGE", nil, ""},
		{"web redirect", "flow-web-00001", "WEB_REDIRECT", nil, h.srv.URL + "/epayment-landing/v1?token="},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := epCreateBody(tt.ref, 15000, tt.flow)
			if tt.edit != nil {
				tt.edit(b)
			}
			resp, body := h.do(call{method: "POST", path: "/epayment/v1/payments", body: b,
				header: map[string]string{"Idempotency-Key": "flow-key-" + string(rune('a'+i))}})
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("create: %d %s", resp.StatusCode, body)
			}
			var out struct {
				RedirectURL *string `json:"redirectUrl"`
				Reference   string  `json:"reference"`
			}
			if err := json.Unmarshal(body, &out); err != nil {
				t.Fatal(err)
			}
			switch {
			case out.Reference != tt.ref:
				t.Fatalf("reference %q", out.Reference)
			case tt.wantPrefix == "" && out.RedirectURL != nil:
				t.Fatalf("redirectUrl %q, want none", *out.RedirectURL)
			case tt.wantPrefix != "" && (out.RedirectURL == nil || !strings.HasPrefix(*out.RedirectURL, tt.wantPrefix)):
				t.Fatalf("answer %s, want redirectUrl starting %q", body, tt.wantPrefix)
			}
		})
	}
}

// TestEPaymentQRTargetApproves opens a QR code's target as the app would after a scan: the landing page
// approves the payment and, with no returnUrl, ends on a page of its own.
func TestEPaymentQRTargetApproves(t *testing.T) {
	h := newHarness(t)
	b := epCreateBody("qr-target-0001", 25000, "QR")
	delete(b, "returnUrl")
	b["qrFormat"] = map[string]any{"format": "TEXT/TARGETURL"}
	resp, body := h.do(call{method: "POST", path: "/epayment/v1/payments", body: b, header: map[string]string{"Idempotency-Key": "qr-t-1"}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var out struct {
		RedirectURL string `json:"redirectUrl"`
	}
	mustJSON(t, body, &out)
	final := h.landing(out.RedirectURL, "91234567", "confirm")
	if final.StatusCode != http.StatusOK || final.Request.URL.Path != "/epayment-landing/v1" {
		t.Fatalf("after confirm: %d at %s", final.StatusCode, final.Request.URL)
	}
	if got := h.epGet("qr-target-0001").String(); got != "AUTHORIZED a=25000 c=0 r=0 x=0" {
		t.Fatalf("after scan and confirm: %s", got)
	}
}
