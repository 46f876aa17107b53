package ecom

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kassehq/kasse/plugin/abi"
)

// TestUserFlowToIsApp checks the §7 mapping of the checkout's userFlow onto eCom: isApp for
// NATIVE_REDIRECT, the landing page otherwise, and a clear refusal of the flows eCom cannot offer.
func TestUserFlowToIsApp(t *testing.T) {
	tests := []struct {
		flow      string
		wantIsApp bool
		wantErr   string
	}{
		{"", false, ""},
		{"WEB_REDIRECT", false, ""},
		{"NATIVE_REDIRECT", true, ""},
		{"PUSH_MESSAGE", false, "skipLandingPage"},
		{"QR", false, "not available in the eCom API"},
		{"native_redirect", false, "is not WEB_REDIRECT"},
	}
	for _, tt := range tests {
		t.Run(tt.flow, func(t *testing.T) {
			in := sampleInput(abi.OpBuildInitiate)
			in.Session.UserFlow = tt.flow
			out := Handle(in)
			checkOutput(t, in, out)
			if tt.wantErr != "" {
				if out.OK || out.Error.Code != CodeInvalidInput || !strings.HasPrefix(out.Error.Message, "session.userFlow: ") ||
					!strings.Contains(out.Error.Message, tt.wantErr) {
					t.Fatalf("got %+v, want invalid_input about session.userFlow containing %q", out.Error, tt.wantErr)
				}
				return
			}
			if !out.OK {
				t.Fatalf("error %+v", out.Error)
			}
			var body struct {
				MerchantInfo struct {
					IsApp *bool `json:"isApp"`
				} `json:"merchantInfo"`
			}
			if err := json.Unmarshal(out.Request.Body, &body); err != nil {
				t.Fatal(err)
			}
			if body.MerchantInfo.IsApp == nil || *body.MerchantInfo.IsApp != tt.wantIsApp {
				t.Fatalf("isApp in %s, want %v", out.Request.Body, tt.wantIsApp)
			}
		})
	}
}

// TestReadInitiateAppLink checks that an app link is accepted only when the checkout asked for
// NATIVE_REDIRECT (isApp true).
func TestReadInitiateAppLink(t *testing.T) {
	tests := []struct {
		flow, url string
		ok        bool
	}{
		{"", "https://api.vipps.no/dwo-api-application/v1/deeplink/vippsgateway?v=2&token=a", true},
		{"", "vipps://?token=a", false},
		{"NATIVE_REDIRECT", "vipps://?token=a", true},
		{"NATIVE_REDIRECT", "vippsMT://?token=a", true},
		{"NATIVE_REDIRECT", "https://api.vipps.no/x?token=a", true},
		{"NATIVE_REDIRECT", "vipps://?token=a\tb", false},
		{"NATIVE_REDIRECT", "vipps://%zz", false},
		{"NATIVE_REDIRECT", "mobilepay://?token=a", false},
		{"NATIVE_REDIRECT", "vipps://?t=" + strings.Repeat("a", 4100), false},
	}
	for _, tt := range tests {
		t.Run(tt.flow+" "+tt.url, func(t *testing.T) {
			in := sampleInput(abi.OpReadInitiate)
			in.Session.UserFlow = tt.flow
			body, _ := json.Marshal(map[string]string{"orderId": in.Session.ProviderReference, "url": tt.url})
			in.Response = &abi.Response{Status: 200, Body: body}
			out := Handle(in)
			checkOutput(t, in, out)
			if out.OK != tt.ok {
				t.Fatalf("ok %v (%+v), want %v", out.OK, out.Error, tt.ok)
			}
			if tt.ok && out.Payment.RedirectURL != tt.url {
				t.Fatalf("redirectUrl %q", out.Payment.RedirectURL)
			}
		})
	}
}
