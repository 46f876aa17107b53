package epayment

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/url"
	"strconv"
	"strings"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/internal/vipps"
)

// amount is ePayment's Amount {currency, value}.
type amount struct {
	Currency string      `json:"currency"`
	Value    json.Number `json:"value"`
}

// minor returns the value in minor units, or a problem naming field.
func (a *amount) minor(field, wantCurrency string) (int64, string) {
	if a == nil {
		return 0, field + " is missing"
	}
	if a.Currency != wantCurrency {
		return 0, field + ".currency is " + quote(clip(a.Currency, 10)) + ", not the session's " + quote(wantCurrency)
	}
	v, err := strconv.ParseInt(string(a.Value), 10, 64)
	if err != nil || v < 0 || v > maxAmount {
		return 0, field + ".value " + quote(clip(string(a.Value), 30)) + " is not an amount in minor units"
	}
	return v, ""
}

// aggregate is ePayment's Aggregate.
type aggregate struct {
	Authorized *amount `json:"authorizedAmount"`
	Cancelled  *amount `json:"cancelledAmount"`
	Captured   *amount `json:"capturedAmount"`
	Refunded   *amount `json:"refundedAmount"`
}

// paymentState is the part of GetPaymentResponse and ModificationResponse this package reads.
type paymentState struct {
	Aggregate    *aggregate `json:"aggregate"`
	Amount       *amount    `json:"amount"`
	State        string     `json:"state"`
	PspReference string     `json:"pspReference"`
	Reference    string     `json:"reference"`
}

// createResponse is ePayment's CreatePaymentResponse.
type createResponse struct {
	RedirectURL string `json:"redirectUrl"`
	Reference   string `json:"reference"`
}

// answer returns the body of a success (2xx) answer, or the output to return: invalid_input if the host
// sent no answer, provider_error for any other status.
func answer(in *abi.Input) ([]byte, *abi.Output) { return vipps.Answer(in, providerError) }

// unexpected reports a success answer that cannot be read as what answers op.
func unexpected(in *abi.Input, what, problem string) *abi.Output {
	return vipps.Unexpected(in, what, problem)
}

// decodeObject decodes body, which must be one JSON object, into v, keeping numbers exact.
func decodeObject(body []byte, v any) error {
	t := bytes.TrimLeft(body, " \t\r\n")
	if len(t) == 0 {
		return errors.New("empty body")
	}
	if t[0] != '{' {
		return errors.New("body is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return simplifyJSONError(err)
	}
	return nil
}

// simplifyJSONError keeps decode errors short and free of Go type names.
func simplifyJSONError(err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return errors.New("invalid JSON at byte " + strconv.FormatInt(syn.Offset, 10))
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		if typ.Field != "" {
			return errors.New(typ.Field + ": unexpected " + typ.Value)
		}
		return errors.New("unexpected " + typ.Value)
	}
	return errors.New("invalid JSON")
}

// readInitiate reads CreatePaymentResponse {redirectUrl, reference} (201): the payment is pending. The
// redirectUrl is required for WEB_REDIRECT and QR (an http(s) URL: the landing page, or the QR code's
// target) and for NATIVE_REDIRECT (a vipps:// or vippsMT:// app link, or an http(s) URL); PUSH_MESSAGE has
// none, and one sent anyway is ignored.
func readInitiate(in *abi.Input) *abi.Output {
	ref, bad := reference(in)
	if bad != nil {
		return bad
	}
	body, out := answer(in)
	if out != nil {
		return out
	}
	var r createResponse
	if err := decodeFast(body, &r, readCreateResponse); err != nil {
		return unexpected(in, "create payment", err.Error())
	}
	if r.Reference != ref {
		return unexpected(in, "create payment", "reference "+quote(clip(r.Reference, 60))+" is not this payment's "+quote(ref))
	}
	flow, bad := userFlow(&in.Session)
	if bad != nil {
		return bad
	}
	p := unknownAmounts("pending")
	p.ProviderReference = ref
	if flow == FlowPushMessage {
		// The push message opens the payment in the app; there is nowhere to send the customer.
		return okPayment(p)
	}
	switch {
	case r.RedirectURL == "":
		return unexpected(in, "create payment", "redirectUrl is missing (userFlow "+flow+")")
	case len(r.RedirectURL) > vipps.MaxRedirectURL:
		return unexpected(in, "create payment", "redirectUrl is longer than 4096 characters")
	case flow == FlowNativeRedirect && !httpURL(r.RedirectURL) && !vipps.AppLink(r.RedirectURL):
		return unexpected(in, "create payment", "redirectUrl "+quote(clip(r.RedirectURL, 60))+" is neither a vipps:// app link nor an http(s) URL")
	case flow != FlowNativeRedirect && !httpURL(r.RedirectURL):
		return unexpected(in, "create payment", "redirectUrl "+quote(clip(r.RedirectURL, 60))+" is not an http(s) URL")
	}
	p.RedirectURL = r.RedirectURL
	return okPayment(p)
}

