package report

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/internal/vipps"
)

// errorBody holds every field of the Report API's error bodies (report-v2.yaml): the 401 body
// ({code, message}), the 500 body ({errorCode, errorMessage, contextId}) and the RFC 7807 Problem of
// every other status ({type, title, status, detail, instance}).
type errorBody struct {
	Code         text   `json:"code"`
	Message      string `json:"message"`
	ErrorCode    text   `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
	ContextID    string `json:"contextId"`
	Type         string `json:"type"`
	Title        string `json:"title"`
	Detail       string `json:"detail"`
}

// providerError turns a non-2xx answer into a provider_error that passes Vipps's own words on. Retryable is
// true for 429 and 5xx: a GET may always be sent again, but only those can answer differently soon.
func providerError(status int, body []byte) *abi.Output {
	e := &abi.Error{Code: CodeProviderError, ProviderStatus: status, Retryable: status == 429 || status >= 500}
	msg := "Vipps Report API: HTTP " + strconv.Itoa(status)
	t := bytes.TrimSpace(body)
	var b errorBody
	var str string
	switch {
	case len(t) == 0:
		msg += " with no body"
	case t[0] == '{' && json.Unmarshal(t, &b) == nil:
		words := join(clean(b.Title), clean(b.Detail), clean(b.Message), clean(b.ErrorMessage))
		code := clean(b.Code.V)
		if code == "" {
			code = clean(b.ErrorCode.V)
		}
		if code == "" {
			code = clean(b.Type)
		}
		switch {
		case words != "" || code != "":
			msg += ": " + join(code, words)
			e.ProviderErrors = []abi.ProviderError{{Code: vipps.CutRunes(code, 200), Message: vipps.CutRunes(words, 1000)}}
		default:
			msg += " with an unrecognised error body"
		}
		if id := clean(b.ContextID); id != "" {
			msg += " (contextId " + id + ")"
		}
	case t[0] == '"' && json.Unmarshal(t, &str) == nil:
		// The host passes a body that is not JSON (a proxy's HTML page, plain text) as a JSON string.
		if s := clean(str); strings.HasPrefix(s, "<") {
			msg += " with a markup body"
		} else if s != "" {
			msg += ": " + s
		}
	default:
		msg += " with an unrecognised error body"
	}
	e.Message = vipps.CutRunes(msg, 1000)
	return &abi.Output{Error: e}
}

// clean makes provider text safe and short for a message: control characters become spaces, runs of
// white space collapse, and it is cut to 200 characters.
func clean(s string) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || (0x80 <= r && r < 0xa0) }), " ")
	return vipps.Clip(strings.ToValidUTF8(s, "\uFFFD"), 200)
}

// join joins the non-empty parts with ": ".
func join(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ": ")
}
