package hooks_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/hooks"
	"github.com/kassehq/kasse/host/outbound"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/schemas"
)

// recorder is an adapter that keeps every Merchant it is handed and ignores every delivery.
type recorder struct {
	mu   sync.Mutex
	seen []adapters.Merchant
}

func (r *recorder) keep(m adapters.Merchant) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, m)
}

func (r *recorder) Verify(d *adapters.Delivery) error { r.keep(d.Merchant); return nil }
func (r *recorder) Parse(d *adapters.Delivery) (*adapters.Event, error) {
	r.keep(d.Merchant)
	return &adapters.Event{Action: adapters.ActionIgnore, Reason: "recorded"}, nil
}
func (r *recorder) Render(m adapters.Merchant, _ adapters.StatusUpdate) ([]adapters.Request, error) {
	r.keep(m)
	return nil, nil
}
func (r *recorder) Validate(m adapters.Merchant) error { r.keep(m); return nil }

// reachableStrings returns every string in v, a Secret's value included (reflect reads the underlying
// string and never calls the redacting methods).
func reachableStrings(v reflect.Value) []string {
	switch v.Kind() {
	case reflect.String:
		return []string{v.String()}
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return reachableStrings(v.Elem())
	case reflect.Struct:
		var out []string
		for i := range v.NumField() {
			out = append(out, reachableStrings(v.Field(i))...)
		}
		return out
	case reflect.Slice, reflect.Array:
		var out []string
		for i := range v.Len() {
			out = append(out, reachableStrings(v.Index(i))...)
		}
		return out
	case reflect.Map:
		var out []string
		for it := v.MapRange(); it.Next(); {
			out = append(out, reachableStrings(it.Key())...)
			out = append(out, reachableStrings(it.Value())...)
		}
		return out
	}
	return nil
}

// TestAdapterNeverSeesVippsSecrets: what the hooks hand an adapter (in Verify and Parse, and at start-up
// in Validate) holds the merchant's own platform secret and none of its Vipps credentials. The type
// itself has no field for them (host/internal/adapterview checks that); this checks the values end to end.
func TestAdapterNeverSeesVippsSecrets(t *testing.T) {
	const (
		clientSecret    = "vipps-client-secret-must-not-leak"
		subscriptionKey = "vipps-subscription-key-must-not-leak"
		webhookSecret   = "recorder-webhook-secret"
	)
	m := config.Merchant{ID: "rec", ReturnURLPrefixes: []string{"https://rec.example/"},
		Vipps: config.Vipps{ClientID: "client-id", ClientSecretEnv: "V_CS", ClientSecret: clientSecret,
			SubscriptionKeyEnv: "V_SK", SubscriptionKey: subscriptionKey, MerchantSerialNumber: "123456"},
		Platform: &config.Platform{Kind: "test.recorder", WebhookSecretEnv: "R_WS", WebhookSecret: webhookSecret,
			BaseURL: "https://rec.example"}}
	rec := &recorder{}
	set := []adapters.Info{{ID: "test.recorder", New: func() adapters.Adapter { return rec }}}
	if err := hooks.Check(set, &config.Config{Merchants: map[string]config.Merchant{"rec": m}}); err != nil {
		t.Fatal(err)
	}
	sch, err := schemas.Compile()
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	if _, err := hooks.Mount(r, hooks.Deps{Adapters: set, Merchants: merchants{"rec": m}, Checkouts: newFake(),
		Claims: store.NewMemory(), Schemas: sch, InboxStorage: outbound.NewMemoryStorage(), MaxBodyBytes: 64 << 10,
		Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/hooks/test.recorder/rec", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.seen) != 3 { // Validate, Verify, Parse
		t.Fatalf("the adapter was called %d times, want 3", len(rec.seen))
	}
	for i, got := range rec.seen {
		all := strings.Join(reachableStrings(reflect.ValueOf(got)), "\n")
		for _, secret := range []string{clientSecret, subscriptionKey} {
			if strings.Contains(all, secret) {
				t.Errorf("call %d: the adapter was handed a Vipps secret", i)
			}
		}
		if got.ID != "rec" || got.Platform == nil || got.Platform.WebhookSecret.Reveal() != webhookSecret {
			t.Errorf("call %d: the adapter did not get its own platform section: %+v", i, got)
		}
	}
}
