package vippssim_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kassehq/kasse/examples/vippssim"
)

func TestForceApprove(t *testing.T) {
	h := newHarness(t)
	u := h.initiate("force-1", 2500)
	path := "/ecomm/v2/integration-test/payments/force-1/approve"

	resp, body := h.do(call{method: "POST", path: path, body: map[string]any{"customerPhoneNumber": "91234567", "token": "wrong"}})
	expectError(t, resp, body, 400, "InvalidRequest", "token.invalid")
	resp, body = h.do(call{method: "POST", path: path, invalid: true, body: map[string]any{"customerPhoneNumber": "9123", "token": tokenOf(t, u)}})
	expectError(t, resp, body, 400, "InvalidRequest", "customerPhoneNumber.invalid")

	good := map[string]any{"customerPhoneNumber": "91234567", "token": tokenOf(t, u)}
	resp, body = h.do(call{method: "POST", path: path, body: good, header: map[string]string{"X-Request-Id": "fa-1"}})
	if resp.StatusCode != 200 || len(body) != 0 {
		t.Fatalf("force approve: %d %q", resp.StatusCode, body)
	}
	cb := h.sink.wait(t)
	h.specs.ValidateCallback(t, cb.req, cb.body)
	if !strings.Contains(string(cb.body), `"status":"RESERVED"`) {
		t.Errorf("callback %s", cb.body)
	}
	// Replay with the same X-Request-Id: no change, no second callback.
	resp, _ = h.do(call{method: "POST", path: path, body: good, header: map[string]string{"X-Request-Id": "fa-1"}})
	if resp.StatusCode != 200 {
		t.Errorf("replay: %d", resp.StatusCode)
	}
	// Without it: already processed.
	resp, body = h.do(call{method: "POST", path: path, body: good})
	expectError(t, resp, body, 400, "VippsError", "92")
	h.sink.expectNone(t, 100*time.Millisecond)
	if d := h.details("force-1"); d.ops() != "RESERVE,INITIATE" || d.TransactionLogHistory[0].RequestID != "fa-1" {
		t.Errorf("log %+v", d)
	}
	resp, body = h.do(call{method: "POST", path: "/ecomm/v2/integration-test/payments/nope/approve", body: good})
	expectError(t, resp, body, 404, "Merchant", "35")
}

func TestDropMode(t *testing.T) {
	h := newHarness(t)
	h.sim.SetCallbackMode(vippssim.CallbackDrop)
	h.initiate("drop-1", 1000)
	if err := h.sim.Approve("drop-1", "91234567"); err != nil {
		t.Fatal(err)
	}
	h.sink.expectNone(t, 200*time.Millisecond)
	cbs := h.sim.Callbacks()
	if len(cbs) != 1 || cbs[0].Sent || cbs[0].Status != "RESERVED" || cbs[0].StatusCode != 0 || !strings.Contains(cbs[0].Err, "drop") {
		t.Fatalf("record %+v", cbs)
	}
	// The merchant must poll: details shows the reservation.
	if d := h.details("drop-1"); d.ops() != "RESERVE,INITIATE" {
		t.Errorf("details %s", d.ops())
	}
	// Back to deliver.
	h.sim.SetCallbackMode(vippssim.CallbackDeliver)
	h.initiate("drop-2", 1000)
	if err := h.sim.Reject("drop-2"); err != nil {
		t.Fatal(err)
	}
	if cb := h.sink.wait(t); !strings.Contains(string(cb.body), "CANCELLED") {
		t.Errorf("callback %s", cb.body)
	}
}

