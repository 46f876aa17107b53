package vipps_test

import (
	"encoding/json"
	"io/fs"
	"reflect"
	"strings"
	"testing"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/internal/vipps"
	"github.com/kassehq/kasse/plugin/vippsecom/ecom"
	"github.com/kassehq/kasse/plugin/vippsepayment/epayment"
	"github.com/kassehq/kasse/schemas"
)

// TestCodesMatchPlugins checks that the codes this package puts in outputs are the ones each plugin
// documents.
func TestCodesMatchPlugins(t *testing.T) {
	for _, c := range []struct{ name, got, want string }{
		{"ecom.CodeInvalidInput", ecom.CodeInvalidInput, vipps.CodeInvalidInput},
		{"ecom.CodeUnexpectedResponse", ecom.CodeUnexpectedResponse, vipps.CodeUnexpectedResponse},
		{"epayment.CodeInvalidInput", epayment.CodeInvalidInput, vipps.CodeInvalidInput},
		{"epayment.CodeUnexpectedResponse", epayment.CodeUnexpectedResponse, vipps.CodeUnexpectedResponse},
	} {
		if c.got != c.want {
			t.Errorf("%s is %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestAnswer(t *testing.T) {
	providerError := func(status int, body []byte) *abi.Output {
		return vipps.Fail("provider_error", string(body))
	}
	for _, c := range []struct {
		name     string
		response *abi.Response
		wantBody string
		want     *abi.Output
	}{
		{"ok", &abi.Response{Status: 200, Body: []byte(`{"a":1}`)}, `{"a":1}`, nil},
		{"created", &abi.Response{Status: 201, Body: []byte(`{}`)}, `{}`, nil},
		{"missing", nil, "", vipps.Fail("invalid_input", "response: missing (read_capture reads the answer to its request)")},
		{"status 99", &abi.Response{Status: 99}, "", vipps.Fail("invalid_input", "response.status: 99 is not an HTTP status")},
		{"status 600", &abi.Response{Status: 600}, "", vipps.Fail("invalid_input", "response.status: 600 is not an HTTP status")},
		{"redirect", &abi.Response{Status: 302, Body: []byte("moved")}, "", vipps.Fail("provider_error", "moved")},
		{"server error", &abi.Response{Status: 503, Body: []byte("down")}, "", vipps.Fail("provider_error", "down")},
	} {
		t.Run(c.name, func(t *testing.T) {
			body, out := vipps.Answer(&abi.Input{Op: abi.OpReadCapture, Response: c.response}, providerError)
			if string(body) != c.wantBody || !reflect.DeepEqual(out, c.want) {
				t.Errorf("got %q, %+v; want %q, %+v", body, out, c.wantBody, c.want)
			}
		})
	}
}

func TestUnexpected(t *testing.T) {
	got := vipps.Unexpected(&abi.Input{Response: &abi.Response{Status: 201}}, "capture", "orderId is missing")
	want := &abi.Output{Error: &abi.Error{Code: "unexpected_response", Message: "Vipps capture answer (HTTP 201): orderId is missing"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got.Error, want.Error)
	}
}

func TestInvalid(t *testing.T) {
	got := vipps.Invalid("session.amount", "must be positive")
	want := &abi.Output{Error: &abi.Error{Code: "invalid_input", Message: "session.amount: must be positive"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got.Error, want.Error)
	}
}

func TestUnknownAmounts(t *testing.T) {
	got := vipps.UnknownAmounts("captured")
	want := &abi.Payment{State: "captured", AuthorizedAmount: -1, CapturedAmount: -1, RefundedAmount: -1, CancelledAmount: -1}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestAllDigits(t *testing.T) {
	for s, want := range map[string]bool{"": false, "0": true, "123456": true, "12a4": false, "-1": false, " 1": false, "١": false} {
		if got := vipps.AllDigits(s); got != want {
			t.Errorf("AllDigits(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestCutRunesAndClip(t *testing.T) {
	for _, c := range []struct {
		s        string
		n        int
		cut, clp string
	}{
		{"", 3, "", ""},
		{"abc", 3, "abc", "abc"},
		{"abcd", 3, "abc", "abc…"},
		{"blåbær", 3, "blå", "blå…"},
		{"blåbær", 6, "blåbær", "blåbær"},
		{"æøå", 0, "", "…"},
		// An invalid UTF-8 byte counts as one character.
		{"a\xffbc", 2, "a\xff", "a\xff…"},
		{"日本語テキスト", 2, "日本", "日本…"},
	} {
		if got := vipps.CutRunes(c.s, c.n); got != c.cut {
			t.Errorf("CutRunes(%q, %d) = %q, want %q", c.s, c.n, got, c.cut)
		}
		if got := vipps.Clip(c.s, c.n); got != c.clp {
			t.Errorf("Clip(%q, %d) = %q, want %q", c.s, c.n, got, c.clp)
		}
	}
}

func TestAppLink(t *testing.T) {
	for _, c := range []struct {
		u    string
		want bool
	}{
		{"vipps://", true},
		{"vipps://?token=abc&orderId=1", true},
		{"vippsMT://?token=abc", true},
		{"vippsmt://?token=abc", false},
		{"VIPPS://?token=abc", false},
		{"https://api.vipps.no/x", false},
		{"", false},
		{"vipps:", false},
		{"vipps:// token", false},
		{"vipps://?token=a\tb", false},
		{"vipps://?token=a\x7fb", false},
		{"vipps://?token=a\x00b", false},
		{"vipps://user:pass@host/x", false},
		{"vipps://%zz", false},
		{"vipps://?token=blåbær", true},
	} {
		if got := vipps.AppLink(c.u); got != c.want {
			t.Errorf("AppLink(%q) = %v, want %v", c.u, got, c.want)
		}
	}
}

// TestMaxRedirectURL checks the limit against the maxLength the plugin output schema sets for a payment's
// redirectUrl.
func TestMaxRedirectURL(t *testing.T) {
	raw, err := fs.ReadFile(schemas.FS(), schemas.PluginOutput)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Defs struct {
			Payment struct {
				Properties struct {
					RedirectURL struct {
						MaxLength int `json:"maxLength"`
					} `json:"redirectUrl"`
				} `json:"properties"`
			} `json:"payment"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if got := doc.Defs.Payment.Properties.RedirectURL.MaxLength; got != vipps.MaxRedirectURL {
		t.Errorf("%s: $defs.payment.properties.redirectUrl.maxLength is %d, MaxRedirectURL is %d", schemas.PluginOutput, got, vipps.MaxRedirectURL)
	}
}

// TestIsCleanTextAgreesWithCleaning: IsCleanText is true exactly when the plugins' cleaning leaves a
// string as it is.
func TestIsCleanTextAgreesWithCleaning(t *testing.T) {
	clean := func(s string, n int) string {
		s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || (0x80 <= r && r < 0xa0) }), " ")
		return vipps.Clip(strings.ToValidUTF8(s, "\uFFFD"), n)
	}
	pieces := []string{"", " ", "  ", "a", "Ø", "ørjan", "\t", "\n", "\x7f", "\u0085", "\u009f", "\u00a0", "\xc2", "\xc2A",
		"\xff", "\uFFFD", "\u2028", "é", "Storgata 1", "x@example.com", "+4791234567"}
	var inputs []string
	for _, a := range pieces {
		for _, b := range pieces {
			for _, c := range pieces {
				inputs = append(inputs, a+b+c)
			}
		}
	}
	inputs = append(inputs, strings.Repeat("a", 200), strings.Repeat("a", 201), strings.Repeat("ø", 100), strings.Repeat("ø", 101))
	for _, s := range inputs {
		for _, n := range []int{200, 5} {
			want := clean(s, n) == s
			if got := vipps.IsCleanText(s, n); got && !want {
				t.Errorf("IsCleanText(%q, %d) = true, but cleaning gives %q", s, n, clean(s, n))
			} else if !got && want && len(s) <= n {
				t.Errorf("IsCleanText(%q, %d) = false, but cleaning leaves it as it is", s, n)
			}
		}
	}
}

// TestHTTPSchemeMatchesToLower holds HTTPScheme to the test it replaces, strings.ToLower and HasPrefix,
// on every case mix of the schemes and on characters that lower-case to ASCII or fold to it.
func TestHTTPSchemeMatchesToLower(t *testing.T) {
	reference := func(u string) (string, bool) {
		lower := strings.ToLower(u)
		switch {
		case strings.HasPrefix(lower, "https://"):
			return u[len("https://"):], true
		case strings.HasPrefix(lower, "http://"):
			return u[len("http://"):], true
		}
		return "", false
	}
	inputs := []string{"", "h", "http:/", "http://", "https://", "ftp://x", "https:/x", "httpsx://x",
		"\u212Attps://x", "ht\u0130ps://x", "http\u017f://x", "http\u0053://x", "\xffhttp://x", "http://\xff",
		"h\xfftp://x", "vipps://x", " http://x", "http\x00://x", "htt\u0130://x", "http:\u2215/x"}
	for mask := range 1 << 8 { // every case mix of "https://x" and "http://x"
		for _, base := range []string{"https://x", "http://x"} {
			b := []byte(base)
			for i := range b {
				if mask&(1<<i) != 0 && 'a' <= b[i] && b[i] <= 'z' {
					b[i] -= 'a' - 'A'
				}
			}
			inputs = append(inputs, string(b))
		}
	}
	for _, u := range inputs {
		rest, ok := vipps.HTTPScheme(u)
		wantRest, wantOK := reference(u)
		if rest != wantRest || ok != wantOK {
			t.Errorf("HTTPScheme(%q) = %q, %v; want %q, %v", u, rest, ok, wantRest, wantOK)
		}
	}
}
