package epayment_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/vippsepayment/epayment"
)

// TestRequestedUserFlow checks that a flow the checkout asks for wins over the phone-number default, and
// that each flow gets the fields the spec requires of it and no others.
func TestRequestedUserFlow(t *testing.T) {
	tests := []struct {
		name, flow, phone string
		wantFlow          string
		wantErr           string // substring of an invalid_input message; "" for success
	}{
		{"default without phone", "", "", "WEB_REDIRECT", ""},
		{"default with phone", "", "91234567", "PUSH_MESSAGE", ""},
		{"web redirect with phone", "WEB_REDIRECT", "91234567", "WEB_REDIRECT", ""},
		{"native redirect", "NATIVE_REDIRECT", "", "NATIVE_REDIRECT", ""},
		{"native redirect with phone", "NATIVE_REDIRECT", "91234567", "NATIVE_REDIRECT", ""},
		{"qr", "QR", "", "QR", ""},
		{"push message", "PUSH_MESSAGE", "91234567", "PUSH_MESSAGE", ""},
		{"push message without phone", "PUSH_MESSAGE", "", "", "session.userFlow: PUSH_MESSAGE needs"},
		{"push message with malformed phone", "PUSH_MESSAGE", "4791234567", "", "session.userFlow: PUSH_MESSAGE needs"},
		{"unknown", "SMS", "", "", `session.userFlow: "SMS" is not`},
		{"lower case", "qr", "", "", `session.userFlow: "qr" is not`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input(abi.OpBuildInitiate)
			in.Session.UserFlow, in.Session.CustomerPhone = tt.flow, tt.phone
			out := epayment.Handle(in)
			if tt.wantErr != "" {
				if out.OK || out.Error == nil || out.Error.Code != epayment.CodeInvalidInput || !strings.Contains(out.Error.Message, tt.wantErr) {
					t.Fatalf("got %+v %+v, want invalid_input %q", out, out.Error, tt.wantErr)
				}
				return
			}
			if !out.OK {
				t.Fatalf("error %+v", out.Error)
			}
			var body map[string]json.RawMessage
			if err := json.Unmarshal(out.Request.Body, &body); err != nil {
				t.Fatal(err)
			}
			var flow string
			if err := json.Unmarshal(body["userFlow"], &flow); err != nil || flow != tt.wantFlow {
				t.Fatalf("userFlow %s, want %s", body["userFlow"], tt.wantFlow)
			}
			_, hasReturn := body["returnUrl"]
			_, hasCustomer := body["customer"]
			qr, hasQR := body["qrFormat"]
			if want := flow == "WEB_REDIRECT" || flow == "NATIVE_REDIRECT"; hasReturn != want {
				t.Errorf("returnUrl present %v, want %v: %s", hasReturn, want, out.Request.Body)
			}
			if want := flow == "PUSH_MESSAGE"; hasCustomer != want {
				t.Errorf("customer present %v, want %v: %s", hasCustomer, want, out.Request.Body)
			}
			if want := flow == "QR"; hasQR != want || (want && string(qr) != `{"format":"TEXT/TARGETURL"}`) {
				t.Errorf("qrFormat %s, want it only for QR: %s", qr, out.Request.Body)
			}
		})
	}
}

// TestReadInitiateRedirectByFlow checks which redirectUrl read_initiate accepts for each flow.
func TestReadInitiateRedirectByFlow(t *testing.T) {
	tests := []struct {
		flow, phone, url string
		want             string // the payment's redirectUrl; "!" for unexpected_response
	}{
		{"", "", "https://landing.vipps.no?token=a", "https://landing.vipps.no?token=a"},
		{"", "", "vipps://?token=a", "!"},
		{"", "", "", "!"},
		{"NATIVE_REDIRECT", "", "vipps://?token=a", "vipps://?token=a"},
		{"NATIVE_REDIRECT", "", "vippsMT://?token=a", "vippsMT://?token=a"},
		{"NATIVE_REDIRECT", "", "https://landing.vipps.no?token=a", "https://landing.vipps.no?token=a"},
		{"NATIVE_REDIRECT", "", "VIPPS://?token=a", "!"},
		{"NATIVE_REDIRECT", "", "vipps://?token=a b", "!"},
		{"NATIVE_REDIRECT", "", "vipps://%zz", "!"},
		{"NATIVE_REDIRECT", "", "javascript://alert(1)", "!"},
		{"NATIVE_REDIRECT", "", "", "!"},
		{"QR", "", "https://qr.vipps.no/b/v1?token=a", "https://qr.vipps.no/b/v1?token=a"},
		{"QR", "", "vipps://?token=a", "!"},
		{"QR", "", "", "!"},
		{"QR", "", "https://x/" + strings.Repeat("a", 4100), "!"},
		{"PUSH_MESSAGE", "91234567", "", ""},
		{"PUSH_MESSAGE", "91234567", "https://landing.vipps.no?token=a", ""},
	}
	for _, tt := range tests {
		t.Run(tt.flow+" "+tt.url, func(t *testing.T) {
			in := input(abi.OpReadInitiate)
			in.Session.UserFlow, in.Session.CustomerPhone = tt.flow, tt.phone
			body, _ := json.Marshal(map[string]string{"redirectUrl": tt.url, "reference": ref})
			if tt.url == "" {
				body, _ = json.Marshal(map[string]string{"reference": ref})
			}
			in.Response = &abi.Response{Status: 201, Body: body}
			out := epayment.Handle(in)
			if tt.want == "!" {
				if out.OK || out.Error.Code != epayment.CodeUnexpectedResponse {
					t.Fatalf("got %+v, want unexpected_response", out)
				}
				return
			}
			if !out.OK || out.Payment.RedirectURL != tt.want || out.Payment.State != "pending" {
				t.Fatalf("got %+v %+v, want redirectUrl %q", out.Payment, out.Error, tt.want)
			}
		})
	}
}
