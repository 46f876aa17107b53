package ecom

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

// vippsError is one entry of eCom's error array (ecom-v2.swagger.yaml, Error). errorGroup is free text
// (MT traffic has "PAYMENTS", outside the enum) and errorCode may arrive as a number.
type vippsError struct {
	ErrorGroup   flexString `json:"errorGroup"`
	ErrorCode    flexString `json:"errorCode"`
	ErrorMessage flexString `json:"errorMessage"`
	ContextID    flexString `json:"contextId"`
}

// errorObject holds every field of the object-shaped error bodies: Azure API Management's ErrorFromAzure
// ({"responseInfo":{"responseCode","responseMessage"},"result":{"message"}}), its short form
// ({"statusCode","message"}), a single eCom Error not wrapped in an array, and an RFC 7807 problem.
type errorObject struct {
	vippsError
	ResponseInfo *struct {
		ResponseCode    flexString `json:"responseCode"`
		ResponseMessage flexString `json:"responseMessage"`
	} `json:"responseInfo"`
	Result *struct {
		Message flexString `json:"message"`
	} `json:"result"`
	StatusCode flexString `json:"statusCode"`
	Message    flexString `json:"message"`
	Title      flexString `json:"title"`
	Detail     flexString `json:"detail"`
}

// providerError turns a non-2xx answer into a provider_error. It reads both error shapes of the eCom API
// (vipps-reference.md §3.7 and §9.5) and a bare JSON string; any other body still gives a coded error that
// names the HTTP status.
//
// Retryable is true for HTTP 429 and 5xx, and for errorCode 94 (order locked, retry with the same
// X-Request-Id) and 98 (too many concurrent requests) except in errorGroup "Payment", where 98 means the
// capture window is over and retrying cannot help.
func providerError(status int, body []byte) *abi.Output {
	e := &abi.Error{Code: CodeProviderError, ProviderStatus: status, Retryable: status == 429 || status >= 500}
	var msg strings.Builder
	msg.WriteString("Vipps: ")
	httpStatus := "HTTP " + strconv.Itoa(status)

	t := bytes.TrimSpace(body)
	var list []vippsError
	var obj errorObject
	var str string
	switch {
	case len(t) == 0:
		msg.WriteString(httpStatus + " with no body")
	case t[0] == '[' && json.Unmarshal(t, &list) == nil:
		if len(list) == 0 {
			msg.WriteString(httpStatus + " with an empty error list")
		}
		for i, v := range list {
			if i == maxProviderErrors {
				msg.WriteString("; …")
				break
			}
			if i > 0 {
				msg.WriteString("; ")
			}
			addVippsError(e, &msg, v, httpStatus)
		}
	case t[0] == '{' && json.Unmarshal(t, &obj) == nil:
		switch {
		case obj.ErrorCode != "" || obj.ErrorMessage != "" || obj.ErrorGroup != "":
			addVippsError(e, &msg, obj.vippsError, httpStatus)
		case obj.ResponseInfo != nil || obj.Result != nil:
			code, text, detail := flexString(strconv.Itoa(status)), flexString(""), flexString("")
			if obj.ResponseInfo != nil {
				if obj.ResponseInfo.ResponseCode != "" {
					code = obj.ResponseInfo.ResponseCode
				}
				text = obj.ResponseInfo.ResponseMessage
			}
			if obj.Result != nil {
				detail = obj.Result.Message
			}
			msg.WriteString(joinNonEmpty(" ", "HTTP "+cleanText(string(code)), cleanText(string(text))))
			if d := cleanText(string(detail)); d != "" {
				msg.WriteString(": " + d)
			}
		case obj.StatusCode != "" || obj.Message != "":
			code := obj.StatusCode
			if code == "" {
				code = flexString(strconv.Itoa(status))
			}
			msg.WriteString("HTTP " + cleanText(string(code)))
			if m := cleanText(string(obj.Message)); m != "" {
				msg.WriteString(": " + m)
			}
		case obj.Title != "" || obj.Detail != "":
			msg.WriteString(httpStatus + ": " + joinNonEmpty(": ", cleanText(string(obj.Title)), cleanText(string(obj.Detail))))
		default:
			msg.WriteString(httpStatus + " with an unrecognised error body")
		}
	case t[0] == '"' && json.Unmarshal(t, &str) == nil:
		// The host passes a body that is not JSON (a proxy's HTML page, plain text) as a JSON string.
		if s := cleanText(str); strings.HasPrefix(s, "<") {
			msg.WriteString(httpStatus + " with a markup body")
		} else if s != "" {
			msg.WriteString(httpStatus + ": " + s)
		} else {
			msg.WriteString(httpStatus + " with an empty message")
		}
	default:
		msg.WriteString(httpStatus + " with an unrecognised error body")
	}
	e.Message = msg.String()
	return &abi.Output{Error: e}
}

// addVippsError records one eCom error entry and writes "Group Code: message" to msg.
func addVippsError(e *abi.Error, msg *strings.Builder, v vippsError, httpStatus string) {
	group, code, text := cleanText(string(v.ErrorGroup)), cleanText(string(v.ErrorCode)), cleanText(string(v.ErrorMessage))
	if group != "" || code != "" || text != "" {
		e.ProviderErrors = append(e.ProviderErrors, abi.ProviderError{Group: group, Code: code, Message: text})
	}
	if code == "94" || (code == "98" && !strings.EqualFold(group, "Payment")) {
		e.Retryable = true
	}
	head := joinNonEmpty(" ", group, code)
	switch {
	case head != "" && text != "":
		msg.WriteString(head + ": " + text)
	case head != "":
		msg.WriteString(head)
	case text != "":
		msg.WriteString(text)
	default:
		msg.WriteString(httpStatus + " with an empty error entry")
	}
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
