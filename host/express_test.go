package host_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kassehq/kasse/examples/vippssim"
)

// expressConfig is the demo merchant's Express settings, appended to the stack's config file (the merchant
// is the file's last entry): dynamic shipping with free shipping over 1000 NOK, a dearer rate for
// Northern Norway and a pick-up point for Oslo postcodes.
func expressConfig(mode string) string {
	return `    expressCheckout: true
    shipping:
      mode: ` + mode + `
      methods:
        - {id: posten, name: Posten Servicepakke, cost: 9900, default: true}
        - {id: pickup-oslo, name: Pick up in Oslo, cost: 0, pickupPoint: true, countries: ["NO"], postCodePrefixes: ["0", "1"]}
      rules:
        - {methods: [posten], minAmount: 100000, cost: 0}
        - {methods: [posten], postCodePrefixes: ["9"], cost: 14900}
`
}

// requireExpressRoutes fails the test with what to do when the HTTP API does not serve the Express routes.
func requireExpressRoutes(t testing.TB, s *stack) {
	t.Helper()
	res := s.do("GET", "/v1/express/demo", nil)
	if res.status == http.StatusNotFound && strings.Contains(string(res.raw), "no route") {
		t.Fatal("the Express routes are not wired into the HTTP API: httpapi.New must call a.expressRoutes(r) " +
			"(host/httpapi/express.go)")
	}
}

// setExpress rewrites the stack's config file with Express on (mode "static" or "dynamic") or off, and
// reloads it as the running server's poll would.
func (s *stack) setExpress(mode string) {
	s.t.Helper()
	raw, err := os.ReadFile(s.configPath)
	if err != nil {
		s.t.Fatal(err)
	}
	cfg := string(raw)
	if i := strings.Index(cfg, "    expressCheckout:"); i >= 0 {
		cfg = cfg[:i]
	}
	if mode != "" {
		cfg += expressConfig(mode)
	}
	if err := os.WriteFile(s.configPath, []byte(cfg), 0o600); err != nil {
		s.t.Fatal(err)
	}
	if !s.kasse.ReloadConfig() {
		s.t.Fatalf("config with express %q was not activated", mode)
	}
}

func expressBody(reference string, lines ...map[string]any) map[string]any {
	var amount int64
	for _, l := range lines {
		amount += l["quantity"].(int64) * l["unitPrice"].(int64)
	}
	return map[string]any{
		"merchant": "demo", "reference": reference, "amount": amount, "currency": "NOK",
		"description": "Express order " + reference, "returnUrl": "http://shop.test/orders/" + reference + "/thanks",
		"lines": lines,
	}
}

func line(sku string, qty, price int64) map[string]any {
	return map[string]any{"sku": sku, "name": "Item " + sku, "quantity": qty, "unitPrice": price}
}

