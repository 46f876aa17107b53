package host_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestBadInputIsRefusedAndStoresNothing(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		s := newStack(t, stackOptions{redisURL: redisURL})
		valid := checkoutBody(49900)
		with := func(k string, v any) map[string]any {
			m := map[string]any{}
			for kk, vv := range valid {
				m[kk] = vv
			}
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
			return m
		}
		cases := []struct {
			name    string
			body    any
			status  int
			pointer string
		}{
			{"malformed JSON", `{"merchant": "demo",`, http.StatusBadRequest, ""},
			{"not an object", `[1,2,3]`, http.StatusBadRequest, ""},
			{"amount below Vipps minimum", with("amount", 99), http.StatusBadRequest, "/amount"},
			{"amount as decimal string", with("amount", "499.00"), http.StatusBadRequest, "/amount"},
			{"amount fractional", with("amount", 499.5), http.StatusBadRequest, "/amount"},
			{"missing merchant", with("merchant", nil), http.StatusBadRequest, "/merchant"},
			{"unknown field", with("colour", "red"), http.StatusBadRequest, "/colour"},
			{"bad phone", with("customer", map[string]any{"phoneNumber": "+4791234567"}), http.StatusBadRequest, "/customer/phoneNumber"},
			{"currency", with("currency", "USD"), http.StatusBadRequest, "/currency"},
			{"return URL not the shop's", with("returnUrl", "https://evil.example/phish"), http.StatusUnprocessableEntity, "/returnUrl"},
			{"oversized body", `{"merchant":"demo","reference":"` + strings.Repeat("x", 70<<10) + `"}`, http.StatusRequestEntityTooLarge, ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				expectProblem(t, s.do("POST", "/v1/checkouts", c.body), c.status, c.pointer)
			})
		}
		if n := simPaymentCount(t, s); n != 0 {
			t.Fatalf("bad requests reached Vipps: %d payments initiated", n)
		}
		if redisURL != "" {
			if n := redisKeys(t, redisURL); n != 0 {
				t.Fatalf("bad requests stored %d keys in redis", n)
			}
		}
	})
}

func TestUnknownMerchant(t *testing.T) {
	s := newStack(t, stackOptions{})
	body := checkoutBody(49900)
	body["merchant"] = "nobody"
	res := s.do("POST", "/v1/checkouts", body)
	expectProblem(t, res, http.StatusNotFound, "")
	if res.body["merchant"] != "nobody" || !strings.Contains(string(res.raw), `nobody`) {
		t.Fatalf("problem does not name the merchant: %s", res.raw)
	}
	cb := s.do("POST", "/v1/vipps/nobody/callback/v2/payments/abc", `{}`)
	expectProblem(t, cb, http.StatusNotFound, "")
}

// TestAPIKeyRequired: a wrong or missing key is refused, and for a checkout id the refusal is the 404 of an
// unknown id, body and headers alike, so ids cannot be probed. Each refusal is logged and counted.
func TestAPIKeyRequired(t *testing.T) {
	s := newStack(t, stackOptions{})
	res := s.do("POST", "/v1/checkouts", checkoutBody(49900), "Authorization", "Bearer wrong")
	expectProblem(t, res, http.StatusUnauthorized, "")
	id, _ := s.create(49900)
	unknown := s.do("GET", "/v1/checkouts/knotthere", nil)
	expectProblem(t, unknown, http.StatusNotFound, "")
	for _, c := range []struct {
		name          string
		method, path  string
		authorization string
	}{
		{"get without key", "GET", "/v1/checkouts/" + id, ""},
		{"get with wrong key", "GET", "/v1/checkouts/" + id, "Bearer wrong"},
		{"cancel with wrong key", "POST", "/v1/checkouts/" + id + "/cancel", "Bearer x"},
		{"capture without Bearer", "POST", "/v1/checkouts/" + id + "/capture", apiKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := s.do(c.method, c.path, nil, "Authorization", c.authorization)
			expectProblem(t, res, http.StatusNotFound, "")
			if !sameProblem(res, unknown) || res.header.Get("WWW-Authenticate") != "" {
				t.Fatalf("answer differs from an unknown id's:\n%s %v\n%s %v", res.raw, res.header, unknown.raw, unknown.header)
			}
		})
	}
	if got := s.get(id); got.body["state"] != "pending" {
		t.Fatalf("refused requests changed the checkout: %s", got.raw)
	}
	m := s.ops("GET", "/metrics", nil)
	for _, want := range []string{`kasse_auth_failures_total{route="/v1/checkouts"} 1`,
		`kasse_auth_failures_total{route="/v1/checkouts/:id"} 2`, `kasse_auth_failures_total{route="/v1/checkouts/:id/cancel"} 1`} {
		if !strings.Contains(string(m.raw), want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, m.raw)
		}
	}
}

// sameProblem reports whether two problem answers are equal but for their request ids.
func sameProblem(a, b result) bool {
	strip := func(r result) string {
		m := map[string]any{}
		for k, v := range r.body {
			if k != "instance" {
				m[k] = v
			}
		}
		raw, _ := json.Marshal(m)
		return string(raw) + r.header.Get("Content-Type")
	}
	return a.status == b.status && strip(a) == strip(b)
}

func TestIdempotencyKey(t *testing.T) {
	s := newStack(t, stackOptions{})
	a := s.do("POST", "/v1/checkouts", checkoutBody(49900), "Idempotency-Key", "order-1001-try")
	b := s.do("POST", "/v1/checkouts", checkoutBody(49900), "Idempotency-Key", "order-1001-try")
	if a.status != http.StatusCreated || b.status != http.StatusCreated || a.body["id"] != b.body["id"] {
		t.Fatalf("replay returned a different checkout:\n%s\n%s", a.raw, b.raw)
	}
	if b.header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("replay not marked Idempotent-Replayed")
	}
	if n := simPaymentCount(t, s); n != 1 {
		t.Fatalf("%d payments initiated at Vipps, want 1", n)
	}
	c := s.do("POST", "/v1/checkouts", checkoutBody(50000), "Idempotency-Key", "order-1001-try")
	expectProblem(t, c, http.StatusUnprocessableEntity, "")
}
