package epayment

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/internal/vipps"
)

// Limits that keep an error output small whatever Vipps (or a proxy in front of it) answers.
const (
	maxProviderErrors = 10
	maxErrorText      = 200
)

// problemBody holds every field of the error bodies an ePayment call may get: the RFC 7807 Problem
// (type, title, status, detail, traceId, extraDetails), and Azure API Management's objects
// ({"responseInfo","result"} or {"statusCode","message"}) from the gateway in front of the API.
type problemBody struct {
	Type         string          `json:"type"`
	Title        string          `json:"title"`
	Status       json.RawMessage `json:"status"`
	Detail       string          `json:"detail"`
	TraceID      string          `json:"traceId"`
	ExtraDetails []struct {
		Name   string `json:"name"`
		Reason string `json:"reason"`
	} `json:"extraDetails"`
	ResponseInfo *struct {
		ResponseMessage string `json:"responseMessage"`
	} `json:"responseInfo"`
	Result *struct {
		Message string `json:"message"`
	} `json:"result"`
	Message string `json:"message"`
}

// Codes of ePayment problems (extraDetails ErrorCode, or the problem's type) after which sending the same
// request again cannot succeed, and those after which it may.
var retryableCodes = map[string]bool{"6160": true} // "Order processing": try again with the same key

// providerError turns a non-2xx answer into a provider_error that passes the problem on: its title and
// detail (or the gateway's message) in the message, its type, title and detail as the first provider error
// (type as the code: Vipps says it is the unique identifier of an error), and each extraDetails entry as
// another ("ErrorCode" entries carry Vipps's numeric code). Retryable is true for 409 "Order processing",
// 423, 429 and 5xx.
func providerError(status int, body []byte) *abi.Output {
	e := &abi.Error{Code: CodeProviderError, ProviderStatus: status,
		Retryable: status == 423 || status == 429 || status >= 500}
	httpStatus := "HTTP " + strconv.Itoa(status)
	msg := "Vipps: "
	t := bytes.TrimSpace(body)
	var p problemBody
	var str string
	switch {
	case len(t) == 0:
		msg += httpStatus + " with no body"
	case t[0] == '{' && json.Unmarshal(t, &p) == nil:
		title, detail := cleanText(p.Title), cleanText(p.Detail)
		switch {
		case title != "" || detail != "" || p.Type != "":
			msg += httpStatus + ": " + joinNonEmpty(": ", title, detail)
			if title == "" && detail == "" {
				msg += "problem " + cleanText(p.Type)
			}
			e.ProviderErrors = append(e.ProviderErrors, abi.ProviderError{Group: "problem",
				Code: cutRunes(cleanText(p.Type), 200), Message: joinNonEmpty(": ", title, detail)})
			for i, x := range p.ExtraDetails {
				if i == maxProviderErrors {
					break
				}
				name, reason := cleanText(x.Name), cleanText(x.Reason)
				e.ProviderErrors = append(e.ProviderErrors, abi.ProviderError{Group: "extraDetails", Code: name, Message: reason})
				if strings.EqualFold(name, "ErrorCode") && retryableCodes[reason] {
					e.Retryable = true
				}
			}
			if strings.EqualFold(title, "Order processing") {
				e.Retryable = true
			}
			if id := cleanText(p.TraceID); id != "" {
				msg += " (traceId " + id + ")"
			}
		case p.ResponseInfo != nil || p.Result != nil:
			var text, detail string
			if p.ResponseInfo != nil {
				text = cleanText(p.ResponseInfo.ResponseMessage)
			}
			if p.Result != nil {
				detail = cleanText(p.Result.Message)
			}
			msg += joinNonEmpty(": ", joinNonEmpty(" ", httpStatus, text), detail)
		case p.Message != "":
			msg += httpStatus + ": " + cleanText(p.Message)
		default:
			msg += httpStatus + " with an unrecognised error body"
		}
	case t[0] == '"' && json.Unmarshal(t, &str) == nil:
		// The host passes a body that is not JSON (a proxy's HTML page, plain text) as a JSON string.
		if s := cleanText(str); strings.HasPrefix(s, "<") {
			msg += httpStatus + " with a markup body"
		} else if s != "" {
			msg += httpStatus + ": " + s
		} else {
			msg += httpStatus + " with an empty message"
		}
	default:
		msg += httpStatus + " with an unrecognised error body"
	}
	e.Message = cutRunes(msg, 1000)
	return &abi.Output{Error: e}
}

// cleanText makes provider text safe and short for a message: control characters become spaces, runs of
// white space collapse, and it is cut to maxErrorText characters.
func cleanText(s string) string {
	if vipps.IsCleanText(s, maxErrorText) {
		return s
	}
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || (0x80 <= r && r < 0xa0) }), " ")
	return clip(strings.ToValidUTF8(s, "\uFFFD"), maxErrorText)
}

func joinNonEmpty(sep string, parts ...string) string {
	var out string
	for _, p := range parts {
		if p == "" {
			continue
		}
		if out != "" {
			out += sep
		}
		out += p
	}
	return out
}
