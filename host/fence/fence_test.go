package fence_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kassehq/kasse/host/fence"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/vippsecom/ecom"
	"github.com/kassehq/kasse/plugin/vippsepayment/epayment"
)

// goldenInputs returns the build inputs of a plugin's golden vectors.
func goldenInputs(t *testing.T, dir string) map[string]*abi.Input {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "plugin", dir, "testdata", "golden", "build_*.input.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("golden inputs of %s: %v", dir, err)
	}
	out := map[string]*abi.Input{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var in abi.Input
		if err := json.Unmarshal(b, &in); err != nil {
			continue // inputs that are not even an abi.Input are the plugin's to refuse
		}
		out[filepath.Base(f)] = &in
	}
	return out
}

// TestRealPluginsPass: every request the real plugins build for their golden inputs passes the fence.
func TestRealPluginsPass(t *testing.T) {
	for _, p := range []struct {
		dir    string
		handle func(*abi.Input) *abi.Output
	}{{"vippsecom", ecom.Handle}, {"vippsepayment", epayment.Handle}} {
		n := 0
		for name, in := range goldenInputs(t, p.dir) {
			out := p.handle(in)
			if !out.OK || out.Request == nil {
				continue
			}
			n++
			req := *out.Request
			req.Body = append([]byte(nil), req.Body...)
			if err := fence.Request(in, &req); err != nil {
				t.Errorf("%s %s: %v", p.dir, name, err)
			}
		}
		if n < 10 {
			t.Errorf("%s: only %d requests checked", p.dir, n)
		}
	}
}

func ecomInitiate() *abi.Input {
	return &abi.Input{Op: abi.OpBuildInitiate,
		Merchant: abi.Merchant{ID: "shop", MerchantSerialNumber: "123456",
			CallbackPrefix: "https://kasse.test/v1/vipps/shop/callback", FallBack: "https://kasse.test/v1/checkouts/s1/return"},
		Session: abi.Session{ID: "s1", Reference: "o1", ProviderReference: "s1", Amount: 1000, Currency: "NOK", Description: "Socks"}}
}

// TestRequestRefused: a request that changes a value kasse decides is refused, naming the field.
func TestRequestRefused(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(body map[string]any, req *abi.Request)
		pointer string
	}{
		{"callback", func(b map[string]any, _ *abi.Request) { mi(b)["callbackPrefix"] = "https://evil.example/cb" }, "/merchantInfo/callbackPrefix"},
		{"fallback", func(b map[string]any, _ *abi.Request) { mi(b)["fallBack"] = "https://evil.example/back" }, "/merchantInfo/fallBack"},
		{"msn", func(b map[string]any, _ *abi.Request) { mi(b)["merchantSerialNumber"] = "654321" }, "/merchantInfo/merchantSerialNumber"},
		{"amount", func(b map[string]any, _ *abi.Request) { b["transaction"].(map[string]any)["amount"] = 1 }, "/transaction/amount"},
		{"orderId", func(b map[string]any, _ *abi.Request) { b["transaction"].(map[string]any)["orderId"] = "other" }, "/transaction/orderId"},
		{"no token injection", func(_ map[string]any, r *abi.Request) { r.Inject = nil }, "/merchantInfo/authToken"},
		{"token elsewhere", func(_ map[string]any, r *abi.Request) {
			r.Inject = append(r.Inject, abi.Injection{Pointer: "/merchantInfo/fallBack", Value: abi.InjectCallbackToken})
		}, "/inject"},
		{"extra URL", func(b map[string]any, _ *abi.Request) { mi(b)["consentRemovalPrefix"] = "https://evil.example/consent" }, "/merchantInfo/consentRemovalPrefix"},
		{"path", func(_ map[string]any, r *abi.Request) { r.Path = "/ecomm/v2/payments/x" }, "/path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := ecomInitiate()
			out := ecom.Handle(in)
			if !out.OK {
				t.Fatalf("build: %+v", out.Error)
			}
			req := *out.Request
			req.Inject = append([]abi.Injection(nil), req.Inject...)
			var body map[string]any
			if err := json.Unmarshal(req.Body, &body); err != nil {
				t.Fatal(err)
			}
			if err := fence.Request(in, &req); err != nil {
				t.Fatalf("unchanged request refused: %v", err)
			}
			tc.edit(body, &req)
			req.Body, _ = json.Marshal(body)
			err := fence.Request(in, &req)
			var fe *fence.Error
			if !errors.As(err, &fe) || fe.Pointer != tc.pointer {
				t.Fatalf("error %v, want one naming %s", err, tc.pointer)
			}
			if strings.Contains(err.Error(), "evil.example") {
				t.Errorf("error %q repeats the value", err)
			}
		})
	}
}

func mi(b map[string]any) map[string]any { return b["merchantInfo"].(map[string]any) }

func TestRedirect(t *testing.T) {
	prod := fence.AllowFor("https://api.vipps.no", nil, nil)
	sim := fence.AllowFor("http://127.0.0.1:8090", []string{"pay.example.com"}, []string{"mobilepay"})
	tests := []struct {
		allow fence.Allow
		url   string
		ok    bool
	}{
		{prod, "https://api.vipps.no/dwo-api-application/v1/deeplink/vippsgateway?v=2&token=x", true},
		{prod, "https://landing.vipps.no?token=x", true},
		{prod, "vipps://?token=x", true},
		{prod, "vippsMT://?token=x", true},
		{prod, "", true},
		{prod, "https://evil.example/?token=x", false},
		{prod, "http://api.vipps.no/x", false},
		{prod, "https://user@api.vipps.no/x", false},
		{prod, "javascript:alert(1)", false},
		{prod, "mobilepay://x", false},
		{prod, "/relative", false},
		{sim, "http://127.0.0.1:8090/landing?token=x", true},
		{sim, "http://127.0.0.1:8091/landing", false},
		{sim, "https://pay.example.com/x", true},
		{sim, "mobilepay://x", true},
	}
	for _, tc := range tests {
		err := fence.Redirect(abi.OpReadInitiate, tc.url, tc.allow)
		if (err == nil) != tc.ok {
			t.Errorf("Redirect(%q) = %v, want ok %v", tc.url, err, tc.ok)
		}
	}
}
