package host_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kassehq/kasse/host"
)

// recordingTransport keeps every answer (status line, headers and body) the test's client gets.
type recordingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	buf  bytes.Buffer
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(body))
	r.record(res.Status, res.Header, body)
	return res, nil
}

func (r *recordingTransport) record(status string, h http.Header, body []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf.WriteString(status + "\n")
	_ = h.Write(&r.buf)
	r.buf.Write(body)
	r.buf.WriteString("\n")
}

// lockedBuffer is a log sink safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSecretsStayPut runs the shop API, provider callbacks, a WooCommerce platform (whose REST API is
// down, so kasse logs its failing calls, OAuth-signed in the query over plain http), the operations API
// and refused authentications, capturing every log line kasse writes (all levels) and every answer the
// clients get, and then looks for each configured secret value and each callback token: none may appear.
func TestSecretsStayPut(t *testing.T) {
	const (
		adminToken     = "admin-token-SECRET-0123456789"
		wooAPIKey      = "woo-api-key-SECRET-value"
		wooHookSecret  = "woo-webhook-SECRET-value"
		consumerKey    = "ck_SECRETconsumerkey0123"
		consumerSecret = "cs_SECRETconsumersecret0123"
	)
	// The platform's REST API: a loopback port nobody listens on.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wooURL := "http://" + dead.Addr().String()
	dead.Close()

	logs := &lockedBuffer{}
	s := newStack(t, stackOptions{logs: logs, adminToken: adminToken,
		extraMerchants: `
  woo:
    plugin: vipps-ecom
    apiKeyEnv: TEST_WOO_API_KEY
    returnUrlPrefixes: ["` + wooURL + `/"]
    vipps:
      baseUrl: {{simURL}}
      merchantSerialNumber: "123456"
      clientId: demo-client-id
      clientSecretEnv: TEST_CLIENT_SECRET
      subscriptionKeyEnv: TEST_SUBSCRIPTION_KEY
    platform:
      kind: woocommerce
      webhookSecretEnv: TEST_WOO_SECRET
      baseUrl: ` + wooURL + `/
      consumerKeyEnv: TEST_WOO_KEY
      consumerSecretEnv: TEST_WOO_CONSUMER_SECRET
      gatewayId: vipps
`,
		env: map[string]string{"TEST_WOO_API_KEY": wooAPIKey, "TEST_WOO_SECRET": wooHookSecret,
			"TEST_WOO_KEY": consumerKey, "TEST_WOO_CONSUMER_SECRET": consumerSecret},
	})
	rec := &recordingTransport{next: s.client.Transport}
	s.client.Transport = rec
	ops := func(method, path string, headers ...string) {
		res := s.ops(method, path, nil, headers...)
		rec.record(http.StatusText(res.status), res.header, res.raw)
	}

	// The shop API, with the callback Vipps sends, a capture, a refund and a cancel.
	id, orderID := s.create(49900)
	if err := s.sim.Approve(orderID, "91234567"); err != nil {
		t.Fatal(err)
	}
	tokens := []string{strings.TrimPrefix(lastCallback(t, s, orderID).Header.Get("Authorization"), "Bearer ")}
	s.waitState(id, "authorized")
	s.do("POST", "/v1/checkouts/"+id+"/capture", map[string]any{"amount": 20000})
	s.do("POST", "/v1/checkouts/"+id+"/refund", map[string]any{"amount": 10000})
	other, _ := s.create(15000)
	s.do("POST", "/v1/checkouts/"+other+"/cancel", nil)
	// Refused: another merchant's real key, a key in the wrong form, the admin token on the shop API.
	s.do("GET", "/v1/checkouts/"+id, nil, "Authorization", "Bearer "+wooAPIKey)
	s.do("POST", "/v1/checkouts/"+id+"/capture", nil, "Authorization", apiKey)
	s.do("POST", "/v1/checkouts", checkoutBody(49900), "Authorization", "Bearer "+adminToken)

	// WooCommerce: order.created starts a checkout; once paid kasse tries to mark the order paid, and
	// fails, since the REST API is down.
	raw, err := os.ReadFile("../adapters/woocommerce/testdata/woocommerce-order-created.json")
	if err != nil {
		t.Fatal(err)
	}
	order := strings.NewReplacer(`"status": "processing"`, `"status": "pending"`,
		`"payment_method": "bacs"`, `"payment_method": "vipps"`, `"currency": "USD"`, `"currency": "NOK"`).Replace(string(raw))
	hook := func(key string) result {
		return s.do("POST", "/hooks/woocommerce/woo", order, "Content-Type", "application/json", "Authorization", "",
			"X-WC-Webhook-Topic", "order.created", "X-WC-Webhook-Resource", "order", "X-WC-Webhook-Event", "created",
			"X-WC-Webhook-Source", wooURL+"/", "X-WC-Webhook-ID", "142",
			"X-WC-Webhook-Delivery-ID", "d-"+key[:3], "X-WC-Webhook-Signature", wooSign(key, []byte(order)))
	}
	hook("not-the-secret")
	if res := hook(wooHookSecret); res.status != http.StatusOK {
		t.Fatalf("order.created: %d %s", res.status, res.raw)
	}
	sess, err := s.kasse.Service.Lookup(t.Context(), "woo", "727")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.sim.Approve(sess.ProviderReference, "91234567"); err != nil {
		t.Fatal(err)
	}
	tokens = append(tokens, strings.TrimPrefix(lastCallback(t, s, sess.ProviderReference).Header.Get("Authorization"), "Bearer "))
	waitFor(t, "the WooCommerce order's payment authorized", func() bool {
		res := s.do("GET", "/v1/checkouts/"+sess.ID, nil, "Authorization", "Bearer "+wooAPIKey)
		return res.body["state"] == "authorized"
	})
	waitFor(t, "a failed call to the platform in the log", func() bool {
		return strings.Contains(logs.String(), "wp-json/wc/v3/orders/727")
	})

	// The operations API.
	ops("GET", "/metrics")
	ops("GET", "/readyz")
	ops("GET", "/admin/v1/plugins", "Authorization", "Bearer "+adminToken)
	ops("GET", "/admin/v1/plugins", "Authorization", "Bearer "+adminToken+"x")
	for _, path := range []string{"/v1/checkouts/" + id, "/v1/checkouts/" + sess.ID} {
		res := s.do("GET", path, nil, "Authorization", "Bearer "+map[bool]string{true: apiKey, false: wooAPIKey}[path == "/v1/checkouts/"+id])
		if res.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, res.status, res.raw)
		}
	}

	secrets := map[string]string{
		"API key": apiKey, "other merchant's API key": wooAPIKey, "client secret": "demo-client-secret",
		"subscription key": "demo-subscription-key", "admin token": adminToken, "URL secret": testURLSecret,
		"platform webhook secret": wooHookSecret, "platform consumer key": consumerKey,
		"platform consumer secret": consumerSecret,
	}
	for i, tok := range tokens {
		if len(tok) < 16 {
			t.Fatalf("callback token %d is %q", i, tok)
		}
		secrets["callback token "+string(rune('1'+i))] = tok
	}
	logText := logs.String()
	rec.mu.Lock()
	answers := rec.buf.String()
	rec.mu.Unlock()
	if !strings.Contains(logText, "authentication failed") || !strings.Contains(answers, orderID) ||
		!strings.Contains(logText, "oauth_consumer_key=[redacted]") {
		t.Fatalf("the run did not produce what it checks: %d bytes of logs, %d of answers", len(logText), len(answers))
	}
	for what, v := range secrets {
		for where, text := range map[string]string{"log": logText, "API answers": answers} {
			if i := strings.Index(text, v); i >= 0 {
				t.Errorf("%s found in the %s: ...%s...", what, where, text[max(0, i-200):min(len(text), i+len(v)+50)])
			}
		}
	}
}

