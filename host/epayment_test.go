package host_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kassehq/kasse/examples/vippssim"
	"github.com/kassehq/kasse/host"
	"github.com/kassehq/kasse/host/webhooks"

	// host.New serves the registered platform adapters, as cmd/kasse does.
	_ "github.com/kassehq/kasse/adapters/standard"
)

// The ePayment end-to-end tests run kasse with both plugins, the simulator's ePayment and Webhooks APIs,
// and the webhook wiring the lead adds to host.go and httpapi (prototyped here in epStack, see
// webhookHandler): POST /v1/vipps/{merchant}/webhooks -> checkout.Service.Webhook, verified by a
// webhooks.Manager that registers the URL with the simulator.

// bothPlugins holds vipps-ecom and vipps-epayment.
var bothPlugins = &pluginsDir{prefix: "kasse-e2e-both-", plugins: map[string]string{
	"./plugin/vippsecom": "vipps-ecom", "./plugin/vippsepayment": "vipps-epayment",
}}

// bothPluginsDir builds vipps-ecom and vipps-epayment once per test binary.
func bothPluginsDir(t testing.TB) string {
	t.Helper()
	return bothPlugins.get(t)
}

// epStack is one kasse instance serving the API and the webhook route, with its reconciler and webhook
// registration manager running.
type epStack struct {
	*stack
	manager *webhooks.Manager
	// write rewrites the config file with the demo merchant on another plugin (stack.writeConfig).
	write func(plugin string)
}

type epOptions struct {
	plugin   string // the merchant's plugin; default vipps-epayment
	redisURL string
	sim      *vippssim.Server
	simURL   string
	// transport, if set, carries the provider requests (under the OpenAPI check).
	transport http.RoundTripper
}

// newEPSim serves a simulator that retries webhook deliveries quickly.
func newEPSim(t testing.TB) (*vippssim.Server, string) {
	t.Helper()
	return startSim(t, vippssim.Config{WebhookRetry: 20 * time.Millisecond, WebhookRetryMax: 200 * time.Millisecond})
}

// newEPStack is newStack with both plugins, the merchant on o.plugin, a simulator from newEPSim and the
// webhook registration synced before the instance serves.
func newEPStack(t *testing.T, o epOptions) *epStack {
	t.Helper()
	if o.plugin == "" {
		o.plugin = "vipps-epayment"
	}
	if o.sim == nil {
		o.sim, o.simURL = newEPSim(t)
	}
	s := newStack(t, stackOptions{
		plugin: o.plugin, wasmDir: bothPluginsDir(t), redisURL: o.redisURL, sim: o.sim, simURL: o.simURL,
		transport: o.transport,
		// The instance registers its webhook with the simulator before it serves, as Serve would soon after.
		beforeServe: func(ctx context.Context, srv *host.Server) error { return srv.Webhooks.Sync(ctx) },
	})
	return &epStack{stack: s, manager: s.kasse.Webhooks, write: s.writeConfig}
}

// createEP creates a checkout and returns its id; with phone the flow is PUSH_MESSAGE (no redirect).
func (s *epStack) createEP(amount int64, phone string) string {
	s.t.Helper()
	body := checkoutBody(amount)
	if phone == "" {
		delete(body, "customer")
	} else {
		body["customer"] = map[string]any{"phoneNumber": phone}
	}
	res := s.do("POST", "/v1/checkouts", body)
	if res.status != http.StatusCreated {
		s.t.Fatalf("create: %d %s", res.status, res.raw)
	}
	id, _ := res.body["id"].(string)
	u, _ := res.body["redirectUrl"].(string)
	switch {
	case phone == "" && !strings.HasPrefix(u, s.simURL+"/epayment-landing/v1?token="):
		s.t.Fatalf("WEB_REDIRECT checkout: redirectUrl %q", u)
	case phone != "" && u != "":
		s.t.Fatalf("PUSH_MESSAGE checkout has a redirectUrl %q", u)
	}
	return id
}

func (s *epStack) post(id, op string, body any) result {
	s.t.Helper()
	res := s.do("POST", "/v1/checkouts/"+id+"/"+op, body)
	if res.status != http.StatusOK {
		s.t.Fatalf("%s %s: %d %s", op, id, res.status, res.raw)
	}
	return res
}

