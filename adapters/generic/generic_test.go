package generic_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/adapters/adaptertest"
	"github.com/kassehq/kasse/adapters/generic"
	"github.com/kassehq/kasse/host/payment"
)

const secret = "generic-shared-secret"

var now = time.Unix(1_764_000_000, 0)

// sign computes the Kasse-Signature header independently of the adapter.
func sign(key string, t time.Time, body []byte) string {
	ts := fmt.Sprint(t.Unix())
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(ts + "." + string(body)))
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

func merchant() adapters.Merchant {
	return adapters.Merchant{ID: "custom", Platform: &adapters.Platform{Kind: "generic", WebhookSecretEnv: "S",
		WebhookSecret: secret, BaseURL: "https://custom.example/kasse-status"}}
}

func signed(key string, t time.Time, body string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Kasse-Signature", sign(key, t, []byte(body)))
	return h
}

const checkoutBody = `{"type":"checkout","key":"order-1001","checkout":{"reference":"1001","amount":49900,"currency":"NOK",` +
	`"description":"Order 1001","returnUrl":"https://custom.example/thanks/1001","lines":[{"name":"Mug","quantity":2,"unitPrice":24950}]}}`

// expressBody is an Express Checkout from a product page's button: the cart's lines, no address.
const expressBody = `{"type":"express","key":"x-1","checkout":{"reference":"x-1","amount":64850,"currency":"NOK",` +
	`"description":"Express order x-1","returnUrl":"https://custom.example/thanks/x-1",` +
	`"lines":[{"sku":"MUG","name":"Mug","quantity":2,"unitPrice":24950},{"sku":"HAT","name":"Hat","quantity":1,"unitPrice":14950}]}}`

func TestConformance(t *testing.T) {
	fx := func(name, body string, want adapters.Event, wantErr string) adaptertest.Fixture {
		return adaptertest.Fixture{Name: name, Merchant: merchant(), Header: signed(secret, now, body),
			Body: []byte(body), ReceivedAt: now.Add(30 * time.Second), Want: want, WantErr: wantErr}
	}
	rotating := fx("previous secret", `{"type":"cancel","reference":"1001"}`, adapters.Event{Action: adapters.ActionCancel}, "")
	rotating.Merchant.Platform.WebhookSecret, rotating.Merchant.Platform.PreviousWebhookSecret = "new", secret
	adaptertest.Run(t, generic.Adapter{}, []adaptertest.Fixture{
		fx("checkout", checkoutBody, adapters.Event{Action: adapters.ActionCheckout, Reference: "1001", Key: "order-1001",
			Checkout: &payment.Checkout{Merchant: "custom", Reference: "1001", Amount: 49900, Currency: "NOK",
				Description: "Order 1001", ReturnURL: "https://custom.example/thanks/1001",
				Lines: []payment.Line{{Name: "Mug", Quantity: 2, UnitPrice: 24950}}}}, ""),
		fx("express", expressBody, adapters.Event{Action: adapters.ActionExpressCheckout, Topic: "express", Reference: "x-1",
			Key: "x-1", Checkout: &payment.Checkout{Merchant: "custom", Reference: "x-1", Amount: 64850, Currency: "NOK",
				Description: "Express order x-1", ReturnURL: "https://custom.example/thanks/x-1",
				Lines: []payment.Line{{SKU: "MUG", Name: "Mug", Quantity: 2, UnitPrice: 24950},
					{SKU: "HAT", Name: "Hat", Quantity: 1, UnitPrice: 14950}}}}, ""),
		fx("express without lines", `{"type":"express","checkout":{"reference":"x-2","amount":100,"currency":"NOK"}}`,
			adapters.Event{}, "/checkout/lines: is required for type express"),
		fx("express with empty lines", `{"type":"express","checkout":{"reference":"x-2","amount":100,"lines":[]}}`,
			adapters.Event{}, "/checkout/lines: is required for type express"),
		fx("express without checkout", `{"type":"express","reference":"x-2"}`, adapters.Event{},
			"/checkout: is required for type express"),
		fx("express for another merchant", `{"type":"express","checkout":{"merchant":"other","reference":"x-2",`+
			`"lines":[{"name":"Mug","quantity":1,"unitPrice":100}]}}`, adapters.Event{}, `/checkout/merchant: must be "custom"`),
		fx("express with an unknown line field", `{"type":"express","checkout":{"reference":"x-2",`+
			`"lines":[{"name":"Mug","quantity":1,"price":100}]}}`, adapters.Event{}, "unknown field"),
		fx("capture part", `{"type":"capture","reference":"1001","amount":10000,"text":"first parcel"}`,
			adapters.Event{Action: adapters.ActionCapture, Reference: "1001", Amount: 10000, Text: "first parcel", Key: "capture:10000"}, ""),
		fx("refund", `{"type":"refund","reference":"1001","key":"rma-7"}`,
			adapters.Event{Action: adapters.ActionRefund, Reference: "1001", Key: "rma-7"}, ""),
		fx("cancel", `{"type":"cancel","reference":"1001"}`, adapters.Event{Action: adapters.ActionCancel, Reference: "1001"}, ""),
		fx("unknown type", `{"type":"ship","reference":"1001"}`, adapters.Event{}, "/type: must be one of"),
		fx("unknown field", `{"type":"cancel","reference":"1001","force":true}`, adapters.Event{}, "/force: unknown field"),
		fx("unknown checkout field", `{"type":"checkout","checkout":{"reference":"1","amaunt":1}}`, adapters.Event{}, "/checkout/amaunt: unknown field"),
		fx("other merchant", `{"type":"checkout","checkout":{"merchant":"other","reference":"1"}}`, adapters.Event{}, `/checkout/merchant: must be "custom"`),
		fx("negative amount", `{"type":"refund","reference":"1","amount":-5}`, adapters.Event{}, "/amount: must be >= 0"),
		fx("float amount", `{"type":"refund","reference":"1","amount":5.5}`, adapters.Event{}, "/amount: must be a JSON int64"),
		rotating,
	})
}

