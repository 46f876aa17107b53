package epayment

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/sdk"
)

// readCallback reads one webhook event (WebhookEvent) that the host has already authenticated. It fails
// closed: an event for another reference, merchant serial number or currency, or an AUTHORIZED event for
// another amount than the session's, is a callback_mismatch and changes nothing.
//
// Mapping (vipps-reference.md §5.4, §6.2): CREATED -> pending; AUTHORIZED -> authorized for the amount;
// ABORTED -> rejected; EXPIRED -> expired; TERMINATED -> cancelled; CAPTURED -> captured, at least the
// event's amount; REFUNDED -> at least the event's amount refunded (and so captured); CANCELLED -> cancelled,
// at least the event's amount released. An event with success false (a failed operation) changes nothing.
func readCallback(in *abi.Input) *abi.Output {
	ref, bad := reference(in)
	if bad != nil {
		return bad
	}
	msn, bad := merchantSerialNumber(in)
	if bad != nil {
		return bad
	}
	cur, bad := currency(in)
	if bad != nil {
		return bad
	}
	if len(in.Callback) == 0 {
		return invalid("callback", "missing (read_callback reads the webhook event Vipps posted)")
	}
	var e event
	if err := decodeFast(in.Callback, &e, readEvent); err != nil {
		return fail(CodeUnexpectedResponse, "Vipps webhook event: "+err.Error())
	}
	if e.Reference != ref {
		return fail(CodeCallbackMismatch, "Vipps webhook event is for reference "+quote(clip(e.Reference, 60))+", not this session's "+quote(ref))
	}
	if got := eventMSN(e.MSN); got != msn {
		return fail(CodeCallbackMismatch, "Vipps webhook event is for msn "+quote(clip(got, 20))+", not this merchant's "+quote(msn))
	}
	if e.Success == nil {
		return fail(CodeUnexpectedResponse, "Vipps webhook event: success is missing")
	}
	v, problem := e.Amount.minor("amount", cur)
	if problem != "" {
		if e.Amount != nil && e.Amount.Currency != cur {
			return fail(CodeCallbackMismatch, "Vipps webhook event: "+problem)
		}
		return fail(CodeUnexpectedResponse, "Vipps webhook event: "+problem)
	}
	if !*e.Success {
		// A failed operation moves no money: report the session as it is.
		p := unknownAmounts(in.Session.State)
		return okPayment(p)
	}
	p := unknownAmounts("")
	switch e.Name {
	case "CREATED":
		p.State = "pending"
	case "AUTHORIZED":
		if v != in.Session.Amount {
			return fail(CodeCallbackMismatch, "Vipps webhook event authorizes "+itoa(v)+" øre, not this session's "+itoa(in.Session.Amount)+" øre")
		}
		p.State, p.AuthorizedAmount = "authorized", v
	case "ABORTED":
		p.State, p.Reason = "rejected", "the customer cancelled the payment in Vipps"
	case "EXPIRED":
		p.State, p.Reason = "expired", "the customer did not act on the payment in time"
	case "TERMINATED":
		p.State, p.CancelledAmount = "cancelled", 0
	case "CAPTURED":
		p.State, p.CapturedAmount = "captured", v
	case "REFUNDED":
		// A refund never exceeds what was captured.
		p.State, p.CapturedAmount, p.RefundedAmount = "captured", v, v
	case "CANCELLED":
		p.State, p.CancelledAmount = "cancelled", v
	default:
		return fail(CodeUnexpectedResponse, "Vipps webhook event: name "+quote(clip(e.Name, 30))+" is not an ePayment event")
	}
	return okPayment(p)
}

// eventMSN returns the event's msn, which the spec gives as a string but which is read as a number too
// (vipps-reference.md §9.2 shows Vipps sending MSNs both ways).
func eventMSN(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return ""
	}
	if t[0] == '"' {
		// sdk.Scanner decodes a string as json.Unmarshal does, without its reflection (several µs in
		// the guest for this one value).
		var sc sdk.Scanner
		sc.Reset(t)
		s, err := sc.String()
		if err != nil || sc.End() != nil {
			return ""
		}
		return strings.TrimSpace(s)
	}
	return string(t)
}
