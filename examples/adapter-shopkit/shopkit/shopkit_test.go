package shopkit_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/adapters/adaptertest"
	"github.com/kassehq/kasse/examples/adapter-shopkit/shopkit"
	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/hooks"
	"github.com/kassehq/kasse/host/notify"
	"github.com/kassehq/kasse/host/outbound"
	"github.com/kassehq/kasse/host/payment"
)

const secret = "shopkit-webhook-secret"

// sign computes X-ShopKit-Signature independently of the adapter.
func sign(key string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func merchant(baseURL string) adapters.Merchant {
	return adapters.Merchant{ID: "kit", Platform: &adapters.Platform{Kind: "shopkit", WebhookSecretEnv: "S", WebhookSecret: secret,
		BaseURL: baseURL, AccessTokenEnv: "T", AccessToken: "sk_live_token", Options: map[string]string{"storeId": "42"}}}
}

// configMerchant is merchant as the host's config holds it, for the host parts (notify, hooks.Check).
func configMerchant(baseURL string) config.Merchant {
	return config.Merchant{ID: "kit", Platform: &config.Platform{Kind: "shopkit", WebhookSecretEnv: "S", WebhookSecret: secret,
		BaseURL: baseURL, AccessTokenEnv: "T", AccessToken: "sk_live_token", Options: map[string]string{"storeId": "42"}}}
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func headers(event, delivery string, body []byte) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-ShopKit-Event", event)
	h.Set("X-ShopKit-Delivery", delivery)
	h.Set("X-ShopKit-Signature", sign(secret, body))
	return h
}

// TestRegisteredByImport: importing the package is all it takes for kasse to know the adapter.
func TestRegisteredByImport(t *testing.T) {
	for _, info := range adapters.Registered() {
		if info.ID == shopkit.ID {
			if _, ok := info.New().(shopkit.Adapter); !ok {
				t.Errorf("New returns %T", info.New())
			}
			return
		}
	}
	t.Fatal("shopkit is not registered")
}

func TestConformance(t *testing.T) {
	paymentRequested := fixture(t, "payment_requested.json")
	refunded := fixture(t, "refunded.json")
	shipped := []byte(`{"order":{"id":"SK-1001","number":"1001"}}`)
	m := merchant("https://api.shopkit.example")
	adaptertest.Run(t, shopkit.Adapter{}, []adaptertest.Fixture{
		{Name: "payment requested", Merchant: m, Header: headers("order.payment_requested", "d1", paymentRequested), Body: paymentRequested,
			Want: adapters.Event{Action: adapters.ActionCheckout, DeliveryID: "d1", Reference: "SK-1001", Checkout: &payment.Checkout{
				Merchant: "kit", Reference: "SK-1001", Amount: 49900, Currency: "NOK", Description: "ShopKit order 1001",
				ReturnURL: "https://shopkit.example/thanks/SK-1001", Customer: &payment.Customer{PhoneNumber: "91234567"},
				Lines: []payment.Line{{SKU: "MUG-1", Name: "Mug", Quantity: 2, UnitPrice: 19950}, {Name: "Shipping", Quantity: 1, UnitPrice: 10000}}}}},
		{Name: "shipped", Merchant: m, Header: headers("order.shipped", "d2", shipped), Body: shipped,
			Want: adapters.Event{Action: adapters.ActionCapture, Reference: "SK-1001", Key: "capture"}},
		{Name: "cancelled", Merchant: m, Header: headers("order.cancelled", "d3", shipped), Body: shipped,
			Want: adapters.Event{Action: adapters.ActionCancel, Reference: "SK-1001"}},
		{Name: "refunded", Merchant: m, Header: headers("order.refunded", "d4", refunded), Body: refunded,
			Want: adapters.Event{Action: adapters.ActionRefund, Reference: "SK-1001", Amount: 19950, Key: "refund:RF-7"}},
		{Name: "unknown event", Merchant: m, Header: headers("customer.created", "d5", shipped), Body: shipped,
			Want: adapters.Event{Action: adapters.ActionIgnore, Reason: `event "customer.created" is not used by kasse`}},
		{Name: "bad order id", Merchant: m, Header: headers("order.shipped", "d6", []byte(`{"order":{"id":"1001"}}`)),
			Body: []byte(`{"order":{"id":"1001"}}`), WantErr: "/order/id: must be a ShopKit order id"},
	})
}

// TestStatusReachesShopKit sends a status update through kasse's notifier to a fake ShopKit API and
// checks the request.
func TestStatusReachesShopKit(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization")+" "+r.Header.Get("X-ShopKit-Store")+" "+string(b))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	m := configMerchant(srv.URL)
	n, err := notify.New(notify.Config{Adapters: adapters.Registered(), Storage: outbound.NewMemoryStorage(), Client: srv.Client(),
		Merchants: merchantsFunc(func(id string) (config.Merchant, bool) { return m, id == "kit" }),
		Logger:    slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	before := &payment.Session{ID: "ks1", Merchant: "kit", Reference: "SK-1001", State: payment.StatePending, Amount: 49900,
		Currency: "NOK", ProviderReference: "kvipps"}
	after := *before
	after.State, after.AuthorizedAmount = payment.StateAuthorized, 49900
	if err := n.SessionChanged(context.Background(), before, &after); err != nil {
		t.Fatal(err)
	}
	if _, err := n.RunOnce(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	want := `POST /v1/orders/SK-1001/payment-status Bearer sk_live_token 42 {"amount_cents":49900,"currency":"NOK","message":"","psp":"vipps","psp_reference":"kvipps","status":"paid"}`
	if len(got) != 1 || got[0] != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

type merchantsFunc func(id string) (config.Merchant, bool)

func (f merchantsFunc) Merchant(id string) (config.Merchant, bool) { return f(id) }

func TestValidate(t *testing.T) {
	if err := (shopkit.Adapter{}).Validate(merchant("https://api.shopkit.example")); err != nil {
		t.Error(err)
	}
	m := adapters.Merchant{ID: "kit", Platform: &adapters.Platform{Kind: "shopkit", Options: map[string]string{"storeId": "forty-two"}}}
	err := shopkit.Adapter{}.Validate(m)
	var fe *adapters.FieldError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "options/storeId: shopkit needs the numeric store id") {
		t.Errorf("got %v", err)
	}
	cm := configMerchant("https://api.shopkit.example")
	cm.Platform.Options = map[string]string{"storeId": "forty-two"}
	cfg := &config.Config{Merchants: map[string]config.Merchant{"kit": cm}}
	if err := hooks.Check(adapters.Registered(), cfg); err == nil ||
		!strings.Contains(err.Error(), "/merchants/kit/platform/options/storeId: merchant kit: shopkit needs the numeric store id") {
		t.Errorf("Check: %v", err)
	}
}

// FuzzParse: Parse may refuse any body but must not panic.
func FuzzParse(f *testing.F) {
	f.Add(fixture(f, "payment_requested.json"), "order.payment_requested")
	f.Add(fixture(f, "refunded.json"), "order.refunded")
	f.Add([]byte(`{"order":null}`), "order.shipped")
	f.Fuzz(func(t *testing.T, body []byte, event string) {
		h := http.Header{}
		h.Set("X-ShopKit-Event", event)
		ev, err := shopkit.Adapter{}.Parse(&adapters.Delivery{Merchant: merchant("https://x.example"), Header: h, Body: body})
		if err == nil && ev.Action == adapters.ActionCheckout && ev.Checkout.Amount <= 0 {
			t.Fatalf("checkout of %d", ev.Checkout.Amount)
		}
	})
}
