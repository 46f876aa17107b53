package host_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/internal/urlsecret"
)

// TestOperationsOffThePublicListener: /metrics and /admin/v1 answer only on the operations handler, and
// the public /readyz and /healthz say nothing but their status.
func TestOperationsOffThePublicListener(t *testing.T) {
	const token = "test-admin-token-0123456789"
	s := newStack(t, stackOptions{adminToken: token})
	s.create(49900)
	for _, path := range []string{"/metrics", "/admin/v1/plugins"} {
		expectProblem(t, s.do("GET", path, nil, "Authorization", "Bearer "+token), http.StatusNotFound, "")
	}
	if res := s.ops("GET", "/metrics", nil); res.status != http.StatusOK || !strings.Contains(string(res.raw), "kasse_plugin_calls_total") {
		t.Fatalf("ops /metrics: %d %s", res.status, res.raw)
	}
	if res := s.ops("GET", "/admin/v1/plugins", nil, "Authorization", "Bearer "+token); res.status != http.StatusOK {
		t.Fatalf("ops /admin/v1/plugins: %d %s", res.status, res.raw)
	}
	if res := s.ops("GET", "/readyz", nil); res.status != http.StatusOK {
		t.Fatalf("ops /readyz: %d %s", res.status, res.raw)
	}
	// Without a token configured, the admin API is off everywhere.
	off := newStack(t, stackOptions{})
	if res := off.ops("GET", "/admin/v1/plugins", nil, "Authorization", "Bearer "+token); res.status != http.StatusNotFound {
		t.Fatalf("ops /admin/v1 without a token configured: %d %s", res.status, res.raw)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		res := s.do("GET", path, nil)
		if res.status != http.StatusOK || len(res.body) != 1 {
			t.Fatalf("public %s: %d %s", path, res.status, res.raw)
		}
	}
}

// TestJSONBodiesOnly: bodies that are not JSON by their Content-Type get 415, invalid UTF-8 gets 400, and
// neither reaches Vipps or the store.
func TestJSONBodiesOnly(t *testing.T) {
	s := newStack(t, stackOptions{})
	valid := `{"merchant":"demo","reference":"order-1001","amount":49900,"currency":"NOK","description":"Wool socks",` +
		`"returnUrl":"http://shop.test/orders/1001/thanks"}`
	for _, c := range []struct {
		name, contentType, body string
		status                  int
	}{
		{"text/plain", "text/plain", valid, http.StatusUnsupportedMediaType},
		{"form", "application/x-www-form-urlencoded", valid, http.StatusUnsupportedMediaType},
		{"missing", "", valid, http.StatusUnsupportedMediaType},
		{"json with another charset", "application/json; charset=iso-8859-1", valid, http.StatusUnsupportedMediaType},
		{"json-ish", "application/jsonx", valid, http.StatusUnsupportedMediaType},
		{"invalid UTF-8", "application/json", strings.Replace(valid, "Wool", "W\xffol", 1), http.StatusBadRequest},
		{"lone surrogate half", "application/json", strings.Replace(valid, "Wool", "W\xed\xa0\x80ol", 1), http.StatusBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			expectProblem(t, s.do("POST", "/v1/checkouts", c.body, "Content-Type", c.contentType), c.status, "")
		})
	}
	for _, path := range []string{"/v1/vipps/demo/callback/v2/payments/x", "/v1/checkouts/x/capture"} {
		expectProblem(t, s.do("POST", path, `{}`, "Content-Type", "text/plain"), http.StatusUnsupportedMediaType, "")
	}
	if n := simPaymentCount(t, s); n != 0 {
		t.Fatalf("refused bodies reached Vipps: %d payments", n)
	}
	if res := s.do("POST", "/v1/checkouts", valid, "Content-Type", "application/json; charset=UTF-8"); res.status != http.StatusCreated {
		t.Fatalf("application/json; charset=UTF-8 refused: %d %s", res.status, res.raw)
	}
	if res := s.do("POST", "/v1/checkouts/x/cancel", nil, "Content-Type", ""); res.status != http.StatusNotFound {
		t.Fatalf("an operation without a body: %d %s", res.status, res.raw)
	}
}

