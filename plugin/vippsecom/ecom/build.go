package ecom

import (
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/sdk"
)

// Paths and values of the eCom API v2 (ecom-v2.swagger.yaml).
const (
	pathPayments       = "/ecomm/v2/payments"
	headerXRequestID   = "X-Request-Id"
	paymentTypeRegular = "eComm Regular Payment"
	// maxURL is the maxLength of callbackPrefix and fallBack.
	maxURL = 255
	// minAmount is the smallest amount Vipps accepts, in øre (1 NOK).
	minAmount = 100
)

// initiateScratch is buildInitiate's reusable body writer and output.
var initiateScratch struct {
	w   sdk.JSON
	out abi.Output
	req abi.Request
	inj [1]abi.Injection
}

// buildInitiate builds POST /ecomm/v2/payments (InitiatePaymentCommand). This is the hot path: the body is
// appended with sdk.JSON, in a fixed key order, so that it is byte-for-byte deterministic and cheap in the
// guest (no encoding/json, no maps).
func buildInitiate(in *abi.Input) *abi.Output {
	id, bad := orderID(in)
	if bad != nil {
		return bad
	}
	msn, bad := merchantSerialNumber(in)
	if bad != nil {
		return bad
	}
	s, m := &in.Session, &in.Merchant
	switch {
	case s.Amount < minAmount:
		return invalid("session.amount", itoa(s.Amount)+" is below the Vipps minimum of 100 øre")
	case s.Currency != "NOK":
		return invalid("session.currency", quote(clip(s.Currency, 10))+" is not supported: Vipps eCom takes NOK only")
	case m.CallbackPrefix == "":
		return invalid("merchant.callbackPrefix", "empty")
	case len(m.CallbackPrefix) > maxURL:
		return invalid("merchant.callbackPrefix", "is longer than 255 characters")
	case m.FallBack == "":
		return invalid("merchant.fallBack", "empty")
	case len(m.FallBack) > maxURL:
		return invalid("merchant.fallBack", "is longer than 255 characters")
	}
	isApp, bad := appFlow(s)
	if bad != nil {
		return bad
	}
	text := transactionText(m.TransactionTextPrefix, s.Description)
	if text == "" {
		text = transactionText("Order ", orderLabel(s.Reference, id))
	}

	// The writer and the output are reused from call to call (an instance serves one call at a time, and
	// the output only has to live until the SDK has encoded it), so the hot path allocates nothing.
	w := initiateScratch.w.Reset()
	w.Obj().ObjField("customerInfo")
	if len(s.CustomerPhone) == 8 && allDigits(s.CustomerPhone) {
		w.Str("mobileNumber", s.CustomerPhone)
	}
	w.End().
		ObjField("merchantInfo").
		Str("merchantSerialNumber", msn).
		Str("callbackPrefix", m.CallbackPrefix).
		Str("fallBack", m.FallBack).
		Bool("isApp", isApp)
	if m.Express == nil {
		w.Str("paymentType", paymentTypeRegular)
	} else if bad := appendExpress(w, in); bad != nil {
		return bad
	}
	w.End().
		ObjField("transaction").
		Str("orderId", id).
		Int("amount", s.Amount).
		Str("transactionText", text).
		End().
		End()

	// One allocation for the output, its request and its injection: allocations are what costs most in the
	// guest. The injection asks the host to write the session's callback token as merchantInfo.authToken,
	// which Vipps echoes as the Authorization header of its callbacks.
	res := &initiateScratch
	res.req = abi.Request{Method: "POST", Path: pathPayments, Body: w.Bytes()}
	res.inj = [1]abi.Injection{{Pointer: "/merchantInfo/authToken", Value: abi.InjectCallbackToken}}
	res.req.Inject = res.inj[:]
	res.out = abi.Output{OK: true, Request: &res.req}
	return &res.out
}