// waitFor polls cond until it holds, or fails the test after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEPaymentSecretsStayPut is TestSecretsStayPut for an ePayment merchant: the webhook secret Vipps gave
// at registration, like the credentials, appears in no log line and no answer, through a payment approved in
// the app, its signed webhooks, a capture, and a forged delivery.
func TestEPaymentSecretsStayPut(t *testing.T) {
	logs := &lockedBuffer{}
	sim, simURL := newEPSim(t)
	s := newStack(t, stackOptions{plugin: "vipps-epayment", wasmDir: bothPluginsDir(t), sim: sim, simURL: simURL, logs: logs,
		beforeServe: func(ctx context.Context, srv *host.Server) error { return srv.Webhooks.Sync(ctx) }})
	rec := &recordingTransport{next: s.client.Transport}
	s.client.Transport = rec
	ep := &epStack{stack: s, manager: s.kasse.Webhooks, write: s.writeConfig}
	id := ep.createEP(15000, "91234567")
	regs := sim.RegisteredWebhooks()
	if len(regs) != 1 || len(regs[0].Secret) < 16 {
		t.Fatalf("registrations: %+v", regs)
	}
	if err := sim.ApproveEPayment(id, ""); err != nil {
		t.Fatal(err)
	}
	s.waitState(id, "authorized")
	ep.post(id, "capture", map[string]any{"amount": 5000})
	forged := s.do("POST", "/v1/vipps/demo/webhooks", `{"reference":"`+id+`"}`, "Authorization", "HMAC-SHA256 SignedHeaders=x&Signature=bm9wZQ==")
	if forged.status != http.StatusUnauthorized {
		t.Fatalf("forged webhook: %d %s", forged.status, forged.raw)
	}
	logText := logs.String()
	rec.mu.Lock()
	answers := rec.buf.String()
	rec.mu.Unlock()
	for what, v := range map[string]string{"webhook secret": regs[0].Secret, "API key": apiKey,
		"client secret": "demo-client-secret", "subscription key": "demo-subscription-key", "URL secret": testURLSecret} {
		for where, text := range map[string]string{"log": logText, "API answers": answers} {
			if i := strings.Index(text, v); i >= 0 {
				t.Errorf("%s found in the %s: ...%s...", what, where, text[max(0, i-200):min(len(text), i+len(v)+50)])
			}
		}
	}
}
