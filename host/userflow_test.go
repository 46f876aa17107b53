package host_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// createFlow creates a checkout that asks for userFlow (with the customer's phone when phone is set) and
// returns the answer, which must be 201 and show the flow back.
func (s *epStack) createFlow(amount int64, flow, phone string) result {
	s.t.Helper()
	body := checkoutBody(amount)
	body["userFlow"] = flow
	if phone == "" {
		delete(body, "customer")
	} else {
		body["customer"] = map[string]any{"phoneNumber": phone}
	}
	res := s.do("POST", "/v1/checkouts", body)
	if res.status != http.StatusCreated {
		s.t.Fatalf("create %s: %d %s", flow, res.status, res.raw)
	}
	if res.body["userFlow"] != flow {
		s.t.Fatalf("create %s: the session shows userFlow %v", flow, res.body["userFlow"])
	}
	return res
}

// TestEPaymentNativeRedirect creates a checkout from the shop's app (NATIVE_REDIRECT, even though it names
// a phone, which alone would mean PUSH_MESSAGE), hands the app link to the app, and completes the payment.
func TestEPaymentNativeRedirect(t *testing.T) {
	s := newEPStack(t, epOptions{})
	res := s.createFlow(25000, "NATIVE_REDIRECT", "91234567")
	id, _ := res.body["id"].(string)
	if u, _ := res.body["redirectUrl"].(string); !strings.HasPrefix(u, "vippsMT://?token=") {
		t.Fatalf("NATIVE_REDIRECT redirectUrl %q, want the simulator's app link", u)
	}
	snap, ok := s.sim.EPayment(id)
	if !ok || snap.UserFlow != "NATIVE_REDIRECT" || snap.ReturnURL != s.baseURL+"/v1/checkouts/"+id+"/return" || snap.Phone != "" {
		t.Fatalf("simulator has %+v", snap)
	}
	// The Vipps app opens from the link; the customer approves there.
	if err := s.sim.ApproveEPayment(id, "4791234567"); err != nil {
		t.Fatal(err)
	}
	got := s.waitState(id, "authorized")
	if u, _ := got.body["redirectUrl"].(string); !strings.HasPrefix(u, "vippsMT://") || got.body["userFlow"] != "NATIVE_REDIRECT" {
		t.Fatalf("stored session: %s", got.raw)
	}
	expectAmounts(t, s.post(id, "capture", nil), "state=captured amount=25000 authorized=25000 captured=25000 refunded=0")
	if snap, _ := s.sim.EPayment(id); snap.Captured != 25000 {
		t.Fatalf("simulator: %+v", snap)
	}
}

// TestEPaymentQR creates a QR checkout: redirectUrl is the QR code's target (the shop draws the code), and
// opening it as a phone does after a scan approves the payment, which kasse learns of and completes.
func TestEPaymentQR(t *testing.T) {
	s := newEPStack(t, epOptions{})
	res := s.createFlow(30000, "QR", "")
	id, _ := res.body["id"].(string)
	target, _ := res.body["redirectUrl"].(string)
	if !strings.HasPrefix(target, s.simURL+"/epayment-landing/v1?token=") {
		t.Fatalf("QR redirectUrl %q, want the target URL (qrFormat TEXT/TARGETURL)", target)
	}
	if snap, _ := s.sim.EPayment(id); snap.UserFlow != "QR" || snap.ReturnURL != "" {
		t.Fatalf("simulator has %+v", snap)
	}
	phone := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, form := range []string{"step=phone&phone=91234567", "step=confirm&phone=91234567&action=confirm"} {
		resp, err := phone.Post(target, "application/x-www-form-urlencoded", strings.NewReader(form))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK { // no returnUrl: the phone is not sent anywhere
			t.Fatalf("%s: %d", form, resp.StatusCode)
		}
	}
	s.waitState(id, "authorized")
	s.post(id, "capture", map[string]any{"amount": 10000})
	res = s.post(id, "cancel", nil)
	if res.body["cancelledAmount"] != float64(20000) || res.body["state"] != "captured" {
		t.Fatalf("cancel after partial capture: %s", res.raw)
	}
	expectAmounts(t, s.post(id, "refund", nil), "state=refunded amount=30000 authorized=30000 captured=10000 refunded=10000")
}

// TestUserFlowRefused checks that a flow the merchant's plugin cannot offer is refused before anything
// reaches Vipps, with the plugin's reason: PUSH_MESSAGE without a phone on ePayment, and QR and
// PUSH_MESSAGE on eCom, which offers NATIVE_REDIRECT as isApp.
func TestUserFlowRefused(t *testing.T) {
	ep := newEPStack(t, epOptions{})
	body := checkoutBody(15000)
	delete(body, "customer")
	body["userFlow"] = "PUSH_MESSAGE"
	res := ep.do("POST", "/v1/checkouts", body)
	expectProblem(t, res, http.StatusUnprocessableEntity, "")
	if d, _ := res.body["detail"].(string); !strings.Contains(d, "session.userFlow") {
		t.Fatalf("detail %q does not name session.userFlow", d)
	}

	ec := newEPStack(t, epOptions{plugin: "vipps-ecom"})
	for flow, want := range map[string]string{"QR": "vipps-epayment", "PUSH_MESSAGE": "skipLandingPage"} {
		body := checkoutBody(15000)
		body["userFlow"] = flow
		res := ec.do("POST", "/v1/checkouts", body)
		expectProblem(t, res, http.StatusUnprocessableEntity, "")
		if d, _ := res.body["detail"].(string); !strings.Contains(d, "session.userFlow") || !strings.Contains(d, want) {
			t.Fatalf("eCom %s: detail %q", flow, d)
		}
	}
	res = ec.createFlow(15000, "NATIVE_REDIRECT", "91234567")
	if u, _ := res.body["redirectUrl"].(string); !strings.HasPrefix(u, "vippsMT://?token=") {
		t.Fatalf("eCom NATIVE_REDIRECT (isApp) redirectUrl %q", u)
	}
	// Unknown flows never reach a plugin: the checkout schema refuses them.
	body = checkoutBody(15000)
	body["userFlow"] = "SMS"
	expectProblem(t, ep.do("POST", "/v1/checkouts", body), http.StatusBadRequest, "/userFlow")
}