// appFlow maps the checkout's userFlow (session.userFlow, named as in the ePayment API) onto eCom, as the
// migration guide maps the two the other way (vipps-reference.md §7): WEB_REDIRECT, or none, is isApp false
// (the landing page, or an app switch on a phone); NATIVE_REDIRECT is isApp true (Vipps answers with a
// vipps:// app link for the merchant's app). PUSH_MESSAGE would be skipLandingPage, which Vipps allows only
// for whitelisted sales units, and eCom has no QR flow: both are refused with invalid_input.
func appFlow(s *abi.Session) (bool, *abi.Output) {
	switch s.UserFlow {
	case "", "WEB_REDIRECT":
		return false, nil
	case "NATIVE_REDIRECT":
		return true, nil
	case "PUSH_MESSAGE":
		return false, invalid("session.userFlow", "PUSH_MESSAGE is eCom's skipLandingPage, which Vipps allows only for whitelisted sales units and kasse does not send; use the vipps-epayment plugin, or leave userFlow unset")
	case "QR":
		return false, invalid("session.userFlow", "QR is not available in the eCom API (it is new in ePayment); use the vipps-epayment plugin")
	}
	return false, invalid("session.userFlow", quote(clip(s.UserFlow, 30))+" is not WEB_REDIRECT, NATIVE_REDIRECT, PUSH_MESSAGE or QR")
}

// buildCapture builds POST /ecomm/v2/payments/{orderId}/capture (PaymentActionsRequest).
func buildCapture(in *abi.Input) *abi.Output { return buildAction(in, "capture") }

// buildRefund builds POST /ecomm/v2/payments/{orderId}/refund (PaymentActionsRequest).
func buildRefund(in *abi.Input) *abi.Output { return buildAction(in, "refund") }

// buildAction builds a capture or refund: the host always resolves the amount, so it is always sent, and the
// host sends the operation's idempotency key as X-Request-Id (required for partial operations).
func buildAction(in *abi.Input, action string) *abi.Output {
	id, bad := orderID(in)
	if bad != nil {
		return bad
	}
	msn, bad := merchantSerialNumber(in)
	if bad != nil {
		return bad
	}
	op := in.Operation
	if op == nil {
		return invalid("operation", "missing ("+action+" needs an amount)")
	}
	if op.Amount <= 0 {
		return invalid("operation.amount", itoa(op.Amount)+" is not a positive amount in øre")
	}
	text := transactionText("", op.Text)
	if text == "" && action == "capture" {
		text = transactionText("Order ", orderLabel(in.Session.Reference, id)+" shipped")
	} else if text == "" {
		text = transactionText("Refund for order ", orderLabel(in.Session.Reference, id))
	}

	var w sdk.JSON
	w.Obj().
		ObjField("merchantInfo").Str("merchantSerialNumber", msn).End().
		ObjField("transaction").Int("amount", op.Amount).Str("transactionText", text).End().
		End()

	return okRequest(&abi.Request{Method: "POST", Path: pathPayments + "/" + id + "/" + action, Body: w.Bytes(),
		IdempotencyHeader: headerXRequestID})
}

// buildCancel builds PUT /ecomm/v2/payments/{orderId}/cancel (CancelPaymentActionRequest). After a partial
// capture Vipps refuses the cancel unless shouldReleaseRemainingFunds is true, so it is set exactly then.
func buildCancel(in *abi.Input) *abi.Output {
	id, bad := orderID(in)
	if bad != nil {
		return bad
	}
	msn, bad := merchantSerialNumber(in)
	if bad != nil {
		return bad
	}
	var opText string
	if in.Operation != nil {
		opText = in.Operation.Text
	}
	text := transactionText("", opText)
	if text == "" {
		text = transactionText("Order ", orderLabel(in.Session.Reference, id)+" cancelled")
	}

	var w sdk.JSON
	w.Obj().
		ObjField("merchantInfo").Str("merchantSerialNumber", msn).End().
		ObjField("transaction").Str("transactionText", text).End().
		Bool("shouldReleaseRemainingFunds", in.Session.CapturedAmount > 0).
		End()

	return okRequest(&abi.Request{Method: "PUT", Path: pathPayments + "/" + id + "/cancel", Body: w.Bytes()})
}

// buildDetails builds GET /ecomm/v2/payments/{orderId}/details.
func buildDetails(in *abi.Input) *abi.Output {
	id, bad := orderID(in)
	if bad != nil {
		return bad
	}
	return okRequest(&abi.Request{Method: "GET", Path: pathPayments + "/" + id + "/details"})
}
