package vippssim_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/kassehq/kasse/examples/vippssim"
)

func TestNewConfig(t *testing.T) {
	demo := vippssim.DemoTenant()
	if demo.MerchantSerialNumber != "123456" || demo.ClientID != "demo-client-id" ||
		demo.ClientSecret != "demo-client-secret" || demo.SubscriptionKey != "demo-subscription-key" {
		t.Errorf("DemoTenant = %+v", demo)
	}
	bad := []struct {
		name string
		cfg  vippssim.Config
		want string
	}{
		{"no tenants", vippssim.Config{}, "at least one tenant"},
		{"bad MSN", vippssim.Config{Tenants: []vippssim.Tenant{{MerchantSerialNumber: "12", ClientID: "a", ClientSecret: "b", SubscriptionKey: "c"}}}, "5 or 6 digits"},
		{"missing secret", vippssim.Config{Tenants: []vippssim.Tenant{{MerchantSerialNumber: "12345", ClientID: "a", SubscriptionKey: "c"}}}, "required"},
		{"duplicate client", vippssim.Config{Tenants: []vippssim.Tenant{demo, {MerchantSerialNumber: "12345", ClientID: demo.ClientID, ClientSecret: "b", SubscriptionKey: "c"}}}, "duplicate client id"},
		{"duplicate MSN", vippssim.Config{Tenants: []vippssim.Tenant{demo, {MerchantSerialNumber: "123456", ClientID: "x", ClientSecret: "b", SubscriptionKey: "c"}}}, "duplicate merchant serial number"},
		{"relative public URL", vippssim.Config{Tenants: []vippssim.Tenant{demo}, PublicURL: "/sim"}, "absolute"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := vippssim.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	// Without PublicURL the landing page URL follows the request's Host.
	sim, err := vippssim.New(vippssim.Config{Tenants: []vippssim.Tenant{demo}, AllowHTTPLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	tokReq, _ := http.NewRequest("POST", srv.URL+"/accesstoken/get", nil)
	tokReq.Header.Set("client_id", demo.ClientID)
	tokReq.Header.Set("client_secret", demo.ClientSecret)
	tokReq.Header.Set("Ocp-Apim-Subscription-Key", demo.SubscriptionKey)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	doJSON(t, tokReq, &tok)
	body, _ := json.Marshal(map[string]any{
		"customerInfo": map[string]any{},
		"merchantInfo": map[string]any{"merchantSerialNumber": "123456", "callbackPrefix": "http://127.0.0.1:9/cb", "fallBack": "http://127.0.0.1:9/back"},
		"transaction":  map[string]any{"orderId": "host-1", "amount": 100, "transactionText": "x"},
	})
	req, _ := http.NewRequest("POST", srv.URL+"/ecomm/v2/payments", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Ocp-Apim-Subscription-Key", demo.SubscriptionKey)
	req.Header.Set("Content-Type", "application/json")
	var out struct{ URL string }
	doJSON(t, req, &out)
	if !strings.HasPrefix(out.URL, srv.URL+"/dwo-api-application/") {
		t.Errorf("url %q does not start with the server's URL %s", out.URL, srv.URL)
	}
}

func doJSON(t *testing.T, req *http.Request, v any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, body)
	}
	mustJSON(t, []byte(body), v)
}

func TestUnknownRoutes(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		method, path string
		status       int
	}{
		{"GET", "/", 404},
		{"GET", "/ecomm/v2/payments/x/unknown", 404},
		{"GET", "/ecomm/v3/payments", 404},
		{"DELETE", "/ecomm/v2/payments/x/cancel", 405},
		{"POST", "/ecomm/v2/payments/x/cancel", 405},
		{"GET", "/ecomm/v2/payments", 405},
		{"PUT", "/ecomm/v2/payments//x/cancel", 404},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp, body := h.do(call{method: tc.method, path: tc.path, invalid: true})
			expectAzure(t, resp, body, tc.status)
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	resp, body := h.do(call{method: "GET", path: "/ecomm/v2/payments/no-such-order/details"})
	expectError(t, resp, body, 404, "Merchant", "35")
}

func TestSimHTTPControls(t *testing.T) {
	h := newHarness(t)
	h.initiate("sim-1", 1000)
	h.initiate("sim-2", 1000)
	h.initiate("sim-3", 1000)
	b := browser()
	post := func(path, ctype, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", h.srv.URL+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := b.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, readAll(t, resp)
	}

	if code, body := post("/_sim/payments/sim-1/approve", "application/json", `{"phone":"41234567"}`); code != 204 {
		t.Fatalf("approve: %d %s", code, body)
	}
	if cb := h.sink.wait(t); !strings.Contains(string(cb.body), "RESERVED") {
		t.Errorf("callback %s", cb.body)
	}
	if code, body := post("/_sim/payments/sim-1/approve", "", ""); code != 409 {
		t.Errorf("second approve: %d %s", code, body)
	}
	if code, body := post("/_sim/payments/nope/reject", "", ""); code != 404 {
		t.Errorf("reject unknown: %d %s", code, body)
	}
	if code, body := post("/_sim/payments/sim-2/approve", "application/x-www-form-urlencoded", "phone=12"); code != 400 {
		t.Errorf("approve with bad phone: %d %s", code, body)
	}

	req, _ := http.NewRequest("PUT", h.srv.URL+"/_sim/callback-mode", strings.NewReader(`{"mode":"drop"}`))
	if resp, err := b.Do(req); err != nil || resp.StatusCode != 204 {
		t.Fatalf("set mode: %v %v", resp, err)
	}
	req, _ = http.NewRequest("PUT", h.srv.URL+"/_sim/callback-mode", strings.NewReader(`{"mode":"sometimes"}`))
	if resp, err := b.Do(req); err != nil || resp.StatusCode != 400 {
		t.Fatalf("bad mode: %v %v", resp, err)
	}
	resp, err := b.Get(h.srv.URL + "/_sim/callback-mode")
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); !strings.Contains(body, `"drop"`) {
		t.Errorf("mode %s", body)
	}
	if code, body := post("/_sim/payments/sim-2/reject", "", ""); code != 204 {
		t.Errorf("reject: %d %s", code, body)
	}
	if code, body := post("/_sim/payments/sim-3/expire", "", ""); code != 204 {
		t.Errorf("expire: %d %s", code, body)
	}

	resp, err = b.Get(h.srv.URL + "/_sim/payments/sim-1")
	if err != nil {
		t.Fatal(err)
	}
	var snap vippssim.PaymentSnapshot
	mustJSON(t, []byte(readAll(t, resp)), &snap)
	if snap.State != vippssim.StateReserve || snap.CustomerPhone != "41234567" || len(snap.Log) != 2 {
		t.Errorf("snapshot %+v", snap)
	}

	resp, err = b.Get(h.srv.URL + "/_sim/payments")
	if err != nil {
		t.Fatal(err)
	}
	var all []vippssim.PaymentSnapshot
	mustJSON(t, []byte(readAll(t, resp)), &all)
	if len(all) != 3 || all[1].State != vippssim.StateCancel || all[2].State != vippssim.StateRejected {
		t.Errorf("payments %+v", all)
	}

	h.sim.Flush()
	resp, err = b.Get(h.srv.URL + "/_sim/callbacks")
	if err != nil {
		t.Fatal(err)
	}
	var cbs []vippssim.DeliveredCallback
	mustJSON(t, []byte(readAll(t, resp)), &cbs)
	if len(cbs) != 3 || !cbs[0].Sent || cbs[1].Sent || cbs[2].Status != "REJECTED" {
		t.Errorf("callbacks %+v", cbs)
	}
}

func TestControlErrors(t *testing.T) {
	h := newHarness(t)
	if err := h.sim.Approve("nope", ""); !errors.Is(err, vippssim.ErrUnknownPayment) {
		t.Errorf("Approve unknown: %v", err)
	}
	h.initiate("ctl-1", 1000)
	if err := h.sim.Approve("ctl-1", "123"); !errors.Is(err, vippssim.ErrInvalidPhone) {
		t.Errorf("Approve bad phone: %v", err)
	}
	if err := h.sim.Reject("ctl-1"); err != nil {
		t.Fatal(err)
	}
	if err := h.sim.Reject("ctl-1"); !errors.Is(err, vippssim.ErrNotPending) {
		t.Errorf("Reject twice: %v", err)
	}
	if _, ok := h.sim.Payment("nope"); ok {
		t.Errorf("Payment(nope) found")
	}
	for _, m := range []vippssim.CallbackMode{vippssim.CallbackDeliver, vippssim.CallbackDrop} {
		if got, ok := vippssim.ParseCallbackMode(m.String()); !ok || got != m {
			t.Errorf("round trip %v", m)
		}
	}
}

// TestHammer runs captures, refunds and details concurrently against a few
// payments; the amounts must add up exactly (run with -race).
func TestHammer(t *testing.T) {
	h := newHarness(t)
	const payments, workers, each = 3, 8, 10
	for i := 0; i < payments; i++ {
		h.reserved(fmt.Sprintf("hammer-%d", i), 1300) // less than the captures tried: some get 61
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				id := fmt.Sprintf("hammer-%d", i%payments)
				key := fmt.Sprintf("w%d-%d", w, i)
				h.capture(id, 100, key)
				h.capture(id, 100, key) // replay
				h.do(call{method: "GET", path: "/ecomm/v2/payments/" + id + "/details"})
				h.refund(id, 100, key)
			}
		}()
	}
	wg.Wait()
	for i := 0; i < payments; i++ {
		s, _ := h.sim.Payment(fmt.Sprintf("hammer-%d", i))
		if s.Captured > s.Amount || s.Refunded > s.Captured || s.Captured+s.RemainingToCapture != s.Amount {
			t.Errorf("inconsistent %+v", s)
		}
		var capSum, refSum int64
		for _, e := range s.Log {
			switch e.Operation {
			case "CAPTURE":
				capSum += e.Amount
			case "REFUND":
				refSum += e.Amount
			}
		}
		if capSum != s.Captured || refSum != s.Refunded {
			t.Errorf("log sums %d/%d, amounts %d/%d", capSum, refSum, s.Captured, s.Refunded)
		}
	}
}
