package epayment_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/vippsepayment/epayment"
	"github.com/kassehq/kasse/schemas"
)

const ref = "kq3x7mfa2bcdeghijklmnprstv"

func input(op abi.Op) *abi.Input {
	return &abi.Input{Op: op,
		Merchant: abi.Merchant{ID: "shop", MerchantSerialNumber: "123456", FallBack: "https://kasse.example/v1/checkouts/" + ref + "/return"},
		Session: abi.Session{ID: ref, Reference: "order-1", ProviderReference: ref, State: "pending", Amount: 10000,
			Currency: "NOK", Description: "Socks"}}
}

func TestUserFlowAndDescription(t *testing.T) {
	tests := []struct {
		name, phone, description, prefix string
		wantFlow, wantText               string
	}{
		{"browser", "", "Socks", "", "WEB_REDIRECT", "Socks"},
		{"phone", "91234567", "Socks", "", "PUSH_MESSAGE", "Socks"},
		{"phone with country code is not used", "4791234567", "Socks", "", "WEB_REDIRECT", "Socks"},
		{"short text is padded", "", "ab", "", "WEB_REDIRECT", "ab."},
		{"prefix", "", "Socks", "Acme: ", "WEB_REDIRECT", "Acme: Socks"},
		{"no text", "", "  ", "", "WEB_REDIRECT", "Order order-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input(abi.OpBuildInitiate)
			in.Session.CustomerPhone, in.Session.Description, in.Merchant.TransactionTextPrefix = tt.phone, tt.description, tt.prefix
			out := epayment.Handle(in)
			if !out.OK {
				t.Fatalf("error %+v", out.Error)
			}
			var body struct {
				UserFlow           string `json:"userFlow"`
				PaymentDescription string `json:"paymentDescription"`
				ReturnURL          string `json:"returnUrl"`
				Customer           *struct {
					PhoneNumber string `json:"phoneNumber"`
				} `json:"customer"`
			}
			if err := json.Unmarshal(out.Request.Body, &body); err != nil {
				t.Fatal(err)
			}
			if body.UserFlow != tt.wantFlow || body.PaymentDescription != tt.wantText {
				t.Fatalf("flow %s text %q, want %s %q", body.UserFlow, body.PaymentDescription, tt.wantFlow, tt.wantText)
			}
			if tt.wantFlow == "PUSH_MESSAGE" && (body.Customer == nil || body.Customer.PhoneNumber != "47"+tt.phone || body.ReturnURL != "") {
				t.Fatalf("push body %s", out.Request.Body)
			}
			if tt.wantFlow == "WEB_REDIRECT" && (body.Customer != nil || body.ReturnURL != in.Merchant.FallBack) {
				t.Fatalf("web body %s", out.Request.Body)
			}
		})
	}
}

func TestProviderErrorRetryable(t *testing.T) {
	tests := []struct {
		status    int
		body      string
		retryable bool
	}{
		{400, `{"type":"t","title":"Capture amount too high","status":400,"traceId":"x"}`, false},
		{409, `{"type":"t","title":"Order processing","status":409,"traceId":"x"}`, true},
		{409, `{"type":"t","title":"Conflict","status":409,"traceId":"x","extraDetails":[{"name":"ErrorCode","reason":"6160"}]}`, true},
		{423, `{"type":"t","title":"Locked","status":423,"traceId":"x"}`, true},
		{429, `{"statusCode":429,"message":"Rate limit is exceeded"}`, true},
		{503, ``, true},
	}
	for _, tt := range tests {
		in := input(abi.OpReadCapture)
		in.Response = &abi.Response{Status: tt.status}
		if tt.body != "" {
			in.Response.Body = json.RawMessage(tt.body)
		}
		out := epayment.Handle(in)
		if out.OK || out.Error.Code != epayment.CodeProviderError || out.Error.Retryable != tt.retryable || out.Error.ProviderStatus != tt.status {
			t.Errorf("%d %s: %+v", tt.status, tt.body, out.Error)
		}
	}
}

// FuzzHandle feeds arbitrary inputs to Handle: it must never panic, and every output must pass the
// plugin output schema the host checks.
func FuzzHandle(f *testing.F) {
	paths, _ := filepath.Glob("../testdata/golden/*.input.json")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	set, err := schemas.Compile()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var in abi.Input
		if json.Unmarshal(raw, &in) != nil {
			return
		}
		out := epayment.Handle(&in)
		if out == nil {
			t.Fatal("nil output")
		}
		b, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := set.Validate(schemas.PluginOutput, b); err != nil {
			t.Fatalf("output fails its schema: %v\ninput: %s\noutput: %s", err, raw, b)
		}
	})
}
