package epayment

import (
	"strconv"
	"strings"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/internal/vipps"
	"github.com/kassehq/kasse/plugin/internal/vipps/report"
)

// Handle performs one plugin operation. It never panics and never returns nil: on failure the output has
// OK false and an Error with one of the Code* codes. It keeps no state between calls and may be called
// concurrently.
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
		return buildModification(in, "capture")
	case abi.OpReadCapture:
		return readModification(in, "capture")
	case abi.OpBuildCancel:
		return buildCancel(in)
	case abi.OpReadCancel:
		return readModification(in, "cancel")
	case abi.OpBuildRefund:
		return buildModification(in, "refund")
	case abi.OpReadRefund:
		return readModification(in, "refund")
	case abi.OpBuildDetails:
		return buildGet(in, "")
	case abi.OpReadDetails:
		return readDetails(in)
	case abi.OpReadCallback:
		return readCallback(in)
	case OpBuildEvents:
		return buildGet(in, "/events")
	case OpReadEvents:
		return readEvents(in)
	case OpBuildForceApprove:
		return buildForceApprove(in)
	}
	return fail(CodeUnsupportedOp, "vipps-epayment does not implement op "+quote(clip(string(in.Op), 40)))
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

// reference returns the session's ePayment reference, or a failure if it does not match the spec's
// ^[a-zA-Z0-9-]{8,50}$.
func reference(in *abi.Input) (string, *abi.Output) {
	ref := in.Session.ProviderReference
	if !validReference(ref) {
		return "", invalid("session.providerReference", quote(clip(ref, 60))+" is not a Vipps ePayment reference (^[a-zA-Z0-9-]{8,50}$)")
	}
	return ref, nil
}

// merchantSerialNumber returns the merchant's MSN, or a failure if it is not 4 to 6 digits (ePayment's MSN
// pattern ^[0-9]{4,6}$).
func merchantSerialNumber(in *abi.Input) (string, *abi.Output) {
	msn := in.Merchant.MerchantSerialNumber
	if len(msn) < 4 || len(msn) > 6 || !allDigits(msn) {
		return "", invalid("merchant.merchantSerialNumber", quote(clip(msn, 20))+" is not a Vipps merchant serial number (4 to 6 digits)")
	}
	return msn, nil
}

// currency returns the session's currency, or a failure if ePayment does not take it (NOK, DKK, EUR).
func currency(in *abi.Input) (string, *abi.Output) {
	switch c := in.Session.Currency; c {
	case "NOK", "DKK", "EUR":
		return c, nil
	default:
		return "", invalid("session.currency", quote(clip(c, 10))+" is not supported: Vipps ePayment takes NOK, DKK and EUR")
	}
}

func validReference(s string) bool {
	if len(s) < 8 || len(s) > 50 {
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

// describe returns prefix+text trimmed of surrounding white space and cut to max characters; it is empty
// if nothing is left.
func describe(prefix, text string, max int) string {
	s := text
	if prefix != "" {
		s = prefix + text
	}
	return strings.TrimSpace(cutRunes(strings.TrimSpace(s), max))
}

// cutRunes returns the first n characters of s (an invalid UTF-8 byte counts as one).
func cutRunes(s string, n int) string { return vipps.CutRunes(s, n) }

// clip cuts s to n characters for an error message, marking the cut with an ellipsis.
func clip(s string, n int) string { return vipps.Clip(s, n) }

// quote quotes s for an error message.
func quote(s string) string { return strconv.Quote(s) }

// itoa formats n in decimal.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