// httpURL reports whether u is an absolute http(s) URL with a host and without white space or control
// characters, so that the host can send a browser to it.
func httpURL(u string) bool {
	rest, ok := vipps.HTTPScheme(u)
	if !ok || rest == "" || rest[0] == '/' || rest[0] == '?' || rest[0] == '#' || rest[0] == '@' {
		return false
	}
	host, _, _ := strings.Cut(rest, "/")
	if strings.Contains(host, "@") {
		return false
	}
	for i := 0; i < len(u); i++ {
		if u[i] <= ' ' || u[i] == 0x7f {
			return false
		}
	}
	// The host checks redirectUrl as a URI (RFC 3986): percent escapes and the authority must parse.
	p, err := url.Parse(u)
	return err == nil && p.Host != "" && p.User == nil
}

// readDetails reads GetPaymentResponse.
func readDetails(in *abi.Input) *abi.Output { return readState(in, "get payment") }

// readModification reads the ModificationResponse of a capture, refund or cancel.
func readModification(in *abi.Input, action string) *abi.Output { return readState(in, action) }

// readState reads a GetPaymentResponse or ModificationResponse and maps state and aggregate.
func readState(in *abi.Input, what string) *abi.Output {
	ref, bad := reference(in)
	if bad != nil {
		return bad
	}
	cur, bad := currency(in)
	if bad != nil {
		return bad
	}
	body, out := answer(in)
	if out != nil {
		return out
	}
	var r paymentState
	if err := decodeFast(body, &r, readPaymentState); err != nil {
		return unexpected(in, what, err.Error())
	}
	if r.Reference != ref {
		return unexpected(in, what, "reference "+quote(clip(r.Reference, 60))+" is not this payment's "+quote(ref))
	}
	if r.Aggregate == nil {
		return unexpected(in, what, "aggregate is missing")
	}
	var p abi.Payment
	if problem := fromState(&p, r.State, r.Aggregate, cur); problem != "" {
		return unexpected(in, what, problem)
	}
	p.ProviderReference = ref
	return okPayment(&p)
}

// fromState maps an ePayment state and its aggregate amounts onto a canonical payment in p, or returns a
// problem. (It fills the caller's payment, which okPayment copies, so that it costs no allocation.)
func fromState(p *abi.Payment, state string, agg *aggregate, cur string) string {
	var v [4]int64
	for i, f := range []struct {
		name string
		a    *amount
	}{
		{"aggregate.authorizedAmount", agg.Authorized}, {"aggregate.capturedAmount", agg.Captured},
		{"aggregate.refundedAmount", agg.Refunded}, {"aggregate.cancelledAmount", agg.Cancelled},
	} {
		n, problem := f.a.minor(f.name, cur)
		if problem != "" {
			return problem
		}
		v[i] = n
	}
	authorized, captured, refunded, cancelled := v[0], v[1], v[2], v[3]
	if captured > math.MaxInt64-cancelled || captured+cancelled > authorized && state == "AUTHORIZED" {
		return "aggregate: captured and cancelled amounts exceed the authorized amount"
	}
	if refunded > captured {
		return "aggregate: refunded amount exceeds the captured amount"
	}
	*p = abi.Payment{AuthorizedAmount: authorized, CapturedAmount: captured, RefundedAmount: refunded, CancelledAmount: cancelled}
	switch state {
	case "CREATED":
		p.State = "pending"
	case "AUTHORIZED":
		switch {
		case captured > 0 && refunded >= captured && (cancelled > 0 || captured >= authorized):
			p.State = "refunded"
		case captured > 0:
			p.State = "captured"
		case cancelled > 0:
			p.State = "cancelled"
		default:
			p.State = "authorized"
		}
	case "ABORTED":
		p.State, p.Reason = "rejected", "the customer cancelled the payment in Vipps"
	case "EXPIRED":
		p.State, p.Reason = "expired", "the customer did not act on the payment in time"
	case "TERMINATED":
		// Cancelled by the merchant before the customer approved: nothing was reserved, so nothing is
		// released (Vipps reports the whole amount as cancelledAmount).
		p.State = "cancelled"
		if authorized == 0 {
			p.CancelledAmount = 0
		}
	default:
		return "state " + quote(clip(state, 30)) + " is not an ePayment state"
	}
	return ""
}