// TestExpressCheckout runs Express end to end over real HTTP, with each store: the toggle (off, then on by
// a config reload), the Express initiate, the simulator's address and shipping choice with kasse's dynamic
// shipping answer computed from the stored cart, the RESERVE callback with user and shipping details, a
// capture of goods plus shipping, and consent removal.
func TestExpressCheckout(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		s := newStack(t, stackOptions{redisURL: redisURL})
		requireExpressRoutes(t, s)

		res := s.do("POST", "/v1/express/demo", expressBody("x-1", line("SOCK", 1, 49900)))
		expectProblem(t, res, http.StatusForbidden, "")
		if res.body["merchant"] != "demo" || !strings.Contains(res.body["detail"].(string), "expressCheckout") {
			t.Fatalf("off: problem does not name the merchant and the setting: %s", res.raw)
		}
		if res := s.do("GET", "/v1/express/demo", nil); res.body["expressCheckout"] != false {
			t.Fatalf("GET /v1/express/demo while off: %s", res.raw)
		}

		s.setExpress("dynamic")
		if res := s.do("GET", "/v1/express/demo", nil); res.body["expressCheckout"] != true {
			t.Fatalf("GET /v1/express/demo after the reload: %s", res.raw)
		}
		res = s.do("POST", "/v1/express/demo", expressBody("x-1", line("SOCK", 1, 49900)))
		if res.status != http.StatusCreated || res.body["express"] != true {
			t.Fatalf("express create: %d %s", res.status, res.raw)
		}
		id, orderID := res.body["id"].(string), res.body["providerReference"].(string)
		if res := s.do("POST", "/v1/express/other", expressBody("x-1", line("SOCK", 1, 49900))); res.status != http.StatusUnprocessableEntity {
			t.Fatalf("merchant in the path differs from the body's: %d %s", res.status, res.raw)
		}

		// The customer ships to Tromsø (postcode 9xxx): Posten costs 149 NOK by the rule, no pick-up point.
		addr := vippssim.DemoAddress()
		addr.Line1, addr.PostCode, addr.City = "Storgata 1", "9008", "TROMSØ"
		if err := s.sim.ApproveExpress(context.Background(), orderID, vippssim.ExpressChoice{Phone: "91234567", Address: addr}); err != nil {
			t.Fatal(err)
		}
		snap, _ := s.sim.Payment(orderID)
		if got := snap.Express.Offered; len(got) != 1 || got[0].ID != "posten" || got[0].Cost != 14900 {
			t.Fatalf("kasse offered %+v, want Posten at 149 NOK only", got)
		}
		sess := s.waitState(id, "authorized")
		expectAmounts(t, sess, "state=authorized amount=49900 authorized=64800 captured=0 refunded=0")
		ship := sess.body["shipping"].(map[string]any)
		address := ship["address"].(map[string]any)
		contact := sess.body["contact"].(map[string]any)
		if ship["methodId"] != "posten" || ship["cost"] != float64(14900) || address["postCode"] != "9008" ||
			address["country"] != "NO" || contact["firstName"] != "Ada" || contact["userId"] != snap.Express.UserID {
			t.Fatalf("express details not stored: %s", sess.raw)
		}

		// The shipping question answers from the stored cart, checks the authToken, and is fast.
		cb := lastCallback(t, s, orderID)
		token := cb.Header.Get("Authorization")
		if !strings.HasPrefix(cb.URL, s.kasse.Service.ExpressPrefix("demo")+"/v2/payments/") || token == "" || cb.Status != "RESERVE" {
			t.Fatalf("express callback %s %s with token %t", cb.Status, cb.URL, token != "")
		}
		question := `{"addressId":12,"addressLine1":"Karl Johans gate 1","addressLine2":null,"city":"OSLO","country":"Norway","postCode":"0154","addressType":"H"}`
		path := s.expressPath("demo", "/v2/payments/"+orderID+"/shippingDetails")
		start := time.Now()
		res = s.do("POST", path, question, "Authorization", token)
		elapsed := time.Since(start)
		if res.status != http.StatusOK || res.body["addressId"] != float64(12) || res.body["orderId"] != orderID ||
			!strings.Contains(string(res.raw), `"shippingMethodId":"pickup-oslo"`) || !strings.Contains(string(res.raw), `"shippingCost":99.00`) {
			t.Fatalf("shippingDetails: %d %s", res.status, res.raw)
		}
		t.Logf("shippingDetails answered in %s (Vipps waits 10 s)", elapsed)
		if res := s.do("POST", path, question, "Authorization", "wrong"); res.status != http.StatusUnauthorized {
			t.Fatalf("shippingDetails with a wrong authToken: %d %s", res.status, res.raw)
		}

		res = s.do("POST", "/v1/checkouts/"+id+"/capture", nil)
		if res.status != http.StatusOK {
			t.Fatalf("capture: %d %s", res.status, res.raw)
		}
		expectAmounts(t, s.get(id), "state=captured amount=49900 authorized=64800 captured=64800 refunded=0")

		// Consent removal, with the userId URL-encoded as Vipps sends it.
		removed := s.sim.RemoveConsent(context.Background(), snap.Express.UserID)
		if len(removed) != 1 || removed[0].StatusCode != http.StatusOK ||
			!strings.HasSuffix(removed[0].URL, "/v2/consents/"+url.QueryEscape(snap.Express.UserID)) {
			t.Fatalf("consent removal: %+v", removed)
		}
		sess = s.get(id)
		if sess.body["contact"] != nil || sess.body["customer"] != nil {
			t.Fatalf("personal data left after consent removal: %s", sess.raw)
		}
		ship = sess.body["shipping"].(map[string]any)
		if ship["address"] != nil || ship["methodId"] != "posten" || ship["cost"] != float64(14900) {
			t.Fatalf("shipping after consent removal: %v", ship)
		}
		expectAmounts(t, sess, "state=captured amount=49900 authorized=64800 captured=64800 refunded=0")
		if sess.body["reference"] != "x-1" || !strings.Contains(string(sess.raw), "consent removed") {
			t.Fatalf("reference or history lost: %s", sess.raw)
		}
		// A user kasse does not know is answered 200 as well.
		if res := s.do("DELETE", s.expressPath("demo", "/v2/consents/"+url.QueryEscape("nobody/x+y==")), nil); res.status != http.StatusOK {
			t.Fatalf("consent removal of an unknown user: %d %s", res.status, res.raw)
		}
	})
}

