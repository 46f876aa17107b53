package epayment

import (
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/sdk"
)

// Paths and limits of the ePayment API v1 (epayment-v1.yaml 1.4.1).
const (
	pathPayments      = "/epayment/v1/payments"
	pathForceApprove  = "/epayment/v1/test/payments"
	headerIdempotency = "Idempotency-Key"
	// minAmount is the smallest NOK amount Vipps accepts, in øre ("Amount too small", 6010).
	minAmount = 100
	// maxAmount is Amount.value's maximum.
	maxAmount = 65000000
	// Limits of paymentDescription, in characters.
	minDescription = 3
	maxDescription = 100
	// maxReturnURL bounds returnUrl (the spec sets no limit; kasse's own URLs are far shorter).
	maxReturnURL = 2048
)

// buildInitiate builds POST /epayment/v1/payments (CreatePaymentRequest). This is the hot path: the body is
// appended with sdk.JSON in a fixed key order, so that it is byte-for-byte deterministic and cheap in the
// guest.
func buildInitiate(in *abi.Input) *abi.Output {
	ref, bad := reference(in)
	if bad != nil {
		return bad
	}
	if _, bad := merchantSerialNumber(in); bad != nil {
		return bad
	}
	cur, bad := currency(in)
	if bad != nil {
		return bad
	}
	s, m := &in.Session, &in.Merchant
	switch {
	case m.Express != nil:
		return invalid("merchant.express", "Express Checkout is not available in the ePayment API (v1.4.1); keep Express merchants on vipps-ecom")
	case s.Amount < minAmount:
		return invalid("session.amount", itoa(s.Amount)+" is below the Vipps minimum of 100 øre")
	case s.Amount > maxAmount:
		return invalid("session.amount", itoa(s.Amount)+" is above the ePayment maximum of 65000000 øre")
	}
	flow, bad := userFlow(s)
	if bad != nil {
		return bad
	}
	if flow == FlowWebRedirect || flow == FlowNativeRedirect {
		switch {
		case m.FallBack == "":
			return invalid("merchant.fallBack", "empty ("+flow+" needs a returnUrl)")
		case len(m.FallBack) > maxReturnURL:
			return invalid("merchant.fallBack", "is longer than 2048 characters")
		}
	}
	text := paymentDescription(m.TransactionTextPrefix, s.Description, s.Reference, ref)

	var w sdk.JSON
	w.Obj().
		ObjField("amount").Str("currency", cur).Int("value", s.Amount).End().
		ObjField("paymentMethod").Str("type", "WALLET").End().
		Str("reference", ref).
		Str("userFlow", flow)
	switch flow {
	case FlowPushMessage:
		w.ObjField("customer").Str("phoneNumber", "47"+s.CustomerPhone).End()
	case FlowQR:
		w.ObjField("qrFormat").Str("format", qrFormatTargetURL).End()
	default:
		w.Str("returnUrl", m.FallBack)
	}
	w.Str("customerInteraction", "CUSTOMER_NOT_PRESENT").
		Str("paymentDescription", text).
		End()
	return okRequest(&abi.Request{Method: "POST", Path: pathPayments, Body: w.Bytes(), IdempotencyHeader: headerIdempotency})
}

// qrFormatTargetURL asks Vipps for the QR code's target URL instead of an image of it (qrFormat.format), so
// that redirectUrl is the URL the QR code encodes and the shop draws the code at the size it wants.
const qrFormatTargetURL = "TEXT/TARGETURL"

