// Package vipps is the plumbing the Vipps payment plugins (plugin/vippsecom/ecom and
// plugin/vippsepayment/epayment) share: the failure outputs both return, the triage of a Vipps answer by
// its HTTP status, the payment whose amounts are unknown, the check of a Vipps app deeplink and the cutting
// of text for error messages. Each API's mapping, its error bodies and its checks of identifiers stay in
// its plugin.
//
// Like the plugins, it keeps no state and avoids fmt and reflection, so that it costs little in a
// WebAssembly module.
package vipps

import (
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kassehq/kasse/plugin/abi"
)

// Error codes both plugins report from this package's helpers; each plugin documents them as its own
// CodeInvalidInput and CodeUnexpectedResponse, with the same values.
const (
	// CodeInvalidInput reports an input the plugin cannot work with.
	CodeInvalidInput = "invalid_input"
	// CodeUnexpectedResponse reports a success answer from Vipps that cannot be read.
	CodeUnexpectedResponse = "unexpected_response"
)

// MaxRedirectURL is the longest redirect URL the host accepts from a plugin (plugin-output.schema.json).
const MaxRedirectURL = 4096

// Fail returns a failed output with code and message.
func Fail(code, message string) *abi.Output {
	return &abi.Output{Error: &abi.Error{Code: code, Message: message}}
}

// Invalid returns an invalid_input failure for the input field at path (e.g. "session.amount").
func Invalid(path, problem string) *abi.Output { return Fail(CodeInvalidInput, path+": "+problem) }

// OKRequest returns a successful build output. It copies *r into one allocation with the output, so that a
// request built on the caller's stack (most are) costs one allocation in the guest instead of two.
func OKRequest(r *abi.Request) *abi.Output {
	m := new(struct {
		out abi.Output
		r   abi.Request
	})
	m.r = *r
	m.out = abi.Output{OK: true, Request: &m.r}
	return &m.out
}

// OKPayment returns a successful read output. It copies *p into one allocation with the output, as
// OKRequest does.
func OKPayment(p *abi.Payment) *abi.Output {
	m := new(struct {
		out abi.Output
		p   abi.Payment
	})
	m.p = *p
	m.out = abi.Output{OK: true, Payment: &m.p}
	return &m.out
}

// UnknownAmounts returns a payment in state with every amount unknown (-1).
func UnknownAmounts(state string) *abi.Payment {
	return &abi.Payment{State: state, AuthorizedAmount: -1, CapturedAmount: -1, RefundedAmount: -1, CancelledAmount: -1}
}

// Answer returns the body of the success (2xx) answer a read operation was given, or the output to return
// instead: invalid_input if the host sent no answer or an impossible status, and providerError's output
// for any other status.
func Answer(in *abi.Input, providerError func(status int, body []byte) *abi.Output) ([]byte, *abi.Output) {
	r := in.Response
	switch {
	case r == nil:
		return nil, Invalid("response", "missing ("+string(in.Op)+" reads the answer to its request)")
	case r.Status < 100 || r.Status > 599:
		return nil, Invalid("response.status", strconv.Itoa(r.Status)+" is not an HTTP status")
	case r.Status < 200 || r.Status > 299:
		return nil, providerError(r.Status, r.Body)
	}
	return r.Body, nil
}

// Unexpected reports a success answer that cannot be read as the answer to what (e.g. "capture"): an
// unexpected_response failure naming the answer's HTTP status and the problem. in.Response must be set.
func Unexpected(in *abi.Input, what, problem string) *abi.Output {
	return Fail(CodeUnexpectedResponse, "Vipps "+what+" answer (HTTP "+strconv.Itoa(in.Response.Status)+"): "+problem)
}

// AppLink reports whether u is a Vipps app deeplink, as an app-switch initiation answers (ecom isApp,
// ePayment NATIVE_REDIRECT): vipps:// in production, vippsMT:// in the test environment, without white
// space or control characters, parsing as a URI without user information.
func AppLink(u string) bool {
	if !strings.HasPrefix(u, "vipps://") && !strings.HasPrefix(u, "vippsMT://") {
		return false
	}
	for i := 0; i < len(u); i++ {
		if u[i] <= ' ' || u[i] == 0x7f {
			return false
		}
	}
	p, err := url.Parse(u)
	return err == nil && p.User == nil
}

// HTTPScheme returns what follows "http://" or "https://" at the start of u, in any ASCII case, and
// whether u starts so. It is the test strings.HasPrefix(strings.ToLower(u), "https://") makes (no other
// character lower-cases to one of these letters) without lowering, and so copying, all of u.
func HTTPScheme(u string) (rest string, ok bool) {
	for _, scheme := range [...]string{"https://", "http://"} {
		if len(u) >= len(scheme) && asciiLowerEqual(u[:len(scheme)], scheme) {
			return u[len(scheme):], true
		}
	}
	return "", false
}

// asciiLowerEqual reports whether s with its ASCII capitals lowered equals lower.
func asciiLowerEqual(s, lower string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// AllDigits reports whether s is one or more ASCII digits.
func AllDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

// CutRunes returns the first n characters of s (an invalid UTF-8 byte counts as one).
func CutRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for i := 0; i < len(s); n-- {
		if n == 0 {
			return s[:i]
		}
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s
}

// Clip cuts s to n characters for an error message, marking the cut with an ellipsis.
func Clip(s string, n int) string {
	c := CutRunes(s, n)
	if len(c) < len(s) {
		return c + "…"
	}
	return c
}

// IsCleanText reports whether the plugins' cleanText would return s unchanged: valid UTF-8 of at most
// maxBytes bytes (so never clipped at maxBytes characters), no control character, DEL or C1 control, and
// no space at either end or next to another. Names and addresses almost always are; checking costs one
// pass, while cleaning splits, joins and copies (several allocations, about a microsecond each in a wasm
// guest).
func IsCleanText(s string, maxBytes int) bool {
	if len(s) > maxBytes || s == "" {
		return s == ""
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ':
			if s[i-1] == ' ' {
				return false
			}
		case c < ' ' || c == 0x7f:
			return false
		case c == 0xc2 && i+1 < len(s) && s[i+1] < 0xa0:
			// U+0080..U+009F, C1 controls (a lone 0xc2 or one followed by ASCII is invalid UTF-8,
			// which the check below rejects).
			return false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return ascii || utf8.ValidString(s)
}