// causes lists a session's history causes.
func causes(res result) string {
	var out []string
	hist, _ := res.body["history"].([]any)
	for _, h := range hist {
		m, _ := h.(map[string]any)
		out = append(out, fmt.Sprint(m["cause"]))
	}
	return strings.Join(out, ", ")
}

func TestEPaymentPayCaptureRefund(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		s := newEPStack(t, epOptions{redisURL: redisURL})
		id := s.createEP(49900, "")
		if snap, ok := s.sim.EPayment(id); !ok || snap.UserFlow != "WEB_REDIRECT" || snap.ReturnURL != s.baseURL+"/v1/checkouts/"+id+"/return" {
			t.Fatalf("simulator has %+v", snap)
		}
		// The customer goes through the landing page and comes back through kasse to the shop.
		redirect, _ := s.get(id).body["redirectUrl"].(string)
		browser := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for _, form := range []string{"step=phone&phone=91234567", "step=confirm&phone=91234567&action=confirm"} {
			resp, err := browser.Post(redirect, "application/x-www-form-urlencoded", strings.NewReader(form))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if loc := resp.Header.Get("Location"); strings.HasPrefix(form, "step=confirm") &&
				(resp.StatusCode != http.StatusSeeOther || loc != s.baseURL+"/v1/checkouts/"+id+"/return") {
				t.Fatalf("landing page confirm: %d to %q", resp.StatusCode, loc)
			}
		}
		res := s.waitState(id, "authorized")
		expectAmounts(t, res, "state=authorized amount=49900 authorized=49900 captured=0 refunded=0")
		if !strings.Contains(causes(res), "webhook AUTHORIZED") {
			t.Fatalf("authorized without the webhook: %s", causes(res))
		}
		ret := s.do("GET", "/v1/checkouts/"+id+"/return", nil)
		if loc := ret.header.Get("Location"); ret.status != http.StatusSeeOther || !strings.Contains(loc, "kasse_state=authorized") {
			t.Fatalf("return: %d %q", ret.status, loc)
		}
		for _, st := range []struct {
			op   string
			body any
			want string
		}{
			{"capture", map[string]any{"amount": 20000}, "state=captured amount=49900 authorized=49900 captured=20000 refunded=0"},
			{"capture", nil, "state=captured amount=49900 authorized=49900 captured=49900 refunded=0"},
			{"refund", map[string]any{"amount": 10000}, "state=captured amount=49900 authorized=49900 captured=49900 refunded=10000"},
			{"refund", nil, "state=refunded amount=49900 authorized=49900 captured=49900 refunded=49900"},
		} {
			expectAmounts(t, s.post(id, st.op, st.body), st.want)
		}
		expectProblem(t, s.do("POST", "/v1/checkouts/"+id+"/refund", nil), http.StatusConflict, "")
		snap, _ := s.sim.EPayment(id)
		if snap.Captured != 49900 || snap.Refunded != 49900 {
			t.Fatalf("simulator: %+v", snap)
		}
		// Every webhook was delivered, verified, at the first attempt.
		if !s.sim.FlushWebhooks(5 * time.Second) {
			t.Fatal("webhooks still queued")
		}
		for _, d := range s.sim.Webhooks() {
			if d.StatusCode != http.StatusNoContent || d.Attempt != 1 {
				t.Errorf("webhook %s for %s: attempt %d answered %d %s", d.Event, d.Reference, d.Attempt, d.StatusCode, d.Err)
			}
		}
		expectAmounts(t, s.get(id), "state=refunded amount=49900 authorized=49900 captured=49900 refunded=49900")
	})
}