// userFlow chooses CreatePaymentRequest.userFlow from the session. A flow the checkout asked for
// (session.userFlow) is used as given: WEB_REDIRECT, NATIVE_REDIRECT (an app deeplink for a checkout in the
// merchant's own app), QR (the target of a QR code), or PUSH_MESSAGE, which needs the customer's phone.
// Without one it is PUSH_MESSAGE when the checkout names the customer's Norwegian mobile number (8 digits,
// sent as MSISDN 47xxxxxxxx), so the payment opens in the app without the landing page, and WEB_REDIRECT
// otherwise, the normal browser flow (landing page on a desktop, app switch on a phone).
func userFlow(s *abi.Session) (string, *abi.Output) {
	phone := len(s.CustomerPhone) == 8 && allDigits(s.CustomerPhone)
	switch s.UserFlow {
	case "":
		if phone {
			return FlowPushMessage, nil
		}
		return FlowWebRedirect, nil
	case FlowPushMessage:
		if !phone {
			return "", invalid("session.userFlow", "PUSH_MESSAGE needs the customer's 8-digit phone number (session.customerPhone)")
		}
		return FlowPushMessage, nil
	case FlowWebRedirect, FlowNativeRedirect, FlowQR:
		return s.UserFlow, nil
	}
	return "", invalid("session.userFlow", quote(clip(s.UserFlow, 30))+" is not WEB_REDIRECT, NATIVE_REDIRECT, PUSH_MESSAGE or QR")
}

// paymentDescription is the text the customer sees: the merchant's prefix and the checkout's description,
// else "Order <reference>", cut to 100 characters and padded to the spec's minimum of 3.
func paymentDescription(prefix, description, shopRef, ref string) string {
	text := describe(prefix, description, maxDescription)
	if text == "" {
		label := shopRef
		if describe("", label, maxDescription) == "" {
			label = ref
		}
		text = describe("Order ", label, maxDescription)
	}
	for len([]rune(text)) < minDescription {
		text += "."
	}
	return text
}

// buildModification builds POST /epayment/v1/payments/{reference}/capture or /refund with
// {"modificationAmount": {currency, value}}. The host always resolves the amount.
func buildModification(in *abi.Input, action string) *abi.Output {
	ref, bad := reference(in)
	if bad != nil {
		return bad
	}
	cur, bad := currency(in)
	if bad != nil {
		return bad
	}
	op := in.Operation
	switch {
	case op == nil:
		return invalid("operation", "missing ("+action+" needs an amount)")
	case op.Amount <= 0:
		return invalid("operation.amount", itoa(op.Amount)+" is not a positive amount in øre")
	case op.Amount > maxAmount:
		return invalid("operation.amount", itoa(op.Amount)+" is above the ePayment maximum of 65000000 øre")
	}
	var w sdk.JSON
	w.Obj().ObjField("modificationAmount").Str("currency", cur).Int("value", op.Amount).End().End()
	return okRequest(&abi.Request{Method: "POST", Path: pathPayments + "/" + ref + "/" + action, Body: w.Bytes(),
		IdempotencyHeader: headerIdempotency})
}

// buildCancel builds POST /epayment/v1/payments/{reference}/cancel, which has no body: an ePayment cancel
// always releases everything not captured.
func buildCancel(in *abi.Input) *abi.Output {
	ref, bad := reference(in)
	if bad != nil {
		return bad
	}
	return okRequest(&abi.Request{Method: "POST", Path: pathPayments + "/" + ref + "/cancel", IdempotencyHeader: headerIdempotency})
}

// buildGet builds GET /epayment/v1/payments/{reference} (suffix "") or its /events.
func buildGet(in *abi.Input, suffix string) *abi.Output {
	ref, bad := reference(in)
	if bad != nil {
		return bad
	}
	return okRequest(&abi.Request{Method: "GET", Path: pathPayments + "/" + ref + suffix})
}

// buildForceApprove builds the test environment's POST /epayment/v1/test/payments/{reference}/approve
// (ForceApprove), naming the customer by phone number when the session has one.
func buildForceApprove(in *abi.Input) *abi.Output {
	ref, bad := reference(in)
	if bad != nil {
		return bad
	}
	var w sdk.JSON
	w.Obj()
	if p := in.Session.CustomerPhone; len(p) == 8 && allDigits(p) {
		w.ObjField("customer").Str("phoneNumber", "47"+p).End()
	}
	w.End()
	return okRequest(&abi.Request{Method: "POST", Path: pathForceApprove + "/" + ref + "/approve", Body: w.Bytes()})
}