// TestExpressURLsNeedTheirSecretSegment: consent removal and shipping details answer 404 without the
// merchant's secret segment, with another merchant's, or with a made-up one.
func TestExpressURLsNeedTheirSecretSegment(t *testing.T) {
	s := newStack(t, stackOptions{})
	good := s.expressPath("demo", "/v2/consents/"+url.PathEscape("some-user"))
	seg := strings.Split(strings.TrimPrefix(good, "/v1/vipps/demo/express/"), "/")[0]
	if len(seg) < 32 {
		t.Fatalf("segment %q is guessable", seg)
	}
	for _, path := range []string{
		"/v1/vipps/demo/express/v2/consents/some-user",
		"/v1/vipps/demo/express/" + strings.Repeat("A", len(seg)) + "/v2/consents/some-user",
		"/v1/vipps/other/express/" + seg + "/v2/consents/some-user",
		"/v1/vipps/demo/express/" + seg[:len(seg)-1] + "/v2/payments/x/shippingDetails",
	} {
		method := "DELETE"
		if strings.HasSuffix(path, "shippingDetails") {
			method = "POST"
		}
		expectProblem(t, s.do(method, path, nil), http.StatusNotFound, "")
	}
	if res := s.do("DELETE", good, nil); res.status != http.StatusOK {
		t.Fatalf("consent removal with the segment: %d %s", res.status, res.raw)
	}
}

// TestSlowClientsCutOff: a client that trickles its headers, or its body, is disconnected by the server's
// timeouts instead of holding a connection; an oversized header block is refused.
func TestSlowClientsCutOff(t *testing.T) {
	s := newStack(t, stackOptions{serverYAML: "  readHeaderTimeout: 300ms\n  readTimeout: 600ms\n  maxHeaderBytes: 8192\n"})
	addr := strings.TrimPrefix(s.baseURL, "http://")

	trickle := func(t *testing.T, head string, drip string) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, head); err != nil {
			t.Fatal(err)
		}
		// Send one byte every 50ms for up to 30s; the server must close the connection long before.
		closed := make(chan struct{})
		go func() {
			_, _ = io.Copy(io.Discard, conn)
			close(closed)
		}()
		for i := 0; i < 600; i++ {
			select {
			case <-closed:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := conn.Write([]byte{drip[i%len(drip)]}); err != nil {
				<-closed
				return
			}
		}
		t.Fatal("the server kept a trickling client for 30s")
	}
	t.Run("headers", func(t *testing.T) {
		trickle(t, "GET /healthz HTTP/1.1\r\nHost: kasse\r\n", "X-Slow: aaaaaaaa")
	})
	t.Run("body", func(t *testing.T) {
		trickle(t, "POST /v1/checkouts HTTP/1.1\r\nHost: kasse\r\nContent-Type: application/json\r\n"+
			"Authorization: Bearer "+apiKey+"\r\nContent-Length: 100000\r\n\r\n", `{"a":1}`)
	})
	t.Run("header size", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, _ = fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: kasse\r\nX-Big: %s\r\n\r\n", strings.Repeat("b", 32<<10))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		if err == nil && res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want 431", res.StatusCode)
		}
	})
}

// TestInsecureNoAuthOnLoopback: a merchant configured with insecureNoAuth (accepted because this kasse
// listens on loopback only) is open; the keyed merchant beside it is not.
func TestInsecureNoAuthOnLoopback(t *testing.T) {
	s := newStack(t, stackOptions{extraMerchants: `
  open:
    plugin: vipps-ecom
    insecureNoAuth: true
    returnUrlPrefixes: ["http://shop.test/"]
    vipps:
      baseUrl: "{{simURL}}"
      merchantSerialNumber: "123456"
      clientId: demo-client-id
      clientSecretEnv: TEST_CLIENT_SECRET
      subscriptionKeyEnv: TEST_SUBSCRIPTION_KEY
`})
	body := checkoutBody(49900)
	body["merchant"] = "open"
	res := s.do("POST", "/v1/checkouts", body, "Authorization", "")
	if res.status != http.StatusCreated {
		t.Fatalf("insecureNoAuth merchant: %d %s", res.status, res.raw)
	}
	if got := s.do("GET", "/v1/checkouts/"+res.body["id"].(string), nil, "Authorization", ""); got.status != http.StatusOK {
		t.Fatalf("insecureNoAuth merchant's checkout: %d %s", got.status, got.raw)
	}
	id, _ := s.create(49900)
	expectProblem(t, s.do("GET", "/v1/checkouts/"+id, nil, "Authorization", ""), http.StatusNotFound, "")
}