func TestVerifyWindow(t *testing.T) {
	body := []byte(`{"type":"cancel","reference":"1001"}`)
	for _, tt := range []struct {
		name   string
		header string
		at     time.Time
		want   string
	}{
		{"inside the window", sign(secret, now, body), now.Add(5 * time.Minute), ""},
		{"too old", sign(secret, now, body), now.Add(5*time.Minute + time.Second), "is 5m1s away"},
		{"from the future", sign(secret, now, body), now.Add(-6 * time.Minute), "is -6m0s away"},
		{"timestamp changed", strings.Replace(sign(secret, now, body), fmt.Sprint(now.Unix()), fmt.Sprint(now.Unix()+1), 1), now, "does not match"},
		{"two v1, one good", sign("old", now, body) + "," + strings.Split(sign(secret, now, body), ",")[1], now, ""},
		{"no t", "v1=" + strings.Repeat("a", 64), now, "needs t= and v1="},
		{"short v1", fmt.Sprintf("t=%d,v1=abc", now.Unix()), now, "malformed Kasse-Signature v1"},
		{"garbage", "hello", now, "malformed Kasse-Signature"},
	} {
		h := http.Header{}
		h.Set("Kasse-Signature", tt.header)
		err := generic.Adapter{}.Verify(&adapters.Delivery{Merchant: merchant(), Header: h, Body: body, ReceivedAt: tt.at})
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if !errors.Is(err, adapters.ErrUnauthorized) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestRenderIsSigned(t *testing.T) {
	a := generic.Adapter{Now: func() time.Time { return now }}
	reqs, err := a.Render(merchant(), adapters.StatusUpdate{Status: adapters.StatusPaid, Reference: "1001",
		Session: "ks", ProviderReference: "kref", Amount: 49900, Currency: "NOK"})
	if err != nil || len(reqs) != 1 {
		t.Fatal(reqs, err)
	}
	r := reqs[0]
	want := `{"type":"status","status":"paid","reference":"1001","session":"ks","providerReference":"kref","amount":49900,"currency":"NOK"}`
	if r.Method != "POST" || r.URL != "https://custom.example/kasse-status" || string(r.Body) != want {
		t.Errorf("%s %s %s", r.Method, r.URL, r.Body)
	}
	if got := r.Header.Get("Kasse-Signature"); got != sign(secret, now, r.Body) {
		t.Errorf("signature %q", got)
	}
	m := merchant()
	m.Platform.BaseURL = ""
	if reqs, err := a.Render(m, adapters.StatusUpdate{Status: adapters.StatusPaid}); err != nil || len(reqs) != 0 {
		t.Errorf("without baseUrl: %v %v", reqs, err)
	}
}

// FuzzParse feeds arbitrary bodies to Parse: it may refuse them but must not panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(checkoutBody))
	f.Add([]byte(`{"type":"refund","reference":"1","amount":5}`))
	f.Add([]byte(`{"type":"checkout","checkout":null}`))
	f.Add([]byte(expressBody))
	f.Add([]byte(`{"type":"express","checkout":{"lines":null}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		h := http.Header{}
		h.Set("Kasse-Signature", sign(secret, now, body))
		ev, err := generic.Adapter{}.Parse(&adapters.Delivery{Merchant: merchant(), Header: h, Body: body})
		if err != nil {
			return
		}
		switch ev.Action {
		case adapters.ActionCheckout, adapters.ActionExpressCheckout:
			if ev.Checkout == nil || ev.Checkout.Merchant != "custom" {
				t.Fatalf("%s event with checkout %+v", ev.Action, ev.Checkout)
			}
			if ev.Action == adapters.ActionExpressCheckout && len(ev.Checkout.Lines) == 0 {
				t.Fatal("express event without the cart's lines")
			}
		}
	})
}