// TestExpressStaticShipping checks static shipping: the options go to Vipps with the payment, free
// shipping applies from the stored cart's total, and no shipping question is asked.
func TestExpressStaticShipping(t *testing.T) {
	s := newStack(t, stackOptions{})
	requireExpressRoutes(t, s)
	s.setExpress("static")
	noLines := expressBody("x-2")
	delete(noLines, "lines")
	noLines["amount"] = int64(10000)
	expectProblem(t, s.do("POST", "/v1/express/demo", noLines), http.StatusUnprocessableEntity, "/lines")
	wrongSum := expressBody("x-2", line("COAT", 1, 120000))
	wrongSum["amount"] = int64(110000)
	expectProblem(t, s.do("POST", "/v1/express/demo", wrongSum), http.StatusUnprocessableEntity, "/amount")
	res := s.do("POST", "/v1/express/demo", expressBody("x-2", line("COAT", 1, 120000)))
	if res.status != http.StatusCreated {
		t.Fatalf("express create: %d %s", res.status, res.raw)
	}
	id, orderID := res.body["id"].(string), res.body["providerReference"].(string)
	snap, _ := s.sim.Payment(orderID)
	if got := snap.Express.Static; len(got) != 1 || got[0].ID != "posten" || got[0].Cost != 0 || snap.Express.ShippingDetailsPrefix != "" {
		t.Fatalf("static shipping sent %+v (prefix %q), want Posten free over 1000 NOK", got, snap.Express.ShippingDetailsPrefix)
	}
	if err := s.sim.Approve(orderID, "91234567"); err != nil {
		t.Fatal(err)
	}
	sess := s.waitState(id, "authorized")
	expectAmounts(t, sess, "state=authorized amount=120000 authorized=120000 captured=0 refunded=0")
	if ship := sess.body["shipping"].(map[string]any); ship["method"] != "Posten Servicepakke" {
		t.Fatalf("shipping %v", ship)
	}

	// The config is YAML 1.2: a bare NO is the country code (YAML 1.1 read it as false).
	raw, err := os.ReadFile(s.configPath)
	if err != nil {
		t.Fatal(err)
	}
	bare := strings.Replace(string(raw), `countries: ["NO"]`, `countries: [NO]`, 1)
	if err := os.WriteFile(s.configPath, []byte(bare), 0o600); err != nil {
		t.Fatal(err)
	}
	if !s.kasse.ReloadConfig() {
		t.Fatal("a config with countries: [NO] was refused")
	}
	// A file that fails its schema is refused; the running config stays.
	broken := strings.Replace(bare, `countries: [NO]`, `countries: [Norway]`, 1)
	if err := os.WriteFile(s.configPath, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	if s.kasse.ReloadConfig() {
		t.Fatal("a config with countries: [Norway] was activated")
	}
	if res := s.do("GET", "/v1/express/demo", nil); res.body["expressCheckout"] != true {
		t.Fatalf("the running config did not stay: %s", res.raw)
	}

	// Switching Express off again refuses new Express checkouts, without a restart.
	s.setExpress("")
	expectProblem(t, s.do("POST", "/v1/express/demo", expressBody("x-3", line("SOCK", 1, 49900))), http.StatusForbidden, "")
}

// BenchmarkShippingDetails measures Vipps's Express shipping question over real HTTP on loopback: the
// session lookup, the token check and the plugin's computation from the stored cart. Vipps waits 10 s;
// kasse aims under 50 ms.
func BenchmarkShippingDetails(b *testing.B) {
	s := newStack(b, stackOptions{})
	requireExpressRoutes(b, s)
	s.setExpress("dynamic")
	res := s.do("POST", "/v1/express/demo", expressBody("bench-1", line("SOCK", 2, 49900), line("HAT", 1, 34900)))
	if res.status != http.StatusCreated {
		b.Fatalf("express create: %d %s", res.status, res.raw)
	}
	sess, err := s.kasse.Store.Get(context.Background(), res.body["id"].(string))
	if err != nil {
		b.Fatal(err)
	}
	path := s.expressPath("demo", "/v2/payments/"+sess.ProviderReference+"/shippingDetails")
	question := `{"addressId":12,"addressLine1":"Storgata 1","city":"TROMSØ","country":"Norway","postCode":"9008"}`
	b.ResetTimer()
	for range b.N {
		if res := s.do("POST", path, question, "Authorization", sess.CallbackToken); res.status != http.StatusOK {
			b.Fatalf("shippingDetails: %d %s", res.status, res.raw)
		}
	}
}
