package ecom

import (
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/internal/vipps"
)

// answer returns the body of a success (2xx) answer, or the output to return: invalid_input if the host
// sent no answer, provider_error for any other status.
func answer(in *abi.Input) ([]byte, *abi.Output) { return vipps.Answer(in, providerError) }

// unexpected reports a success answer that cannot be read as what answers op.
func unexpected(in *abi.Input, what, problem string) *abi.Output {
	return vipps.Unexpected(in, what, problem)
}

// checkOrderID compares the orderId of an answer with the one the request was for.
func checkOrderID(got flexString, want string) string {
	if string(got) != want {
		return "orderId " + quote(clip(string(got), 60)) + " is not this payment's " + quote(want)
	}
	return ""
}

// readInitiate reads PaymentInitiationResponse {orderId, url}: the payment is pending and the customer is
// sent to url.
func readInitiate(in *abi.Input) *abi.Output {
	id, bad := orderID(in)
	if bad != nil {
		return bad
	}
	body, out := answer(in)
	if out != nil {
		return out
	}
	var r initiateResponse
	if err := decodeFast(body, &r, readInitiateBody); err != nil {
		return unexpected(in, "initiate", err.Error())
	}
	if p := checkOrderID(r.OrderID, id); p != "" {
		return unexpected(in, "initiate", p)
	}
	if r.URL == "" {
		return unexpected(in, "initiate", "url is missing")
	}
	switch {
	case len(r.URL) > vipps.MaxRedirectURL:
		return unexpected(in, "initiate", "url is longer than 4096 characters")
	case in.Session.UserFlow == "NATIVE_REDIRECT" && !redirectURL(r.URL) && !vipps.AppLink(r.URL):
		return unexpected(in, "initiate", "url "+quote(clip(r.URL, 60))+" is neither a vipps:// app link nor an http(s) URL")
	case in.Session.UserFlow != "NATIVE_REDIRECT" && !redirectURL(r.URL):
		return unexpected(in, "initiate", "url "+quote(clip(r.URL, 60))+" is not an http(s) URL")
	}
	p := unknownAmounts("pending")
	p.ProviderReference, p.RedirectURL = id, r.URL
	return okPayment(p)
}

// redirectURL reports whether u is an absolute http(s) URL without white space or control characters, so
// that the host can send a browser to it. (Deeplinks come back only for isApp true, see vipps.AppLink.)
func redirectURL(u string) bool {
	rest, ok := vipps.HTTPScheme(u)
	if !ok || rest == "" || rest[0] == '/' {
		return false
	}
	for i := 0; i < len(u); i++ {
		if u[i] <= ' ' || u[i] == 0x7f {
			return false
		}
	}
	return true
}

// readAction decodes the answer to a capture, cancel or refund and checks its orderId and its transaction
// status against wantStatus. Refund answers carry the status under "transaction" (RefundTransactionResponse,
// vipps-reference.md §9.7), the others under "transactionInfo"; for a refund either key is accepted.
func readAction(in *abi.Input, what, wantStatus string) (*actionResponse, *abi.Output) {
	id, bad := orderID(in)
	if bad != nil {
		return nil, bad
	}
	body, out := answer(in)
	if out != nil {
		return nil, out
	}
	var r actionResponse
	if err := decodeFast(body, &r, readActionBody); err != nil {
		return nil, unexpected(in, what, err.Error())
	}
	if p := checkOrderID(r.OrderID, id); p != "" {
		return nil, unexpected(in, what, p)
	}
	key, info := "transactionInfo", r.TransactionInfo
	if wantStatus == "Refund" {
		// RefundTransactionResponse says "transaction"; accept the key the other answers use as well.
		key = "transaction"
		if r.Transaction != nil {
			info = r.Transaction
		}
	}
	if info == nil {
		return nil, unexpected(in, what, key+" is missing")
	}
	if info.Status != wantStatus {
		return nil, unexpected(in, what, key+".status is "+quote(clip(info.Status, 30))+", want "+quote(wantStatus))
	}
	return &r, nil
}

// readCapture reads TransactionResponse (status "Captured"): captured and refunded totals come from
// transactionSummary.
func readCapture(in *abi.Input) *abi.Output {
	r, out := readAction(in, "capture", "Captured")
	if out != nil {
		return out
	}
	if r.TransactionSummary == nil {
		return unexpected(in, "capture", "transactionSummary is missing")
	}
	captured, refunded, problem := r.TransactionSummary.amounts()
	if problem != "" {
		return unexpected(in, "capture", problem)
	}
	p := unknownAmounts("captured")
	p.CapturedAmount, p.RefundedAmount = captured, refunded
	return okPayment(p)
}

// readRefund reads RefundTransactionResponse (status "Refund"). The state stays captured: the host derives
// refunded once everything captured is refunded.
func readRefund(in *abi.Input) *abi.Output {
	r, out := readAction(in, "refund", "Refund")
	if out != nil {
		return out
	}
	if r.TransactionSummary == nil {
		return unexpected(in, "refund", "transactionSummary is missing")
	}
	captured, refunded, problem := r.TransactionSummary.amounts()
	if problem != "" {
		return unexpected(in, "refund", problem)
	}
	p := unknownAmounts("captured")
	p.CapturedAmount, p.RefundedAmount = captured, refunded
	return okPayment(p)
}

// readCancel reads CancelTransactionResponse (status "Cancelled"). A cancel releases everything not
// captured, so the cancelled amount is what the session had authorized minus what is captured (nothing for
// a payment the customer never approved).
func readCancel(in *abi.Input) *abi.Output {
	r, out := readAction(in, "cancel", "Cancelled")
	if out != nil {
		return out
	}
	p := unknownAmounts("cancelled")
	captured := in.Session.CapturedAmount
	if r.TransactionSummary != nil {
		c, refunded, problem := r.TransactionSummary.amounts()
		if problem != "" {
			return unexpected(in, "cancel", problem)
		}
		captured, p.CapturedAmount, p.RefundedAmount = c, c, refunded
	}
	p.CancelledAmount = 0
	if in.Session.State != "pending" && in.Session.AuthorizedAmount > captured {
		p.CancelledAmount = in.Session.AuthorizedAmount - captured
	}
	return okPayment(p)
}