func TestEPaymentPushCancelRejectExpire(t *testing.T) {
	s := newEPStack(t, epOptions{})
	pushed := s.createEP(15000, "91234567")
	if snap, _ := s.sim.EPayment(pushed); snap.UserFlow != "PUSH_MESSAGE" || snap.Phone != "4791234567" {
		t.Fatalf("simulator has %+v", snap)
	}
	expectAmounts(t, s.post(pushed, "cancel", nil), "state=cancelled amount=15000 authorized=0 captured=0 refunded=0")
	if snap, _ := s.sim.EPayment(pushed); snap.State != "TERMINATED" {
		t.Fatalf("simulator state %s", snap.State)
	}

	rejected := s.createEP(15000, "")
	if err := s.sim.RejectEPayment(rejected); err != nil {
		t.Fatal(err)
	}
	s.waitState(rejected, "rejected")
	expired := s.createEP(15000, "")
	if err := s.sim.ExpireEPayment(expired); err != nil {
		t.Fatal(err)
	}
	s.waitState(expired, "expired")

	// Cancel after a partial capture releases the rest; the state machine ends in captured.
	partial := s.createEP(30000, "")
	if err := s.sim.ApproveEPayment(partial, ""); err != nil {
		t.Fatal(err)
	}
	s.waitState(partial, "authorized")
	s.post(partial, "capture", map[string]any{"amount": 10000})
	res := s.post(partial, "cancel", nil)
	if res.body["cancelledAmount"] != float64(20000) || res.body["state"] != "captured" {
		t.Fatalf("cancel after partial capture: %s", res.raw)
	}
}

func TestEPaymentLostWebhooksAreReconciled(t *testing.T) {
	s := newEPStack(t, epOptions{})
	s.sim.SetWebhookMode(vippssim.WebhookHold)
	id := s.createEP(15000, "")
	if err := s.sim.ApproveEPayment(id, ""); err != nil {
		t.Fatal(err)
	}
	res := s.waitState(id, "authorized")
	if !strings.Contains(causes(res), "status check") {
		t.Fatalf("authorized other than by the reconciler: %s", causes(res))
	}
	// The held events arrive late, in order, are accepted, and change nothing.
	s.sim.SetWebhookMode(vippssim.WebhookDeliver)
	if !s.sim.FlushWebhooks(5 * time.Second) {
		t.Fatal("webhooks still queued")
	}
	for _, d := range s.sim.Webhooks() {
		if d.StatusCode != http.StatusNoContent {
			t.Errorf("late %s answered %d", d.Event, d.StatusCode)
		}
	}
	after := s.get(id)
	expectAmounts(t, after, "state=authorized amount=15000 authorized=15000 captured=0 refunded=0")
	if c := causes(after); strings.Contains(c, "webhook") {
		t.Fatalf("late webhooks changed the session: %s", c)
	}
}

