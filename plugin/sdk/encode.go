package sdk

import (
	"strconv"

	"github.com/kassehq/kasse/plugin/abi"
)

// appendOutput appends o as JSON. The result equals json.Marshal(o) as a value (byte for byte, except that
// json.RawMessage fields are written as given instead of compacted); RawMessage fields are not validated
// here, the host rejects an output that is not valid JSON.
func appendOutput(b []byte, o *abi.Output) []byte {
	b = append(b, `{"ok":`...)
	b = appendBool(b, o.OK)
	if e := o.Error; e != nil {
		b = append(b, `,"error":{"code":`...)
		b = appendString(b, e.Code)
		b = append(b, `,"message":`...)
		b = appendString(b, e.Message)
		if e.ProviderStatus != 0 {
			b = append(b, `,"providerStatus":`...)
			b = appendInt(b, int64(e.ProviderStatus))
		}
		if len(e.ProviderErrors) > 0 {
			b = append(b, `,"providerErrors":[`...)
			for i := range e.ProviderErrors {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendProviderError(b, &e.ProviderErrors[i])
			}
			b = append(b, ']')
		}
		if e.Retryable {
			b = append(b, `,"retryable":true`...)
		}
		b = append(b, '}')
	}
	if r := o.Request; r != nil {
		b = append(b, `,"request":{"method":`...)
		b = appendString(b, r.Method)
		b = append(b, `,"path":`...)
		b = appendString(b, r.Path)
		if len(r.Body) > 0 {
			b = append(b, `,"body":`...)
			b = append(b, r.Body...)
		}
		if r.IdempotencyHeader != "" {
			b = append(b, `,"idempotencyHeader":`...)
			b = appendString(b, r.IdempotencyHeader)
		}
		if len(r.Inject) > 0 {
			b = append(b, `,"inject":[`...)
			for i := range r.Inject {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"pointer":`...)
				b = appendString(b, r.Inject[i].Pointer)
				b = append(b, `,"value":`...)
				b = appendString(b, r.Inject[i].Value)
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if p := o.Payment; p != nil {
		b = append(b, `,"payment":{"state":`...)
		b = appendString(b, p.State)
		if p.ProviderReference != "" {
			b = append(b, `,"providerReference":`...)
			b = appendString(b, p.ProviderReference)
		}
		if p.RedirectURL != "" {
			b = append(b, `,"redirectUrl":`...)
			b = appendString(b, p.RedirectURL)
		}
		b = append(b, `,"authorizedAmount":`...)
		b = appendInt(b, p.AuthorizedAmount)
		b = append(b, `,"capturedAmount":`...)
		b = appendInt(b, p.CapturedAmount)
		b = append(b, `,"refundedAmount":`...)
		b = appendInt(b, p.RefundedAmount)
		b = append(b, `,"cancelledAmount":`...)
		b = appendInt(b, p.CancelledAmount)
		if p.Reason != "" {
			b = append(b, `,"reason":`...)
			b = appendString(b, p.Reason)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

func appendProviderError(b []byte, e *abi.ProviderError) []byte {
	b = append(b, '{')
	n := len(b)
	if e.Group != "" {
		b = append(b, `"group":`...)
		b = appendString(b, e.Group)
	}
	if e.Code != "" {
		if len(b) > n {
			b = append(b, ',')
		}
		b = append(b, `"code":`...)
		b = appendString(b, e.Code)
	}
	if e.Message != "" {
		if len(b) > n {
			b = append(b, ',')
		}
		b = append(b, `"message":`...)
		b = appendString(b, e.Message)
	}
	return append(b, '}')
}

// appendInt appends v in decimal.
func appendInt(b []byte, v int64) []byte {
	return strconv.AppendInt(b, v, 10)
}