// TestWooCommercePingStillAnswered: WooCommerce's creation ping is form-encoded and unsigned; it is the one
// non-JSON body the hooks take, and it must get exactly 200. Other form bodies on a hook get 415.
func TestWooCommercePingStillAnswered(t *testing.T) {
	s := newStack(t, stackOptions{extraMerchants: wooMerchant("https://woo.test"), env: map[string]string{"TEST_WOO_SECRET": "w", "TEST_WOO_KEY": "ck_x", "TEST_WOO_CONSUMER_SECRET": "cs_x"}})
	for _, ct := range []string{"application/x-www-form-urlencoded; charset=UTF-8", ""} {
		if res := s.do("POST", "/hooks/woocommerce/woo", "webhook_id=142", "Content-Type", ct, "Authorization", ""); res.status != http.StatusOK {
			t.Fatalf("ping with Content-Type %q: %d %s", ct, res.status, res.raw)
		}
	}
	expectProblem(t, s.do("POST", "/hooks/woocommerce/woo", "webhook_id=142&x=1", "Content-Type", "application/x-www-form-urlencoded"),
		http.StatusUnsupportedMediaType, "")
	expectProblem(t, s.do("POST", "/v1/checkouts", "webhook_id=142", "Content-Type", "application/x-www-form-urlencoded"),
		http.StatusUnsupportedMediaType, "")
}

// TestConcurrentReloads: ReloadConfig beside itself (and beside the file watcher) is safe; under the race
// detector this caught the checksum written without a lock.
func TestConcurrentReloads(t *testing.T) {
	s := newStack(t, stackOptions{})
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				mu.Lock()
				// vipps-epayment is not loaded here, so the reload is refused after its checksum is taken.
				s.writeConfig([]string{"vipps-ecom", "vipps-epayment"}[(i+j)%2])
				mu.Unlock()
				s.kasse.ReloadConfig()
			}
		}()
	}
	wg.Wait()
	s.writeConfig("vipps-ecom")
	s.kasse.ReloadConfig()
	s.create(49900)
}

// TestURLSecretRotation: after a restart with a new URL secret and the old one as previousUrlSecretEnv,
// the Express URLs given to Vipps before keep working, and new payments get the new segment.
func TestURLSecretRotation(t *testing.T) {
	const newSecret = "the-new-url-secret-of-at-least-32-characters"
	s := newStack(t, stackOptions{serverYAML: "  previousUrlSecretEnv: TEST_OLD_URL_SECRET\n",
		env: map[string]string{"TEST_URL_SECRET": newSecret, "TEST_OLD_URL_SECRET": testURLSecret}})
	oldSeg, newSeg := urlsecret.New(testURLSecret, "").Segment("demo"), urlsecret.New(newSecret, "").Segment("demo")
	if !strings.HasSuffix(s.kasse.Service.ExpressPrefix("demo"), "/"+newSeg) {
		t.Fatalf("prefix %q does not end in the new secret's segment", s.kasse.Service.ExpressPrefix("demo"))
	}
	for _, seg := range []string{oldSeg, newSeg} {
		if res := s.do("DELETE", "/v1/vipps/demo/express/"+seg+"/v2/consents/u1", nil); res.status != http.StatusOK {
			t.Fatalf("segment %s: %d %s", seg, res.status, res.raw)
		}
	}
	// Once the previous secret is no longer named, its segment is gone.
	after := newStack(t, stackOptions{env: map[string]string{"TEST_URL_SECRET": newSecret}})
	expectProblem(t, after.do("DELETE", "/v1/vipps/demo/express/"+oldSeg+"/v2/consents/u1", nil), http.StatusNotFound, "")
}
