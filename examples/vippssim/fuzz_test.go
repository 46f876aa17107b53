package vippssim_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/kassehq/kasse/examples/vippssim"
)

// FuzzAPI sends arbitrary bodies, paths and headers: the simulator must never
// answer 5xx or with anything but JSON, and never panic.
func FuzzAPI(f *testing.F) {
	seeds := []string{
		`{}`, `[]`, `null`, `"x"`, `{"transaction":null}`, `{"transaction":{"amount":1e400}}`,
		`{"customerInfo":{},"merchantInfo":{"merchantSerialNumber":"123456","callbackPrefix":"http://127.0.0.1:1/cb","fallBack":"x:"},"transaction":{"orderId":"f-1","amount":100,"transactionText":"t"}}`,
		`{"merchantInfo":{"merchantSerialNumber":"123456"},"transaction":{"amount":-5,"transactionText":"t"}}`,
		`{"merchantInfo":{"merchantSerialNumber":"123456","staticShippingDetails":[1,{"shippingCost":"x"}]}}`,
		`{"a":1}{"b":2}`, `{"customerPhoneNumber":"91234567","token":""}`,
	}
	for i, s := range seeds {
		f.Add(s, []string{"initiate", "capture", "cancel", "refund", "approve", "details"}[i%6], "f-1")
	}
	f.Fuzz(func(t *testing.T, body, op, orderID string) {
		sim, err := vippssim.New(vippssim.Config{Tenants: []vippssim.Tenant{vippssim.DemoTenant()}, AllowHTTPLoopback: true})
		if err != nil {
			t.Fatal(err)
		}
		defer sim.Close()
		sim.SetCallbackMode(vippssim.CallbackDrop)
		h := sim.Handler()
		demo := vippssim.DemoTenant()

		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/accesstoken/get", nil)
		req.Header.Set("client_id", demo.ClientID)
		req.Header.Set("client_secret", demo.ClientSecret)
		req.Header.Set("Ocp-Apim-Subscription-Key", demo.SubscriptionKey)
		h.ServeHTTP(rec, req)
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil {
			t.Fatal(err)
		}

		// A reserved payment to act on, so that more code paths run.
		init := `{"customerInfo":{},"merchantInfo":{"merchantSerialNumber":"123456","callbackPrefix":"http://127.0.0.1:1/cb","fallBack":"https://x.example/"},"transaction":{"orderId":"f-1","amount":1000,"transactionText":"t"}}`
		send := func(method, path, body string) *httptest.ResponseRecorder {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(method, "/", strings.NewReader(body))
			req.URL = &url.URL{Path: path}
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			req.Header.Set("Ocp-Apim-Subscription-Key", demo.SubscriptionKey)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Request-Id", orderID)
			h.ServeHTTP(rec, req)
			return rec
		}
		send("POST", "/ecomm/v2/payments", init)
		_ = sim.Approve("f-1", "")

		path := "/ecomm/v2/payments/" + orderID + "/" + op
		method := map[string]string{"cancel": "PUT", "details": "GET"}[op]
		switch op {
		case "initiate":
			path = "/ecomm/v2/payments"
		case "approve":
			path = "/ecomm/v2/integration-test/payments/" + orderID + "/approve"
		}
		if method == "" {
			method = "POST"
		}
		rec = send(method, path, body)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, rec.Code, rec.Body)
		}
		if rec.Body.Len() > 0 && !json.Valid(rec.Body.Bytes()) && !bytes.HasPrefix(rec.Body.Bytes(), []byte("<")) {
			t.Fatalf("%s %s: body is not JSON: %s", method, path, rec.Body)
		}
		if rec.Code != http.StatusOK && rec.Body.Len() == 0 {
			t.Fatalf("%s %s: error without a body", method, path)
		}
	})
}

// FuzzFaults sends arbitrary bodies to PUT /_sim/faults: never a 5xx or a panic, a refused body changes
// nothing, and what GET /_sim/faults answers can be PUT back unchanged.
func FuzzFaults(f *testing.F) {
	for _, s := range []string{
		`{"callbacks":{"drop":0.3,"duplicate":0.1,"delay":"0s..2s","reorder":true},"latency":"0s..500ms"}`,
		`{"callbacks":{"drop":-1}}`, `{"latency":"1h..1s"}`, `{"latency":"-1s"}`, `{"callbacks":{"reorderBatch":-3}}`,
		`{"seed":18446744073709551615}`, `{"callbacks":{"drop":1e400}}`, `null`, `[]`, `{"latency":5}`, `{"callbacks":{"delay":"1s..."}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		sim, err := vippssim.New(vippssim.Config{Tenants: []vippssim.Tenant{vippssim.DemoTenant()}, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer sim.Close()
		h := sim.Handler()
		send := func(method, body string) *httptest.ResponseRecorder {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(method, "/_sim/faults", strings.NewReader(body)))
			return rec
		}
		before := sim.Faults()
		rec := send("PUT", body)
		switch {
		case rec.Code >= 500:
			t.Fatalf("PUT %q: %d %s", body, rec.Code, rec.Body)
		case rec.Code != http.StatusOK && sim.Faults() != before:
			t.Fatalf("PUT %q was refused (%d) but changed the faults", body, rec.Code)
		}
		got := sim.Faults()
		data, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		if rec := send("PUT", string(data)); rec.Code != http.StatusOK || sim.Faults() != got {
			t.Fatalf("round trip of %s: %d %s, faults %+v", data, rec.Code, rec.Body, sim.Faults())
		}
	})
}