func TestExpire(t *testing.T) {
	checkRejected := func(t *testing.T, h *harness, orderID string) {
		t.Helper()
		cb := h.sink.wait(t)
		h.specs.ValidateCallback(t, cb.req, cb.body)
		var body struct {
			TransactionInfo map[string]any
			ErrorInfo       struct{ ErrorGroup, ErrorCode, ErrorMessage string }
		}
		mustJSON(t, cb.body, &body)
		if body.TransactionInfo["status"] != "REJECTED" || body.ErrorInfo.ErrorCode != "45" || body.ErrorInfo.ErrorMessage == "" {
			t.Errorf("callback %s", cb.body)
		}
		if _, has := body.TransactionInfo["transactionId"]; has {
			t.Errorf("REJECTED callback carries a transactionId: %s", cb.body)
		}
		d := h.details(orderID)
		if d.TransactionSummary != nil || d.ops() != "CANCEL,INITIATE" {
			t.Errorf("details after expiry: %+v", d)
		}
		if s, _ := h.sim.Payment(orderID); s.State != vippssim.StateRejected {
			t.Errorf("state %s", s.State)
		}
	}

	t.Run("Expire", func(t *testing.T) {
		h := newHarness(t)
		h.initiate("exp-1", 1000)
		if err := h.sim.Expire("exp-1"); err != nil {
			t.Fatal(err)
		}
		checkRejected(t, h, "exp-1")
		if err := h.sim.Expire("exp-1"); !errors.Is(err, vippssim.ErrNotPending) {
			t.Errorf("second Expire: %v", err)
		}
		if err := h.sim.Approve("exp-1", ""); !errors.Is(err, vippssim.ErrNotPending) {
			t.Errorf("Approve after expiry: %v", err)
		}
	})
	t.Run("lazily after PaymentTTL", func(t *testing.T) {
		h := newHarness(t, func(c *vippssim.Config) { c.PaymentTTL = 5 * time.Minute })
		h.initiate("exp-2", 1000)
		h.clock.Advance(5*time.Minute - time.Second)
		if d := h.details("exp-2"); d.ops() != "INITIATE" {
			t.Fatalf("expired early: %s", d.ops())
		}
		h.sink.expectNone(t, 50*time.Millisecond)
		h.token = h.fetchToken(h.tenant)
		h.clock.Advance(time.Second)
		h.details("exp-2") // touching the payment expires it
		checkRejected(t, h, "exp-2")
		resp, body := h.capture("exp-2", nil, "late")
		expectError(t, resp, body, 400, "VippsError", "91")
		resp, body = h.do(call{method: "GET", path: "/ecomm/v2/payments/exp-2/status"})
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"status":"REJECTED"`) {
			t.Errorf("status: %s", body)
		}
	})
	t.Run("ExpireDue", func(t *testing.T) {
		h := newHarness(t)
		h.initiate("exp-3", 1000)
		h.initiate("exp-4", 1000)
		if n := h.sim.ExpireDue(); n != 0 {
			t.Fatalf("ExpireDue before TTL = %d", n)
		}
		h.clock.Advance(10 * time.Minute)
		if n := h.sim.ExpireDue(); n != 2 {
			t.Fatalf("ExpireDue = %d, want 2", n)
		}
		h.sink.wait(t)
		h.sink.wait(t)
	})
}

func TestCallbackWithoutAuthToken(t *testing.T) {
	h := newHarness(t)
	b := h.initiateBody("noauth-1", 1000)
	delete(b["merchantInfo"].(map[string]any), "authToken")
	if resp, body := h.do(call{method: "POST", path: "/ecomm/v2/payments", body: b}); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if err := h.sim.Approve("noauth-1", ""); err != nil {
		t.Fatal(err)
	}
	cb := h.sink.wait(t)
	if _, has := cb.req.Header["Authorization"]; has {
		t.Errorf("Authorization sent without an authToken: %q", cb.req.Header.Get("Authorization"))
	}
	h.specs.ValidateCallback(t, cb.req, cb.body)
}

// TestCallbackFailures: one attempt, whatever happens, and no redirects.
func TestCallbackFailures(t *testing.T) {
	var hits atomic.Int32
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the client giving up
		switch {
		case strings.Contains(r.URL.Path, "fail-500"):
			w.WriteHeader(http.StatusInternalServerError)
		case strings.Contains(r.URL.Path, "fail-redirect"):
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case strings.Contains(r.URL.Path, "fail-slow"):
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}
	}))
	defer merchant.Close()

	h := newHarness(t, func(c *vippssim.Config) {
		c.CallbackClient = &http.Client{
			Timeout:       300 * time.Millisecond, // instead of 3 s, to keep the test quick
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	})
	for _, id := range []string{"fail-500", "fail-redirect", "fail-slow"} {
		b := h.initiateBody(id, 1000)
		b["merchantInfo"].(map[string]any)["callbackPrefix"] = merchant.URL + "/cb"
		if resp, body := h.do(call{method: "POST", path: "/ecomm/v2/payments", body: b}); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		if err := h.sim.Approve(id, ""); err != nil {
			t.Fatal(err)
		}
	}
	h.sim.Flush()
	got := map[string]vippssim.DeliveredCallback{}
	for _, c := range h.sim.Callbacks() {
		got[c.OrderID] = c
	}
	if c := got["fail-500"]; !c.Sent || c.StatusCode != 500 {
		t.Errorf("500: %+v", c)
	}
	if c := got["fail-redirect"]; c.StatusCode != http.StatusFound {
		t.Errorf("redirect followed or not recorded: %+v", c)
	}
	if c := got["fail-slow"]; c.StatusCode != 0 || c.Err == "" {
		t.Errorf("timeout not recorded: %+v", c)
	}
	if n := hits.Load(); n != 3 {
		t.Errorf("merchant saw %d requests, want exactly 3 (no retries, no redirects)", n)
	}
}

func TestDefaultCallbackTimeout(t *testing.T) {
	// The default client gives up after Vipps's 3 seconds.
	release := make(chan struct{})
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer merchant.Close()
	defer close(release)
	if testing.Short() {
		t.Skip("takes 3 s")
	}
	h := newHarness(t)
	b := h.initiateBody("slow-1", 1000)
	b["merchantInfo"].(map[string]any)["callbackPrefix"] = merchant.URL
	if resp, body := h.do(call{method: "POST", path: "/ecomm/v2/payments", body: b}); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	start := time.Now()
	if err := h.sim.Approve("slow-1", ""); err != nil {
		t.Fatal(err)
	}
	h.sim.Flush()
	if took := time.Since(start); took < 2900*time.Millisecond || took > 6*time.Second {
		t.Errorf("callback gave up after %v, want about 3 s", took)
	}
	if c := h.sim.Callbacks(); len(c) != 1 || c[0].Err == "" {
		t.Errorf("record %+v", c)
	}
}

func TestCloseStopsCallbacks(t *testing.T) {
	h := newHarness(t)
	h.initiate("close-1", 1000)
	h.sim.Close()
	h.sim.Close() // idempotent
	if err := h.sim.Approve("close-1", ""); err != nil {
		t.Fatal(err)
	}
	h.sink.expectNone(t, 100*time.Millisecond)
	if c := h.sim.Callbacks(); len(c) != 1 || c[0].Sent || !strings.Contains(c[0].Err, "closed") {
		t.Errorf("record %+v", c)
	}
}
