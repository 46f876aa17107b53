package ecom

import (
	"strings"

	"github.com/kassehq/kasse/plugin/abi"
)

// callback is the body Vipps posts to [callbackPrefix]/v2/payments/{orderId}: ms_import.yaml's
// RegularCheckOutPaymentRequest or ExpressCheckOutPaymentRequest, whose shippingDetails and userDetails
// become the payment's contact and shipping. merchantSerialNumber and amount are decoded tolerantly
// (vipps-reference.md §9.2).
type callback struct {
	MerchantSerialNumber flexString `json:"merchantSerialNumber"`
	OrderID              flexString `json:"orderId"`
	TransactionInfo      *struct {
		Amount        flexInt    `json:"amount"`
		Status        string     `json:"status"`
		TimeStamp     string     `json:"timeStamp"`
		TransactionID flexString `json:"transactionId"`
	} `json:"transactionInfo"`
	ErrorInfo *vippsError `json:"errorInfo"`
	expressDetails
}

// errorCodeNotActed is errorInfo.errorCode on a REJECTED callback when the customer did nothing before the
// payment timed out ("User has not acted upon the payment").
const errorCodeNotActed = "45"

// readCallback reads a transaction update callback. It fails closed: a callback for another orderId or
// merchant serial number, or (for an approval) for another amount than the session's, is a
// callback_mismatch and changes nothing.
//
// Status mapping (vipps-reference.md §4.1): RESERVED (regular) and RESERVE (express) -> authorized;
// SALE (direct capture) -> captured; CANCELLED (the customer cancelled in the app) -> rejected; REJECTED ->
// expired when errorCode is 45 (the customer did not act), else rejected; RESERVE_FAILED and SALE_FAILED ->
// failed; AUTO_CANCEL (old spec versions) -> expired.
func readCallback(in *abi.Input) *abi.Output {
	id, bad := orderID(in)
	if bad != nil {
		return bad
	}
	msn, bad := merchantSerialNumber(in)
	if bad != nil {
		return bad
	}
	if len(in.Callback) == 0 {
		return invalid("callback", "missing (read_callback reads the body Vipps posted)")
	}
	var c callback
	if err := decodeFast(in.Callback, &c, readCallbackBody); err != nil {
		return fail(CodeUnexpectedResponse, "Vipps callback: "+err.Error())
	}
	if string(c.OrderID) != id {
		return fail(CodeCallbackMismatch, "Vipps callback is for orderId "+quote(clip(string(c.OrderID), 60))+", not this session's "+quote(id))
	}
	if got := strings.TrimSpace(string(c.MerchantSerialNumber)); got != msn {
		return fail(CodeCallbackMismatch, "Vipps callback is for merchantSerialNumber "+quote(clip(got, 20))+", not this merchant's "+quote(msn))
	}
	ti := c.TransactionInfo
	if ti == nil {
		return fail(CodeUnexpectedResponse, "Vipps callback: transactionInfo is missing")
	}
	var reason, errorCode string
	if c.ErrorInfo != nil {
		reason = cleanText(string(c.ErrorInfo.ErrorMessage))
		errorCode = strings.TrimSpace(string(c.ErrorInfo.ErrorCode))
	}
	orDefault := func(s, def string) string {
		if s == "" {
			return def
		}
		return s
	}

	switch ti.Status {
	case "RESERVED", "RESERVE", "SALE":
		amount, ok := ti.Amount.amount()
		if !ti.Amount.Set {
			return fail(CodeCallbackMismatch, "Vipps callback approves no amount; this session's is "+itoa(in.Session.Amount)+" øre")
		}
		contact, shipping := c.contactAndShipping()
		// Express: Vipps adds the chosen shipping cost to the amount; an amount without it is accepted too
		// (the spec's own example shows one).
		withShipping := in.Session.Amount
		if shipping != nil {
			withShipping += shipping.Cost
		}
		if !ok || (amount != in.Session.Amount && amount != withShipping) {
			return fail(CodeCallbackMismatch, "Vipps callback approves amount "+quote(clip(ti.Amount.Raw, 30))+
				", not this session's "+itoa(in.Session.Amount)+" øre")
		}
		p := unknownAmounts("authorized")
		p.AuthorizedAmount = amount
		p.Contact, p.Shipping = contact, shipping
		if ti.Status == "SALE" {
			p.State, p.CapturedAmount = "captured", amount
		}
		return okPayment(p)
	case "CANCELLED":
		p := unknownAmounts("rejected")
		p.Reason = orDefault(reason, "the customer cancelled the payment in Vipps")
		return okPayment(p)
	case "REJECTED":
		if errorCode == errorCodeNotActed {
			p := unknownAmounts("expired")
			p.Reason = orDefault(reason, "the customer did not act on the payment in time")
			return okPayment(p)
		}
		p := unknownAmounts("rejected")
		p.Reason = orDefault(reason, "Vipps rejected the payment")
		return okPayment(p)
	case "RESERVE_FAILED", "SALE_FAILED":
		p := unknownAmounts("failed")
		p.Reason = orDefault(reason, "Vipps could not reserve the amount")
		return okPayment(p)
	case "AUTO_CANCEL":
		p := unknownAmounts("expired")
		p.Reason = orDefault(reason, "Vipps cancelled the payment automatically")
		return okPayment(p)
	}
	return fail(CodeUnexpectedResponse, "Vipps callback: transactionInfo.status "+quote(clip(ti.Status, 30))+" is not a callback status")
}