func TestEPaymentDuplicateWebhooksAppliedOnce(t *testing.T) {
	s := newEPStack(t, epOptions{})
	s.sim.SetWebhookMode(vippssim.WebhookDuplicate)
	id := s.createEP(15000, "")
	if err := s.sim.ApproveEPayment(id, ""); err != nil {
		t.Fatal(err)
	}
	s.waitState(id, "authorized")
	s.post(id, "capture", nil)
	if !s.sim.FlushWebhooks(5 * time.Second) {
		t.Fatal("webhooks still queued")
	}
	n := 0
	for _, d := range s.sim.Webhooks() {
		if d.Reference == id && d.Event == "AUTHORIZED" && d.StatusCode == http.StatusNoContent {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("AUTHORIZED delivered %d times, want 2", n)
	}
	c := causes(s.get(id))
	if strings.Count(c, "authorized") > 0 || strings.Count(c, "webhook AUTHORIZED")+strings.Count(c, "status check") != 1 {
		t.Fatalf("history: %s", c)
	}
}

// TestEPaymentUnverifiedWebhooks sends forged, tampered, stale and replayed deliveries: none changes a
// session, and each unverified one only leads to a status check.
func TestEPaymentUnverifiedWebhooks(t *testing.T) {
	counter := &countingTransport{next: http.DefaultTransport, n: map[string]int{}}
	s := newEPStack(t, epOptions{transport: counter})
	id := s.createEP(15000, "91234567")
	regs := s.sim.RegisteredWebhooks()
	if len(regs) != 1 || regs[0].URL != s.baseURL+"/v1/vipps/demo/webhooks" {
		t.Fatalf("registrations: %+v", regs)
	}
	secret := regs[0].Secret
	event := `{"msn":"123456","reference":"` + id + `","pspReference":"p-1","name":"AUTHORIZED","amount":{"currency":"NOK","value":15000},"timestamp":"2026-11-25T12:00:00Z","idempotencyKey":null,"success":true}`
	send := func(secret string, at time.Time, edit func(*webhooks.Request)) int {
		t.Helper()
		u := s.baseURL + "/v1/vipps/demo/webhooks"
		req := webhooks.Request{Method: "POST", PathAndQuery: "/v1/vipps/demo/webhooks", Host: strings.TrimPrefix(s.baseURL, "http://"),
			Body: []byte(event)}
		webhooks.Sign(secret, &req, at)
		if edit != nil {
			edit(&req)
		}
		hr, _ := http.NewRequest("POST", u, strings.NewReader(string(req.Body)))
		hr.Header.Set("Content-Type", "application/json")
		hr.Header.Set("x-ms-date", req.Date)
		hr.Header.Set("x-ms-content-sha256", req.ContentSHA256)
		hr.Header.Set("Authorization", req.Authorization)
		resp, err := s.client.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	now := time.Now()
	for name, code := range map[string]int{
		"wrong secret": send("not-the-secret", now, nil),
		"tampered":     send(secret, now, func(r *webhooks.Request) { r.Body = []byte(strings.Replace(event, "15000", "15001", 1)) }),
		"stale":        send(secret, now.Add(-10*time.Minute), nil),
		"unsigned":     send(secret, now, func(r *webhooks.Request) { r.Authorization = "" }),
	} {
		if code != http.StatusUnauthorized {
			t.Errorf("%s: answered %d, want 401", name, code)
		}
	}
	time.Sleep(500 * time.Millisecond) // the status checks the forgeries asked for run
	res := s.get(id)
	if res.body["state"] != "pending" || strings.Contains(causes(res), "webhook") {
		t.Fatalf("an unverified delivery changed the session: %s", res.raw)
	}

	// Signed, but not this payment's amount: let go (204) and changes nothing.
	if code := send(secret, now, func(r *webhooks.Request) {
		r.Body = []byte(strings.Replace(event, "15000", "15001", 1))
		r.ContentSHA256 = webhooks.ContentHash(r.Body)
		r.Authorization = webhooks.Authorization(webhooks.Signature(secret, "POST", r.PathAndQuery, r.Date, r.Host, r.ContentSHA256))
	}); code != http.StatusNoContent {
		t.Fatalf("a signed event for another amount answered %d", code)
	}
	if res := s.get(id); res.body["state"] != "pending" {
		t.Fatalf("a mismatched event changed the session: %s", res.raw)
	}

	// The customer approves: the real delivery applies; replaying it (same headers, within the skew) is
	// accepted and changes nothing.
	if err := s.sim.ApproveEPayment(id, ""); err != nil {
		t.Fatal(err)
	}
	s.waitState(id, "authorized")
	before := causes(s.get(id))
	if code := send(secret, now, nil); code != http.StatusNoContent {
		t.Fatalf("replay answered %d", code)
	}
	if after := causes(s.get(id)); strings.Count(after, "webhook") != strings.Count(before, "webhook") {
		t.Fatalf("replay changed history: %s -> %s", before, after)
	}

	// A forged CAPTURED for the authorized session (whose polling has stopped) changes nothing but makes
	// kasse ask Vipps for the payment.
	gets := counter.count("GET /epayment/v1/payments/" + id)
	event = strings.Replace(strings.Replace(event, "AUTHORIZED", "CAPTURED", 1), "p-1", "p-2", 1)
	if code := send("not-the-secret", time.Now(), nil); code != http.StatusUnauthorized {
		t.Fatalf("forged capture answered %d", code)
	}
	deadline := time.Now().Add(5 * time.Second)
	for counter.count("GET /epayment/v1/payments/"+id) == gets {
		if time.Now().After(deadline) {
			t.Fatal("no status check after an unverified delivery")
		}
		time.Sleep(20 * time.Millisecond)
	}
	expectAmounts(t, s.get(id), "state=authorized amount=15000 authorized=15000 captured=0 refunded=0")

	if code := send(secret, now, func(r *webhooks.Request) {
		r.Body = []byte(`{"msn":"123456"}`)
		r.ContentSHA256 = webhooks.ContentHash(r.Body)
		r.Authorization = webhooks.Authorization(webhooks.Signature(secret, "POST", r.PathAndQuery, r.Date, r.Host, r.ContentSHA256))
	}); code != http.StatusBadRequest {
		t.Fatalf("a signed event that fails its schema answered %d", code)
	}
}

// TestMerchantSwitchEComToEPayment moves a merchant from eCom to ePayment with live sessions in every
// state: after the config reload new checkouts go to ePayment, and the eCom sessions keep their plugin and
// are captured, refunded, cancelled and expired through eCom (its callbacks included), each reaching its
// right final state.
func TestMerchantSwitchEComToEPayment(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		s := newEPStack(t, epOptions{plugin: "vipps-ecom", redisURL: redisURL})
		if regs := s.sim.RegisteredWebhooks(); len(regs) != 0 {
			t.Fatalf("an eCom merchant registered webhooks: %+v", regs)
		}
		type live struct{ id, orderID string }
		mk := func(amount int64) live {
			id, orderID := s.create(amount)
			return live{id, orderID}
		}
		toCapture, toRefund, toApproveLater, toCancel, toExpire := mk(10000), mk(20000), mk(30000), mk(40000), mk(50000)
		for _, l := range []live{toCapture, toRefund} {
			if err := s.sim.Approve(l.orderID, "91234567"); err != nil {
				t.Fatal(err)
			}
			s.waitState(l.id, "authorized")
		}
		s.post(toRefund.id, "capture", nil)

		// The switch, as the lead's config reload does it, followed by the webhook registration sync.
		s.write("vipps-epayment")
		if !s.kasse.ReloadConfig() {
			t.Fatal("the new config was not activated")
		}
		if err := s.manager.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		if regs := s.sim.RegisteredWebhooks(); len(regs) != 1 {
			t.Fatalf("after the switch: %+v", regs)
		}

		fresh := s.createEP(60000, "")
		if err := s.sim.ApproveEPayment(fresh, ""); err != nil {
			t.Fatal(err)
		}
		s.waitState(fresh, "authorized")
		s.post(fresh, "capture", nil)

		s.post(toCapture.id, "capture", nil)
		s.post(toRefund.id, "refund", nil)
		if err := s.sim.Approve(toApproveLater.orderID, "91234567"); err != nil { // eCom callback after the switch
			t.Fatal(err)
		}
		s.waitState(toApproveLater.id, "authorized")
		s.post(toApproveLater.id, "cancel", nil)
		s.post(toCancel.id, "cancel", nil)
		if err := s.sim.Expire(toExpire.orderID); err != nil {
			t.Fatal(err)
		}
		s.waitState(toExpire.id, "expired")

		for _, want := range []struct {
			id, plugin, amounts string
		}{
			{toCapture.id, "vipps-ecom", "state=captured amount=10000 authorized=10000 captured=10000 refunded=0"},
			{toRefund.id, "vipps-ecom", "state=refunded amount=20000 authorized=20000 captured=20000 refunded=20000"},
			{toApproveLater.id, "vipps-ecom", "state=cancelled amount=30000 authorized=30000 captured=0 refunded=0"},
			{toCancel.id, "vipps-ecom", "state=cancelled amount=40000 authorized=0 captured=0 refunded=0"},
			{toExpire.id, "vipps-ecom", "state=expired amount=50000 authorized=0 captured=0 refunded=0"},
			{fresh, "vipps-epayment", "state=captured amount=60000 authorized=60000 captured=60000 refunded=0"},
		} {
			res := s.get(want.id)
			expectAmounts(t, res, want.amounts)
			if res.body["plugin"] != want.plugin {
				t.Errorf("session %s: plugin %v, want %s", want.id, res.body["plugin"], want.plugin)
			}
		}
		// The eCom payments stayed at eCom, the new one is an ePayment payment.
		if snap, ok := s.sim.Payment(toCapture.orderID); !ok || snap.Captured != 10000 {
			t.Errorf("eCom payment: %+v", snap)
		}
		if _, ok := s.sim.EPayment(toCapture.orderID); ok {
			t.Error("an eCom session was recreated at ePayment")
		}
		if snap, ok := s.sim.EPayment(fresh); !ok || snap.Captured != 60000 {
			t.Errorf("ePayment payment: %+v", snap)
		}
	})
}
