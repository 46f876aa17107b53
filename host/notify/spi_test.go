package notify_test

import (
	"context"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/notify"
	"github.com/kassehq/kasse/host/outbound"
)

// renderRecorder is an adapter that keeps every Merchant Render is handed and sends nothing.
type renderRecorder struct {
	mu   sync.Mutex
	seen []adapters.Merchant
}

func (*renderRecorder) Verify(*adapters.Delivery) error { return nil }
func (*renderRecorder) Parse(*adapters.Delivery) (*adapters.Event, error) {
	return &adapters.Event{}, nil
}
func (r *renderRecorder) Render(m adapters.Merchant, _ adapters.StatusUpdate) ([]adapters.Request, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, m)
	return nil, nil
}

// secretsIn returns every string in v, a Secret's value included (reflect reads the underlying string
// and never calls the redacting methods).
func secretsIn(v reflect.Value) []string {
	switch v.Kind() {
	case reflect.String:
		return []string{v.String()}
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return secretsIn(v.Elem())
	case reflect.Struct:
		var out []string
		for i := range v.NumField() {
			out = append(out, secretsIn(v.Field(i))...)
		}
		return out
	case reflect.Slice, reflect.Array:
		var out []string
		for i := range v.Len() {
			out = append(out, secretsIn(v.Index(i))...)
		}
		return out
	case reflect.Map:
		var out []string
		for it := v.MapRange(); it.Next(); {
			out = append(out, secretsIn(it.Key())...)
			out = append(out, secretsIn(it.Value())...)
		}
		return out
	}
	return nil
}

// TestRenderNeverSeesVippsSecrets: the merchant the notifier hands Render holds the platform's own
// access token and none of the merchant's Vipps credentials.
func TestRenderNeverSeesVippsSecrets(t *testing.T) {
	const clientSecret, subscriptionKey = "vipps-client-secret-must-not-leak", "vipps-subscription-key-must-not-leak"
	m := wooMerchant("https://woo.example")
	m.Platform.Kind = "test.render-recorder"
	m.Platform.AccessToken = "platform-token"
	m.Vipps = config.Vipps{ClientSecret: clientSecret, SubscriptionKey: subscriptionKey}
	rec := &renderRecorder{}
	n, err := notify.New(notify.Config{Adapters: []adapters.Info{{ID: "test.render-recorder",
		New: func() adapters.Adapter { return rec }}}, Merchants: merchants{"woo": m},
		Storage: outbound.NewMemoryStorage(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	before, after := sessions()
	if err := n.SessionChanged(context.Background(), before, after); err != nil {
		t.Fatal(err)
	}
	if _, err := n.RunOnce(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.seen) != 1 {
		t.Fatalf("Render was called %d times, want 1", len(rec.seen))
	}
	all := strings.Join(secretsIn(reflect.ValueOf(rec.seen[0])), "\n")
	if strings.Contains(all, clientSecret) || strings.Contains(all, subscriptionKey) {
		t.Error("Render was handed a Vipps secret")
	}
	if p := rec.seen[0].Platform; p == nil || p.AccessToken.Reveal() != "platform-token" {
		t.Errorf("Render did not get the platform's own token: %+v", rec.seen[0])
	}
}
