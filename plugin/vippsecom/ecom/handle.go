package ecom

import (
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/internal/vipps"
	"github.com/kassehq/kasse/plugin/internal/vipps/report"
)

// Handle performs one plugin operation. It never panics and never returns nil: on failure the output has
// OK false and an Error with one of the Code* codes. Its result depends only on its input, but like a wasm
// instance it serves one call at a time: build_initiate, the hot path, reuses its body buffer and output,
// which stay valid until the next call (the SDK encodes them before that). Do not call it concurrently.
func Handle(in *abi.Input) *abi.Output {
	if in == nil {
		return fail(CodeInvalidInput, "no input")
	}
	if out, ok := report.Handle(in); ok {
		return out
	}
	switch in.Op {
	case abi.OpBuildInitiate:
		return buildInitiate(in)
	case abi.OpReadInitiate:
		return readInitiate(in)
	case abi.OpBuildCapture:
		return buildCapture(in)
	case abi.OpReadCapture:
		return readCapture(in)
	case abi.OpBuildCancel:
		return buildCancel(in)
	case abi.OpReadCancel:
		return readCancel(in)
	case abi.OpBuildRefund:
		return buildRefund(in)
	case abi.OpReadRefund:
		return readRefund(in)
	case abi.OpBuildDetails:
		return buildDetails(in)
	case abi.OpReadDetails:
		return readDetails(in)
	case abi.OpReadCallback:
		return readCallback(in)
	case abi.OpShippingOptions:
		return shippingDetails(in)
	}
	return fail(CodeUnsupportedOp, "vipps-ecom does not implement op "+quote(string(in.Op)))
}

// fail returns a failed output with code and message.
func fail(code, message string) *abi.Output { return vipps.Fail(code, message) }

// invalid returns an invalid_input failure for the input field at path (e.g. "session.amount").
func invalid(path, problem string) *abi.Output { return vipps.Invalid(path, problem) }

// okRequest returns a successful build output (see vipps.OKRequest).
func okRequest(r *abi.Request) *abi.Output { return vipps.OKRequest(r) }

// okPayment returns a successful read output (see vipps.OKPayment).
func okPayment(p *abi.Payment) *abi.Output { return vipps.OKPayment(p) }

// unknownAmounts returns a payment in state with every amount unknown (-1).
func unknownAmounts(state string) *abi.Payment { return vipps.UnknownAmounts(state) }

// orderID returns the session's eCom orderId, or a failure if it does not match ^[a-zA-Z0-9-]{1,50}$.
func orderID(in *abi.Input) (string, *abi.Output) {
	id := in.Session.ProviderReference
	if !validOrderID(id) {
		return "", invalid("session.providerReference", quote(clip(id, 60))+" is not a Vipps eCom orderId (^[a-zA-Z0-9-]{1,50}$)")
	}
	return id, nil
}

// merchantSerialNumber returns the merchant's MSN, or a failure if it is not 5 or 6 digits
// (MerchantInfo.merchantSerialNumber: ^\d{5,}$, maxLength 6).
func merchantSerialNumber(in *abi.Input) (string, *abi.Output) {
	msn := in.Merchant.MerchantSerialNumber
	if len(msn) < 5 || len(msn) > 6 || !allDigits(msn) {
		return "", invalid("merchant.merchantSerialNumber", quote(clip(msn, 20))+" is not a Vipps merchant serial number (5 or 6 digits)")
	}
	return msn, nil
}

func validOrderID(s string) bool {
	if len(s) == 0 || len(s) > 50 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// allDigits reports whether s is one or more ASCII digits.
func allDigits(s string) bool { return vipps.AllDigits(s) }
