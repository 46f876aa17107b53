package host_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeWoo is a WooCommerce REST API on loopback that records every call kasse makes to it.
type fakeWoo struct {
	mu    sync.Mutex
	calls []string
	srv   *httptest.Server
}

func newFakeWoo(t *testing.T) *fakeWoo {
	f := &fakeWoo{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		auth := "none"
		if strings.Contains(r.Header.Get("Authorization"), "oauth_signature=") || r.URL.Query().Get("oauth_signature") != "" {
			auth = "oauth"
		} else if _, _, ok := r.BasicAuth(); ok {
			auth = "basic"
		}
		f.mu.Lock()
		f.calls = append(f.calls, r.Method+" "+r.URL.Path+" auth="+auth+" "+string(body))
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":727}`))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeWoo) waitCall(t *testing.T, prefix, contains string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		for _, c := range f.calls {
			if strings.HasPrefix(c, prefix) && strings.Contains(c, contains) {
				f.mu.Unlock()
				return c
			}
		}
		calls := append([]string(nil), f.calls...)
		f.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no call %q containing %q; calls so far:\n%s", prefix, contains, strings.Join(calls, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wooSign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// TestWooCommerceOrderToCapture drives kasse the way a WooCommerce shop does: the order.created webhook
// (the published sample, made payable with Vipps) starts a checkout, the customer approves, kasse marks
// the order paid through the REST API, and the order.updated webhook to "completed" captures.
func TestWooCommerceOrderToCapture(t *testing.T) {
	woo := newFakeWoo(t)
	const secret = "woo-webhook-secret"
	s := newStack(t, stackOptions{
		extraMerchants: wooMerchant(woo.srv.URL),
		env:            wooEnv(secret),
	})
	raw, err := os.ReadFile("../adapters/woocommerce/testdata/woocommerce-order-created.json")
	if err != nil {
		t.Fatal(err)
	}
	// The published sample is a paid USD order; make it a pending Vipps order in NOK.
	order := strings.NewReplacer(`"status": "processing"`, `"status": "pending"`,
		`"payment_method": "bacs"`, `"payment_method": "vipps"`, `"currency": "USD"`, `"currency": "NOK"`).Replace(string(raw))

	deliver := func(topic, body string) result {
		t.Helper()
		resource, event, _ := strings.Cut(topic, ".")
		return s.do("POST", "/hooks/woocommerce/woo", body,
			"Content-Type", "application/json", "Authorization", "",
			"X-WC-Webhook-Topic", topic, "X-WC-Webhook-Resource", resource, "X-WC-Webhook-Event", event,
			"X-WC-Webhook-Source", woo.srv.URL+"/", "X-WC-Webhook-ID", "142",
			"X-WC-Webhook-Delivery-ID", topic+"-1", "X-WC-Webhook-Signature", wooSign(secret, []byte(body)))
	}
	if res := deliver("order.created", order); res.status != http.StatusOK {
		t.Fatalf("order.created: %d %s", res.status, res.raw)
	}
	sess, err := s.kasse.Service.Lookup(t.Context(), "woo", "727")
	if err != nil {
		t.Fatalf("no checkout for WooCommerce order 727: %v", err)
	}
	if sess.Amount != 2935 {
		t.Fatalf("amount %d øre, want 2935 (29.35)", sess.Amount)
	}
	if err := s.sim.Approve(sess.ProviderReference, "91234567"); err != nil {
		t.Fatal(err)
	}
	s.waitState(sess.ID, "authorized")
	paid := woo.waitCall(t, "PUT /wp-json/wc/v3/orders/727", `"set_paid":true`)
	if !strings.Contains(paid, "auth=oauth") || !strings.Contains(paid, `"transaction_id":"`+sess.ProviderReference+`"`) {
		t.Fatalf("order not marked paid with the Vipps reference and signed auth: %s", paid)
	}

	// A tampered delivery changes nothing.
	completed := strings.Replace(order, `"status": "pending"`, `"status": "completed"`, 1)
	bad := s.do("POST", "/hooks/woocommerce/woo", completed, "Content-Type", "application/json",
		"X-WC-Webhook-Topic", "order.updated", "X-WC-Webhook-Signature", wooSign("wrong", []byte(completed)))
	expectProblem(t, bad, http.StatusUnauthorized, "")
	expectAmounts(t, s.get(sess.ID), "state=authorized amount=2935 authorized=2935 captured=0 refunded=0")

	if res := deliver("order.updated", completed); res.status != http.StatusOK {
		t.Fatalf("order.updated: %d %s", res.status, res.raw)
	}
	expectAmounts(t, s.waitState(sess.ID, "captured"), "state=captured amount=2935 authorized=2935 captured=2935 refunded=0")
}
