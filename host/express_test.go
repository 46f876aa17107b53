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
	"github.com/kassehq/kasse/schemas"
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
		question := `{"addressId":3960,"addressLine1":"Karl Johans gate 1","addressLine2":null,"city":"OSLO","country":"Norway","postCode":"0154","addressType":"H"}`
		path := s.expressPath("demo", "/v2/payments/"+orderID+"/shippingDetails")
		start := time.Now()
		res = s.do("POST", path, question, "Authorization", token)
		elapsed := time.Since(start)
		if res.status != http.StatusOK || res.body["addressId"] != float64(3960) || res.body["orderId"] != orderID ||
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
	question := `{"addressId":3960,"addressLine1":"Storgata 1","city":"TROMSØ","country":"Norway","postCode":"9008"}`
	b.ResetTimer()
	for range b.N {
		if res := s.do("POST", path, question, "Authorization", sess.CallbackToken); res.status != http.StatusOK {
			b.Fatalf("shippingDetails: %d %s", res.status, res.raw)
		}
	}
}

// TestExpressShippingDetailsBodies holds the shipping question to its schema over real HTTP, with each
// store: the bodies of the spec's and the guide's examples, the simulator's and one with fields Vipps may
// add are answered with the options; every malformed body (mistyped or missing fields, values the spec
// refuses, not JSON, not UTF-8, too large) gets a problem document naming the field, and neither reaches
// the plugin (its shipping_options calls, counted in /metrics, do not move) nor changes the session.
func TestExpressShippingDetailsBodies(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		// No reconciler poll during the test: the session must stay byte for byte what it was.
		s := newStack(t, stackOptions{redisURL: redisURL, reconcilerYAML: loadReconciler})
		requireExpressRoutes(t, s)
		s.setExpress("dynamic")
		res := s.do("POST", "/v1/express/demo", expressBody("x-bodies", line("SOCK", 2, 49900)))
		if res.status != http.StatusCreated {
			t.Fatalf("express create: %d %s", res.status, res.raw)
		}
		id := res.body["id"].(string)
		sess, err := s.kasse.Store.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		path := s.expressPath("demo", "/v2/payments/"+sess.ProviderReference+"/shippingDetails")
		ask := func(body string, headers ...string) result {
			return s.do("POST", path, body, append([]string{"Authorization", sess.CallbackToken}, headers...)...)
		}
		calls := func() float64 {
			n, _ := sample(scrape(t, s), "kasse_plugin_call_duration_seconds", map[string]string{"operation": "shipping_options"})
			return n
		}

		good := []struct {
			name, body string
			addressID  float64
		}{
			{"spec example", `{"addressId":100,"addressLine1":"Robert Levins gate 5","addressLine2":"c/o Rune Garborg",` +
				`"city":"Oslo","country":"NO","postCode":"0154","addressType":"H"}`, 100},
			{"guide example", `{"addressId":3960,"addressLine1":"Dronning Eufemias gate 42","addressLine2":null,` +
				`"country":"Norway","city":"OSLO","postCode":"0191","addressType":"H"}`, 3960},
			// As examples/vippssim's fetchShippingOptions writes it (json.Marshal of a map: sorted keys).
			{"simulator", `{"addressId":3961,"addressLine1":"Storgata 1","addressLine2":null,"addressType":"H",` +
				`"city":"TROMSØ","country":"Norway","postCode":"9008"}`, 3961},
			{"required fields only", `{"addressId":3962,"addressLine1":"Storgata 1","city":"BERGEN","country":"NO","postCode":"5003"}`, 3962},
			{"fields Vipps may add", `{"addressId":3963,"addressLine1":"Storgata 1","city":"OSLO","country":"NO","postCode":"0154",` +
				`"addressType":"W","zipCode":"0154","region":{"name":"Oslo"}}`, 3963},
		}
		for _, c := range good {
			t.Run("good/"+c.name, func(t *testing.T) {
				before := calls()
				res := ask(c.body, "Content-Type", "application/json;charset=UTF-8")
				if res.status != http.StatusOK || res.body["addressId"] != c.addressID || res.body["orderId"] != sess.ProviderReference {
					t.Fatalf("%d %s", res.status, res.raw)
				}
				if opts, _ := res.body["shippingDetails"].([]any); len(opts) == 0 {
					t.Fatalf("no shipping options: %s", res.raw)
				}
				if after := calls(); after != before+1 {
					t.Fatalf("shipping_options calls went from %v to %v, want one more", before, after)
				}
			})
		}

		stored := func() (int64, string) {
			got, err := s.kasse.Store.Get(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			return got.Revision, string(s.get(id).raw)
		}
		rev0, view0 := stored()
		calls0 := calls()
		const valid = `"addressLine1":"Storgata 1","city":"OSLO","country":"NO"`
		bad := []struct {
			name, body string
			headers    []string
			status     int
			pointer    string
		}{
			{"not JSON", `{"addressId":3960,` + valid, nil, http.StatusBadRequest, ""},
			{"empty body", "", []string{"Content-Type", "application/json"}, http.StatusBadRequest, ""},
			{"two documents", `{"addressId":3960,` + valid + `,"postCode":"0154"} {}`, nil, http.StatusBadRequest, ""},
			{"not an object", `["addressId",3960]`, nil, http.StatusBadRequest, ""},
			{"null", `null`, nil, http.StatusBadRequest, ""},
			{"missing addressId", `{` + valid + `,"postCode":"0154"}`, nil, http.StatusBadRequest, "/addressId"},
			{"addressId below the spec's minimum", `{"addressId":12,` + valid + `,"postCode":"0154"}`, nil, http.StatusBadRequest, "/addressId"},
			{"addressId as a string", `{"addressId":"3960",` + valid + `,"postCode":"0154"}`, nil, http.StatusBadRequest, "/addressId"},
			{"addressId with a fraction", `{"addressId":3960.5,` + valid + `,"postCode":"0154"}`, nil, http.StatusBadRequest, "/addressId"},
			{"addressId beyond int64", `{"addressId":9223372036854775808,` + valid + `,"postCode":"0154"}`, nil, http.StatusBadRequest, "/addressId"},
			{"addressId too long a literal", `{"addressId":1` + strings.Repeat("0", 120) + `,` + valid + `,"postCode":"0154"}`, nil,
				http.StatusBadRequest, "/addressId"},
			{"missing addressLine1", `{"addressId":3960,"city":"OSLO","country":"NO","postCode":"0154"}`, nil, http.StatusBadRequest, "/addressLine1"},
			{"addressLine1 null", `{"addressId":3960,"addressLine1":null,"city":"OSLO","country":"NO","postCode":"0154"}`, nil,
				http.StatusBadRequest, "/addressLine1"},
			{"addressLine2 a number", `{"addressId":3960,` + valid + `,"postCode":"0154","addressLine2":2}`, nil, http.StatusBadRequest, "/addressLine2"},
			{"missing city", `{"addressId":3960,"addressLine1":"Storgata 1","country":"NO","postCode":"0154"}`, nil, http.StatusBadRequest, "/city"},
			{"city an array", `{"addressId":3960,"addressLine1":"Storgata 1","city":["OSLO"],"country":"NO","postCode":"0154"}`, nil,
				http.StatusBadRequest, "/city"},
			{"country an object", `{"addressId":3960,"addressLine1":"Storgata 1","city":"OSLO","country":{"code":"NO"},"postCode":"0154"}`, nil,
				http.StatusBadRequest, "/country"},
			{"missing postCode", `{"addressId":3960,` + valid + `}`, nil, http.StatusBadRequest, "/postCode"},
			{"zipCode instead of postCode", `{"addressId":3960,` + valid + `,"zipCode":"0154"}`, nil, http.StatusBadRequest, "/postCode"},
			{"postCode a number", `{"addressId":3960,` + valid + `,"postCode":154}`, nil, http.StatusBadRequest, "/postCode"},
			{"postCode of five digits", `{"addressId":3960,` + valid + `,"postCode":"01540"}`, nil, http.StatusBadRequest, "/postCode"},
			{"postCode with a space", `{"addressId":3960,` + valid + `,"postCode":"111 51"}`, nil, http.StatusBadRequest, "/postCode"},
			{"addressType outside its enum", `{"addressId":3960,` + valid + `,"postCode":"0154","addressType":"X"}`, nil,
				http.StatusBadRequest, "/addressType"},
			{"not UTF-8", "{\"addressId\":3960," + valid + ",\"postCode\":\"0154\",\"addressLine2\":\"\xff\"}", nil, http.StatusBadRequest, ""},
			{"not JSON by its type", `{"addressId":3960,` + valid + `,"postCode":"0154"}`, []string{"Content-Type", "text/plain"},
				http.StatusUnsupportedMediaType, ""},
			{"huge", `{"addressId":3960,` + valid + `,"postCode":"0154","addressLine2":"` + strings.Repeat("x", 70<<10) + `"}`, nil,
				http.StatusRequestEntityTooLarge, ""},
		}
		for _, c := range bad {
			t.Run("bad/"+c.name, func(t *testing.T) {
				res := ask(c.body, c.headers...)
				expectProblem(t, res, c.status, c.pointer)
				if c.status == http.StatusBadRequest && c.pointer != "" && !strings.Contains(res.body["detail"].(string), schemas.VippsEcomShippingDetails) {
					t.Errorf("the problem does not name the schema: %s", res.raw)
				}
			})
		}
		// Without the payment's token a bad body is refused for the token, telling nothing of the format.
		expectProblem(t, s.do("POST", path, `{"addressId":12}`, "Authorization", "wrong"), http.StatusUnauthorized, "")

		if got := calls(); got != calls0 {
			t.Errorf("bad bodies reached the plugin: shipping_options calls went from %v to %v", calls0, got)
		}
		if rev, view := stored(); rev != rev0 || view != view0 {
			t.Errorf("bad bodies changed the session: revision %d -> %d\nbefore: %s\nafter:  %s", rev0, rev, view0, view)
		}
	})
}