// event is ePayment's PaymentEvent and the webhook's WebhookEvent (which adds msn).
type event struct {
	MSN            json.RawMessage `json:"msn"`
	Reference      string          `json:"reference"`
	PspReference   string          `json:"pspReference"`
	Name           string          `json:"name"`
	Amount         *amount         `json:"amount"`
	Timestamp      string          `json:"timestamp"`
	IdempotencyKey *string         `json:"idempotencyKey"`
	Success        *bool           `json:"success"`
}

// readEvents reads the event log (PaymentEvent[]): successful events are folded into one payment, with
// captured, refunded and cancelled amounts summed, which the log (unlike a single webhook) allows.
func readEvents(in *abi.Input) *abi.Output {
	ref, bad := reference(in)
	if bad != nil {
		return bad
	}
	cur, bad := currency(in)
	if bad != nil {
		return bad
	}
	body, out := answer(in)
	if out != nil {
		return out
	}
	t := bytes.TrimSpace(body)
	if len(t) == 0 || t[0] != '[' {
		return unexpected(in, "event log", "body is not a JSON array")
	}
	var list []event
	dec := json.NewDecoder(bytes.NewReader(t))
	dec.UseNumber()
	if err := dec.Decode(&list); err != nil {
		return unexpected(in, "event log", simplifyJSONError(err).Error())
	}
	var authorized, captured, refunded, cancelled int64
	var aborted, expired, terminated bool
	for i, e := range list {
		at := "[" + strconv.Itoa(i) + "]"
		if e.Reference != ref {
			return unexpected(in, "event log", at+".reference "+quote(clip(e.Reference, 60))+" is not this payment's")
		}
		if e.Success == nil || !*e.Success {
			continue
		}
		v, problem := e.Amount.minor(at+".amount", cur)
		if problem != "" {
			return unexpected(in, "event log", problem)
		}
		switch e.Name {
		case "AUTHORIZED":
			authorized = max(authorized, v)
		case "CAPTURED":
			captured += v
		case "REFUNDED":
			refunded += v
		case "CANCELLED":
			cancelled += v
		case "ABORTED":
			aborted = true
		case "EXPIRED":
			expired = true
		case "TERMINATED":
			terminated = true
		case "CREATED":
		default:
			return unexpected(in, "event log", at+".name "+quote(clip(e.Name, 30))+" is not an ePayment event")
		}
		if captured > maxAmount || refunded > maxAmount || cancelled > maxAmount {
			return unexpected(in, "event log", "amounts exceed the ePayment maximum")
		}
	}
	state := "CREATED"
	switch {
	case authorized > 0:
		state = "AUTHORIZED"
	case terminated:
		state = "TERMINATED"
	case aborted:
		state = "ABORTED"
	case expired:
		state = "EXPIRED"
	}
	mk := func(v int64) *amount { return &amount{Currency: cur, Value: json.Number(itoa(v))} }
	var p abi.Payment
	if problem := fromState(&p, state, &aggregate{mk(authorized), mk(cancelled), mk(captured), mk(refunded)}, cur); problem != "" {
		return unexpected(in, "event log", problem)
	}
	p.ProviderReference = ref
	return okPayment(&p)
}
