package vippssim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// The ePayment API v1 (epayment-v1.yaml 1.4.1) on the same simulator: create, get, event log, capture,
// refund, cancel and the test-only force approve, with Idempotency-Key on every state-changing call and
// RFC 7807 problems for errors. Payments live beside the eCom ones; a reference taken by either API is
// taken for both. Every event is also delivered to the merchant's webhooks (see webhooks.go).
//
// Choices where Vipps documents nothing:
//
//   - WEB_REDIRECT answers with a landing page (the same form as eCom's: phone number, then confirm or
//     reject) that sends the browser to returnUrl; NATIVE_REDIRECT with vippsMT://?token=... (the test
//     app's scheme; the spec's example is vipps://); QR with qrFormat TEXT/TARGETURL with the QR code's
//     target, which in the simulator is the landing page (opening it stands for scanning the code with the
//     app; without a returnUrl it ends on a "done" page), and with an image format (IMAGE/SVG+XML, the
//     default, or IMAGE/PNG) with an https link to the image under /qr/v1/ (not served); PUSH_MESSAGE with
//     no redirectUrl, and the "app" is [Server.ApproveEPayment] and friends.
//   - A payment whose user never acts expires after PaymentTTL (state EXPIRED, event EXPIRED).
//   - Cancel before authorization is TERMINATED with cancelledAmount = the amount (vipps-reference.md §5.4);
//     after it, cancelledAmount = what was not captured, and the state stays AUTHORIZED.
//   - Only NOK is accepted (DKK and EUR are refused as "Currency not supported"), and customer phone
//     numbers must be Norwegian (47 and 8 digits).

// ePayment states (State) and event names (PaymentEventName).
const (
	epCreated    = "CREATED"
	epAuthorized = "AUTHORIZED"
	epAborted    = "ABORTED"
	epExpired    = "EXPIRED"
	epTerminated = "TERMINATED"
	evCancelled  = "CANCELLED"
	evCaptured   = "CAPTURED"
	evRefunded   = "REFUNDED"
)

const epLandingPath = "/epayment-landing/v1"

var (
	referencePattern = regexp.MustCompile(`^[a-zA-Z0-9-]{8,50}$`)
	msisdnPattern    = regexp.MustCompile(`^\d{10,15}$`)
	rfc3339Pattern   = regexp.MustCompile(`^((?:(\d{4}-\d{2}-\d{2})(T|t)(\d{2}:\d{2}:\d{2}(?:\.\d+)?))(Z|z|([+-](?:2[0-3]|[01][0-9]):[0-5][0-9])))$`)
)

// EPaymentEvent is one entry of an ePayment payment's event log.
type EPaymentEvent struct {
	Name           string    `json:"name"`
	Amount         int64     `json:"amount"`
	IdempotencyKey string    `json:"idempotencyKey,omitempty"`
	PspReference   string    `json:"pspReference"`
	Success        bool      `json:"success"`
	Time           time.Time `json:"timestamp"`
}

// EPaymentSnapshot is a copy of an ePayment payment's state, for test assertions.
type EPaymentSnapshot struct {
	MerchantSerialNumber string `json:"merchantSerialNumber"`
	Reference            string `json:"reference"`
	// State is CREATED, AUTHORIZED, ABORTED, EXPIRED or TERMINATED.
	State     string `json:"state"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	UserFlow  string `json:"userFlow"`
	ReturnURL string `json:"returnUrl,omitempty"`
	// Phone is customer.phoneNumber (MSISDN), or the number given on the landing page.
	Phone       string `json:"phone,omitempty"`
	Description string `json:"paymentDescription,omitempty"`
	RedirectURL string `json:"redirectUrl,omitempty"`
	// Aggregate amounts, in minor units.
	Authorized int64           `json:"authorizedAmount"`
	Captured   int64           `json:"capturedAmount"`
	Refunded   int64           `json:"refundedAmount"`
	Cancelled  int64           `json:"cancelledAmount"`
	Events     []EPaymentEvent `json:"events"`
}

type epPayment struct {
	key         paymentKey
	amount      int64
	currency    string
	flow        string
	returnURL   string
	phone       string
	description string
	psp         string
	token       string
	redirectURL string
	created     time.Time
	expires     time.Time

	state                                     string
	authorized, captured, refunded, cancelled int64
	events                                    []EPaymentEvent
	idem                                      map[string]idemRecord // "capture:<key>" etc.
	// ecom is the eCom payment this is a shadow of (epayment_ecom.go), nil for ePayment-created ones.
	ecom *payment
}

func (p *epPayment) snapshot() EPaymentSnapshot {
	return EPaymentSnapshot{
		MerchantSerialNumber: p.key.msn, Reference: p.key.orderID, State: p.state, Amount: p.amount,
		Currency: p.currency, UserFlow: p.flow, ReturnURL: p.returnURL, Phone: p.phone,
		Description: p.description, RedirectURL: p.redirectURL, Authorized: p.authorized,
		Captured: p.captured, Refunded: p.refunded, Cancelled: p.cancelled,
		Events: append([]EPaymentEvent(nil), p.events...),
	}
}

// epaymentRoutes adds the ePayment and Webhooks API routes.
func (s *Server) epaymentRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /epayment/v1/payments", s.handleEPCreate)
	m.HandleFunc("GET /epayment/v1/payments/{reference}", s.handleEPGet)
	m.HandleFunc("GET /epayment/v1/payments/{reference}/events", s.handleEPEvents)
	m.HandleFunc("POST /epayment/v1/payments/{reference}/capture", s.handleEPCapture)
	m.HandleFunc("POST /epayment/v1/payments/{reference}/refund", s.handleEPRefund)
	m.HandleFunc("POST /epayment/v1/payments/{reference}/cancel", s.handleEPCancel)
	m.HandleFunc("POST /epayment/v1/test/payments/{reference}/approve", s.handleEPForceApprove)
	m.HandleFunc("GET "+epLandingPath, s.handleEPLandingGet)
	m.HandleFunc("POST "+epLandingPath, s.handleEPLandingPost)
	m.HandleFunc("POST /webhooks/v1/webhooks", s.handleWebhookRegister)
	m.HandleFunc("GET /webhooks/v1/webhooks", s.handleWebhookList)
	m.HandleFunc("DELETE /webhooks/v1/webhooks/{id}", s.handleWebhookDelete)
	s.epaymentSimRoutes(m)
}

// problem is the ePayment API's Problem (RFC 7807), with the newer extraDetails.
type problem struct {
	Type         string        `json:"type"`
	Title        string        `json:"title"`
	Status       int           `json:"status"`
	Detail       string        `json:"detail,omitempty"`
	TraceID      string        `json:"traceId"`
	ExtraDetails []extraDetail `json:"extraDetails,omitempty"`
}

type extraDetail struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

const problemTypeBase = "https://developer.vippsmobilepay.com/docs/APIs/epayment-api/errors#"

// newProblem returns a problem whose type is the base URL and slug, with Vipps's numeric code (if any) in
// extraDetails as {"name": "ErrorCode", "reason": code}.
func newProblem(status int, slug, title, code, format string, args ...any) *problem {
	p := &problem{Type: problemTypeBase + slug, Title: title, Status: status, Detail: fmt.Sprintf(format, args...)}
	if code != "" {
		p.ExtraDetails = []extraDetail{{Name: "ErrorCode", Reason: code}}
	}
	return p
}

// problemFromFields turns collected field errors into one 400 problem listing each field.
func problemFromFields(e *apiError) *problem {
	p := &problem{Type: problemTypeBase + "validation-error", Title: "Bad Request", Status: http.StatusBadRequest}
	var msgs []string
	for _, ve := range e.errs {
		msgs = append(msgs, ve.ErrorMessage)
		name, _, _ := strings.Cut(ve.ErrorMessage, ":")
		p.ExtraDetails = append(p.ExtraDetails, extraDetail{Name: name, Reason: ve.ErrorMessage})
	}
	p.Detail = strings.Join(msgs, "; ")
	return p
}

func writeProblem(w http.ResponseWriter, p *problem) {
	p.TraceID = newUUID()
	body, _ := marshal(p) // plain struct: cannot fail
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}

// epAuthorize checks the headers of an ePayment or Webhooks call: Merchant-Serial-Number (required by the
// ePayment spec, and answered with a 403 problem when it is not the subscription key's sales unit) and
// then the token checks eCom has.
func (s *Server) epAuthorize(w http.ResponseWriter, r *http.Request) (Tenant, bool) {
	msn := r.Header.Get("Merchant-Serial-Number")
	if msn == "" {
		writeProblem(w, newProblem(http.StatusBadRequest, "missing-msn", "Bad Request", "",
			"the Merchant-Serial-Number header is required"))
		return Tenant{}, false
	}
	if !tokenHeaderMSN.MatchString(msn) {
		writeProblem(w, newProblem(http.StatusBadRequest, "invalid-msn", "Bad Request", "",
			"Merchant-Serial-Number must be 4 to 6 digits"))
		return Tenant{}, false
	}
	for _, t := range s.tenants {
		if secureEqual(r.Header.Get("Ocp-Apim-Subscription-Key"), t.SubscriptionKey) && msn != t.MerchantSerialNumber {
			writeProblem(w, newProblem(http.StatusForbidden, "forbidden", "Forbidden", "",
				"Merchant-Serial-Number %s does not belong to these credentials", msn))
			return Tenant{}, false
		}
	}
	return s.authorize(w, r)
}

// idempotencyKey returns the Idempotency-Key header, required on state-changing ePayment calls.
func idempotencyKey(w http.ResponseWriter, r *http.Request) (string, bool) {
	k := r.Header.Get("Idempotency-Key")
	switch {
	case k == "":
		writeProblem(w, newProblem(http.StatusBadRequest, "missing-idempotency-key", "Bad Request", "",
			"the Idempotency-Key header is required"))
		return "", false
	case len(k) > 50:
		writeProblem(w, newProblem(http.StatusBadRequest, "invalid-idempotency-key", "Bad Request", "",
			"Idempotency-Key must be at most 50 characters"))
		return "", false
	}
	return k, true
}

// readEPBody reads an optional JSON object body. A request without a body gives nil.
func readEPBody(w http.ResponseWriter, r *http.Request, required bool) (map[string]any, []byte, *problem) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		return nil, nil, newProblem(http.StatusBadRequest, "invalid-body", "Bad Request", "", "request body could not be read (at most %d bytes)", maxBodyBytes)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		if required {
			return nil, nil, newProblem(http.StatusBadRequest, "missing-body", "Bad Request", "", "a JSON request body is required")
		}
		return nil, nil, nil
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, nil, newProblem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported Media Type", "", "Content-Type must be application/json")
	}
	obj, err := decodeObject(data)
	if err != nil {
		return nil, nil, newProblem(http.StatusBadRequest, "invalid-body", "Bad Request", "", "request body is not a JSON object: %v", err)
	}
	return obj, data, nil
}

func fingerprint(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// epAmount reads an Amount object: currency NOK (the simulator's only one) and an integer value.
func epAmount(f *fields, parent map[string]any, key, path string, required bool) (int64, string, bool) {
	a := f.object(parent, key, path, required)
	if a == nil {
		return 0, "", false
	}
	cur, okCur := f.str(a, "currency", path+".currency", true, 0)
	if okCur {
		switch cur {
		case "NOK":
		case "DKK", "EUR":
			f.invalid(path+".currency", "currency %s is not supported by this sales unit", cur)
			okCur = false
		default:
			f.invalid(path+".currency", "must be NOK, DKK or EUR")
			okCur = false
		}
	}
	v, okV := f.integer(a, "value", path+".value", true)
	if okV && (v < 0 || v > 65000000) {
		f.invalid(path+".value", "must be between 0 and 65000000 (minor units)")
		okV = false
	}
	return v, cur, okCur && okV
}

// epCreate is a checked CreatePaymentRequest.
type epCreate struct {
	msn, reference, flow, returnURL, phone, description, currency string
	amount                                                        int64
	// qrFormat is qrFormat.format, empty when not sent (then IMAGE/SVG+XML).
	qrFormat string
}

func (s *Server) parseEPCreate(body map[string]any) (epCreate, *problem) {
	var f fields
	var out epCreate
	out.amount, out.currency, _ = epAmount(&f, body, "amount", "amount", true)
	if pm := f.object(body, "paymentMethod", "paymentMethod", true); pm != nil {
		if t, ok := f.str(pm, "type", "paymentMethod.type", true, 0); ok && t != "WALLET" && t != "CARD" {
			f.invalid("paymentMethod.type", "must be WALLET or CARD")
		} else if ok && t == "CARD" {
			if fl, _ := body["userFlow"].(string); fl != "WEB_REDIRECT" {
				f.invalid("paymentMethod.type", "CARD needs userFlow WEB_REDIRECT")
			}
		}
	}
	if ref, ok := f.str(body, "reference", "reference", true, 0); ok {
		if !referencePattern.MatchString(ref) {
			f.invalid("reference", "must match ^[a-zA-Z0-9-]{8,50}$")
		} else {
			out.reference = ref
		}
	}
	if fl, ok := f.str(body, "userFlow", "userFlow", true, 0); ok {
		switch fl {
		case "PUSH_MESSAGE", "NATIVE_REDIRECT", "WEB_REDIRECT", "QR":
			out.flow = fl
		default:
			f.invalid("userFlow", "must be PUSH_MESSAGE, NATIVE_REDIRECT, WEB_REDIRECT or QR")
		}
	}
	if u, ok := f.str(body, "returnUrl", "returnUrl", out.flow == "WEB_REDIRECT", 0); ok {
		s.checkURL(&f, "returnUrl", u, urlRule{customScheme: true})
		out.returnURL = u
	}
	if c := f.object(body, "customer", "customer", out.flow == "PUSH_MESSAGE"); c != nil {
		n := 0
		for _, k := range []string{"phoneNumber", "personalQr", "customerToken"} {
			if _, ok := c[k]; ok {
				n++
			}
		}
		if n != 1 {
			f.invalid("customer", "must have exactly one of phoneNumber, personalQr and customerToken")
		}
		if ph, ok := f.str(c, "phoneNumber", "customer.phoneNumber", false, 15); ok {
			if !msisdnPattern.MatchString(ph) || !strings.HasPrefix(ph, "47") || len(ph) != 10 {
				f.invalid("customer.phoneNumber", "must be a Norwegian mobile number in MSISDN form, e.g. 4791234567")
			} else {
				out.phone = ph
			}
		}
		if qr, ok := f.str(c, "personalQr", "customer.personalQr", false, 255); ok && utf8.RuneCountInString(qr) < 5 {
			f.invalid("customer.personalQr", "must be at least 5 characters")
		}
		f.str(c, "customerToken", "customer.customerToken", false, 0)
		if out.flow == "PUSH_MESSAGE" && out.phone == "" && n == 1 {
			if _, ok := c["phoneNumber"]; !ok {
				f.invalid("customer", "PUSH_MESSAGE needs customer.phoneNumber in this simulator")
			}
		}
	}
	if ci, ok := f.str(body, "customerInteraction", "customerInteraction", false, 0); ok && ci != "CUSTOMER_PRESENT" && ci != "CUSTOMER_NOT_PRESENT" {
		f.invalid("customerInteraction", "must be CUSTOMER_PRESENT or CUSTOMER_NOT_PRESENT")
	}
	if d, ok := f.str(body, "paymentDescription", "paymentDescription", false, 100); ok {
		if utf8.RuneCountInString(d) < 3 {
			f.invalid("paymentDescription", "must be at least 3 characters")
		}
		out.description = d
	}
	if pr := f.object(body, "profile", "profile", false); pr != nil {
		if scope, ok := f.str(pr, "scope", "profile.scope", false, 0); ok {
			for _, w := range strings.Fields(scope) {
				if !scopeWords[w] {
					f.invalid("profile.scope", "unknown scope %q (want name, address, email, phoneNumber, birthDate, nin)", w)
					break
				}
			}
		}
	}
	if e, ok := f.str(body, "expiresAt", "expiresAt", false, 0); ok {
		switch t, err := time.Parse(time.RFC3339, e); {
		case !rfc3339Pattern.MatchString(e) || err != nil:
			f.invalid("expiresAt", "must be an RFC 3339 date-time")
		case out.flow != "PUSH_MESSAGE" && out.flow != "QR":
			f.invalid("expiresAt", "is only allowed with userFlow PUSH_MESSAGE or QR")
		case body["receipt"] == nil:
			f.invalid("expiresAt", "needs receipt")
		case t.Before(s.now().Add(10*time.Minute)) || t.After(s.now().Add(28*24*time.Hour)):
			f.invalid("expiresAt", "must be more than 10 minutes and less than 28 days ahead")
		}
	}
	if q := f.object(body, "qrFormat", "qrFormat", false); q != nil {
		if out.flow != "QR" {
			f.invalid("qrFormat", "is only allowed with userFlow QR")
		}
		if fm, ok := f.str(q, "format", "qrFormat.format", true, 0); ok && fm != "TEXT/TARGETURL" && fm != "IMAGE/SVG+XML" && fm != "IMAGE/PNG" {
			f.invalid("qrFormat.format", "must be TEXT/TARGETURL, IMAGE/SVG+XML or IMAGE/PNG")
		} else if ok {
			out.qrFormat = fm
		}
		if sz, ok := f.integer(q, "size", "qrFormat.size", false); ok && (sz < 100 || sz > 2000) {
			f.invalid("qrFormat.size", "must be between 100 and 2000")
		}
	}
	if md := f.object(body, "metadata", "metadata", false); md != nil {
		if len(md) > 5 {
			f.invalid("metadata", "may hold at most 5 pairs")
		}
		for k, v := range md {
			if sv, ok := v.(string); !ok || utf8.RuneCountInString(sv) > 500 || utf8.RuneCountInString(k) > 100 {
				f.invalid("metadata", "keys are at most 100 and values at most 500 characters, strings only")
				break
			}
		}
	}
	f.str(body, "receiptUrl", "receiptUrl", false, 0)
	if e := f.err(); e != nil {
		return out, problemFromFields(e)
	}
	if out.amount < 100 {
		return out, newProblem(http.StatusBadRequest, "amount-too-small", "Amount too small", "6010",
			"the amount must be at least 100 øre, got %d", out.amount)
	}
	return out, nil
}

// handleEPCreate serves POST /epayment/v1/payments.
func (s *Server) handleEPCreate(w http.ResponseWriter, r *http.Request) {
	t, ok := s.epAuthorize(w, r)
	if !ok {
		return
	}
	key, ok := idempotencyKey(w, r)
	if !ok {
		return
	}
	body, raw, pe := readEPBody(w, r, true)
	if pe != nil {
		writeProblem(w, pe)
		return
	}
	in, pe := s.parseEPCreate(body)
	if pe != nil {
		writeProblem(w, pe)
		return
	}
	msn := t.MerchantSerialNumber
	fp := fingerprint(raw)

	s.mu.Lock()
	defer s.mu.Unlock()
	ep := s.ep
	idemKey := msn + ":" + key
	if rec, seen := ep.createIdem[idemKey]; seen {
		if rec.fingerprint != fp {
			writeProblem(w, newProblem(http.StatusConflict, "idempotency-error", "Idempotency error", "4020",
				"Idempotency-Key %q was already used with another request", key))
			return
		}
		s.recordOpLocked("epayment", rec.key, OpKindInitiate, rec.amount, key, true)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body)
		return
	}
	pk := paymentKey{msn: msn, orderID: in.reference}
	_, ecomTaken := s.payments[pk]
	if _, taken := ep.payments[pk]; taken || ecomTaken {
		writeProblem(w, newProblem(http.StatusConflict, "reference-already-exists", "Reference already exists", "4150",
			"reference %q is already used for this merchant serial number", in.reference))
		return
	}
	now := s.now()
	p := &epPayment{
		key: pk, amount: in.amount, currency: in.currency, flow: in.flow, returnURL: in.returnURL,
		phone: in.phone, description: in.description, psp: s.nextTxID(), token: newLandingToken(),
		created: now, expires: now.Add(s.cfg.PaymentTTL), state: epCreated, idem: map[string]idemRecord{},
	}
	switch in.flow {
	case "WEB_REDIRECT":
		p.redirectURL = s.baseURL(r) + epLandingPath + "?token=" + p.token
	case "NATIVE_REDIRECT":
		p.redirectURL = "vippsMT://?token=" + p.token
	case "QR":
		if in.qrFormat == "TEXT/TARGETURL" {
			// The URL the QR code encodes; scanning it opens the payment, here the landing page.
			p.redirectURL = s.baseURL(r) + epLandingPath + "?token=" + p.token
		} else {
			p.redirectURL = s.baseURL(r) + "/qr/v1/" + p.token // a link to the QR image
		}
	}
	ep.payments[pk] = p
	ep.landing[p.token] = pk
	s.epEventLocked(p, epCreated, p.amount, key, true)

	resp := struct {
		RedirectURL string `json:"redirectUrl,omitempty"`
		Reference   string `json:"reference"`
	}{p.redirectURL, in.reference}
	data, _ := marshal(resp)
	ep.createIdem[idemKey] = idemRecord{fingerprint: fp, status: http.StatusCreated, body: data, amount: p.amount, key: pk}
	s.recordOpLocked("epayment", pk, OpKindInitiate, p.amount, key, false)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(data)
}

// epEventLocked appends an event to p's log and sends it to the merchant's webhooks. Call with s.mu held.
func (s *Server) epEventLocked(p *epPayment, name string, amount int64, idemKey string, success bool) {
	e := EPaymentEvent{Name: name, Amount: amount, IdempotencyKey: idemKey, PspReference: s.nextTxID(),
		Success: success, Time: s.now()}
	p.events = append(p.events, e)
	if p.ecom == nil {
		s.enqueueWebhookLocked(p, e)
	}
}

// epLookupLocked finds an ePayment payment of msn and applies lazy expiry. Call with s.mu held.
func (s *Server) epLookupLocked(msn, reference string) (*epPayment, bool) {
	p, ok := s.ep.payments[paymentKey{msn: msn, orderID: reference}]
	if !ok {
		if e, isECom := s.lookupLocked(paymentKey{msn: msn, orderID: reference}); isECom {
			return s.shadowOf(e), true
		}
		return nil, false
	}
	if p.state == epCreated && !s.now().Before(p.expires) {
		p.state = epExpired
		s.epEventLocked(p, epExpired, p.amount, "", true)
	}
	return p, true
}

func notFoundProblem(reference string) *problem {
	return newProblem(http.StatusNotFound, "payment-not-found", "Payment not found", "",
		"no payment with reference %q for this merchant serial number", reference)
}

type epAmountJSON struct {
	Currency string `json:"currency"`
	Value    int64  `json:"value"`
}

type epAggregate struct {
	Authorized epAmountJSON `json:"authorizedAmount"`
	Cancelled  epAmountJSON `json:"cancelledAmount"`
	Captured   epAmountJSON `json:"capturedAmount"`
	Refunded   epAmountJSON `json:"refundedAmount"`
}

func (p *epPayment) aggregate() epAggregate {
	a := func(v int64) epAmountJSON { return epAmountJSON{Currency: p.currency, Value: v} }
	return epAggregate{a(p.authorized), a(p.cancelled), a(p.captured), a(p.refunded)}
}

// handleEPGet serves GET /epayment/v1/payments/{reference} (GetPaymentResponse).
func (s *Server) handleEPGet(w http.ResponseWriter, r *http.Request) {
	t, ok := s.epAuthorize(w, r)
	if !ok {
		return
	}
	ref := r.PathValue("reference")
	s.mu.Lock()
	p, found := s.epLookupLocked(t.MerchantSerialNumber, ref)
	if !found {
		s.mu.Unlock()
		writeProblem(w, notFoundProblem(ref))
		return
	}
	out := struct {
		Aggregate     epAggregate       `json:"aggregate"`
		Amount        epAmountJSON      `json:"amount"`
		State         string            `json:"state"`
		PaymentMethod map[string]string `json:"paymentMethod"`
		Profile       map[string]string `json:"profile"`
		PspReference  string            `json:"pspReference"`
		RedirectURL   string            `json:"redirectUrl,omitempty"`
		Reference     string            `json:"reference"`
	}{p.aggregate(), epAmountJSON{p.currency, p.amount}, p.state, map[string]string{"type": "WALLET"},
		map[string]string{}, p.psp, p.redirectURL, ref}
	if p.flow == "NATIVE_REDIRECT" {
		out.RedirectURL = "" // not an http(s) URL: GetPaymentResponse.redirectUrl is the landing page
	}
	s.mu.Unlock()
	writeJSONPlain(w, http.StatusOK, out)
}

// writeJSONPlain writes v with Content-Type application/json, as the ePayment API does.
func writeJSONPlain(w http.ResponseWriter, status int, v any) {
	body, _ := marshal(v) // plain structs: cannot fail
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// handleEPEvents serves GET /epayment/v1/payments/{reference}/events (PaymentEvent[]).
func (s *Server) handleEPEvents(w http.ResponseWriter, r *http.Request) {
	t, ok := s.epAuthorize(w, r)
	if !ok {
		return
	}
	ref := r.PathValue("reference")
	type item struct {
		Reference      string       `json:"reference"`
		PspReference   string       `json:"pspReference"`
		Name           string       `json:"name"`
		Amount         epAmountJSON `json:"amount"`
		Timestamp      string       `json:"timestamp"`
		IdempotencyKey *string      `json:"idempotencyKey"`
		Success        bool         `json:"success"`
	}
	s.mu.Lock()
	p, found := s.epLookupLocked(t.MerchantSerialNumber, ref)
	if !found {
		s.mu.Unlock()
		writeProblem(w, notFoundProblem(ref))
		return
	}
	out := make([]item, 0, len(p.events))
	for _, e := range p.events {
		it := item{Reference: ref, PspReference: e.PspReference, Name: e.Name,
			Amount: epAmountJSON{p.currency, e.Amount}, Timestamp: timeStamp(e.Time), Success: e.Success}
		if e.IdempotencyKey != "" {
			k := e.IdempotencyKey
			it.IdempotencyKey = &k
		}
		out = append(out, it)
	}
	s.mu.Unlock()
	writeJSONPlain(w, http.StatusOK, out)
}

// epModify runs the shared part of capture, refund and cancel: authorization, Idempotency-Key, body,
// lookup and idempotent replay; do runs with s.mu held.
func (s *Server) epModify(w http.ResponseWriter, r *http.Request, name string, withAmount bool,
	do func(p *epPayment, amount int64, key string) *problem) {
	t, ok := s.epAuthorize(w, r)
	if !ok {
		return
	}
	key, ok := idempotencyKey(w, r)
	if !ok {
		return
	}
	ref := r.PathValue("reference")
	body, raw, pe := readEPBody(w, r, withAmount)
	if pe != nil {
		writeProblem(w, pe)
		return
	}
	var amount int64
	if withAmount {
		var f fields
		v, _, okAmount := epAmount(&f, body, "modificationAmount", "modificationAmount", true)
		if e := f.err(); e != nil {
			writeProblem(w, problemFromFields(e))
			return
		}
		if okAmount && v == 0 {
			writeProblem(w, newProblem(http.StatusBadRequest, "invalid-amount", "Invalid amount", "4040",
				"modificationAmount.value must be positive"))
			return
		}
		amount = v
	} else if body != nil {
		writeProblem(w, newProblem(http.StatusBadRequest, "invalid-body", "Bad Request", "", "%s takes no request body", name))
		return
	}
	fp := fingerprint(raw)

	s.mu.Lock()
	defer s.mu.Unlock()
	p, found := s.epLookupLocked(t.MerchantSerialNumber, ref)
	if !found {
		writeProblem(w, notFoundProblem(ref))
		return
	}
	if rec, seen := p.idem[name+":"+key]; seen {
		if rec.fingerprint != fp {
			writeProblem(w, newProblem(http.StatusConflict, name+"-idempotency-conflict", "Idempotency error", "4010",
				"Idempotency-Key %q was already used for another %s of this payment", key, name))
			return
		}
		s.recordOpLocked("epayment", p.key, name, rec.amount, key, true)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body)
		return
	}
	if pe := do(p, amount, key); pe != nil {
		writeProblem(w, pe)
		return
	}
	applied := p.events[len(p.events)-1].Amount // every successful modification logs one event
	s.recordOpLocked("epayment", p.key, name, applied, key, false)
	if p.ecom != nil {
		s.writeBackLocked(p, key)
	}
	data, _ := marshal(struct {
		Amount       epAmountJSON `json:"amount"`
		State        string       `json:"state"`
		Aggregate    epAggregate  `json:"aggregate"`
		PspReference string       `json:"pspReference"`
		Reference    string       `json:"reference"`
	}{epAmountJSON{p.currency, p.amount}, p.state, p.aggregate(), p.psp, ref})
	p.idem[name+":"+key] = idemRecord{fingerprint: fp, status: http.StatusOK, body: data, amount: applied}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

// handleEPCapture serves POST /epayment/v1/payments/{reference}/capture.
func (s *Server) handleEPCapture(w http.ResponseWriter, r *http.Request) {
	s.epModify(w, r, "capture", true, func(p *epPayment, amount int64, key string) *problem {
		if p.state != epAuthorized {
			return newProblem(http.StatusBadRequest, "cannot-capture-before-reservation", "Cannot capture before reservation", "6080",
				"the payment is %s", p.state)
		}
		if left := p.authorized - p.captured - p.cancelled; amount > left {
			return newProblem(http.StatusBadRequest, "capture-amount-too-high", "Capture amount too high", "6090",
				"%d requested, %d left to capture", amount, left)
		}
		p.captured += amount
		s.epEventLocked(p, evCaptured, amount, key, true)
		return nil
	})
}

// handleEPRefund serves POST /epayment/v1/payments/{reference}/refund.
func (s *Server) handleEPRefund(w http.ResponseWriter, r *http.Request) {
	s.epModify(w, r, "refund", true, func(p *epPayment, amount int64, key string) *problem {
		if left := p.captured - p.refunded; amount > left {
			return newProblem(http.StatusBadRequest, "not-enough-refundable", "Not enough refundable", "6150",
				"%d requested, %d left to refund", amount, left)
		}
		p.refunded += amount
		s.epEventLocked(p, evRefunded, amount, key, true)
		return nil
	})
}

// handleEPCancel serves POST /epayment/v1/payments/{reference}/cancel (no body).
func (s *Server) handleEPCancel(w http.ResponseWriter, r *http.Request) {
	s.epModify(w, r, "cancel", false, func(p *epPayment, _ int64, key string) *problem {
		switch {
		case p.state == epCreated:
			p.state, p.cancelled = epTerminated, p.amount
			s.epEventLocked(p, epTerminated, p.amount, key, true)
			return nil
		case p.state != epAuthorized:
			return newProblem(http.StatusBadRequest, "cannot-cancel", "Cannot cancel", "", "the payment is %s", p.state)
		case p.captured >= p.authorized:
			return newProblem(http.StatusBadRequest, "cannot-cancel-captured", "Cannot cancel a captured payment", "6040",
				"everything authorized was captured; refund instead")
		case p.authorized-p.captured-p.cancelled == 0:
			return newProblem(http.StatusBadRequest, "already-cancelled", "Cannot cancel", "", "the rest of the payment was already cancelled")
		}
		rest := p.authorized - p.captured - p.cancelled
		p.cancelled += rest
		s.epEventLocked(p, evCancelled, rest, key, true)
		return nil
	})
}

// handleEPForceApprove serves the test environment's POST /epayment/v1/test/payments/{reference}/approve.
func (s *Server) handleEPForceApprove(w http.ResponseWriter, r *http.Request) {
	t, ok := s.epAuthorize(w, r)
	if !ok {
		return
	}
	ref := r.PathValue("reference")
	body, _, pe := readEPBody(w, r, false)
	if pe != nil {
		writeProblem(w, pe)
		return
	}
	var f fields
	var phone, token string
	if c := f.object(body, "customer", "customer", false); c != nil {
		if ph, ok := f.str(c, "phoneNumber", "customer.phoneNumber", false, 15); ok {
			if !msisdnPattern.MatchString(ph) {
				f.invalid("customer.phoneNumber", "must be an MSISDN, e.g. 4791234567")
			}
			phone = ph
		}
	}
	token, _ = f.str(body, "token", "token", false, 0)
	if e := f.err(); e != nil {
		writeProblem(w, problemFromFields(e))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, found := s.epLookupLocked(t.MerchantSerialNumber, ref)
	if !found {
		writeProblem(w, notFoundProblem(ref))
		return
	}
	if token != "" && !secureEqual(token, p.token) {
		writeProblem(w, newProblem(http.StatusBadRequest, "invalid-token", "Bad Request", "", "token is not this payment's"))
		return
	}
	if p.state != epCreated {
		writeProblem(w, newProblem(http.StatusBadRequest, "not-approvable", "Bad Request", "", "the payment is %s", p.state))
		return
	}
	s.epAuthorizeLocked(p, phone)
	if p.ecom != nil {
		s.writeBackLocked(p, "")
	}
	w.WriteHeader(http.StatusOK)
}

// epAuthorizeLocked is the user approving. Call with s.mu held.
func (s *Server) epAuthorizeLocked(p *epPayment, phone string) {
	if phone != "" {
		p.phone = phone
	}
	p.state, p.authorized = epAuthorized, p.amount
	s.epEventLocked(p, epAuthorized, p.amount, "", true)
}

// epPendingLocked finds a CREATED ePayment payment by reference alone, for the test controls.
func (s *Server) epPendingLocked(reference string) (*epPayment, error) {
	var found *epPayment
	for k, p := range s.ep.payments {
		if k.orderID != reference {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("find %q: %w", reference, ErrAmbiguousOrderID)
		}
		found = p
	}
	if found == nil {
		return nil, fmt.Errorf("find %q: %w", reference, ErrUnknownPayment)
	}
	if p, _ := s.epLookupLocked(found.key.msn, reference); p.state != epCreated {
		return nil, fmt.Errorf("%q is %s: %w", reference, p.state, ErrNotPending)
	}
	return found, nil
}

// ApproveEPayment is the user approving an ePayment payment in the app (state AUTHORIZED, event
// AUTHORIZED). phone, if not empty, is an MSISDN such as 4791234567.
func (s *Server) ApproveEPayment(reference, phone string) error {
	if phone != "" && !msisdnPattern.MatchString(phone) {
		return fmt.Errorf("approve %q: %w", reference, ErrInvalidPhone)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.epPendingLocked(reference)
	if err != nil {
		return fmt.Errorf("approve: %w", err)
	}
	s.epAuthorizeLocked(p, phone)
	return nil
}

// RejectEPayment is the user cancelling in the app (state and event ABORTED).
func (s *Server) RejectEPayment(reference string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.epPendingLocked(reference)
	if err != nil {
		return fmt.Errorf("reject: %w", err)
	}
	p.state = epAborted
	s.epEventLocked(p, epAborted, p.amount, "", true)
	return nil
}

// ExpireEPayment is the user never acting (state and event EXPIRED), whatever the clock says.
func (s *Server) ExpireEPayment(reference string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.epPendingLocked(reference)
	if err != nil {
		return fmt.Errorf("expire: %w", err)
	}
	p.state = epExpired
	s.epEventLocked(p, epExpired, p.amount, "", true)
	return nil
}

// EPayment returns a snapshot of the ePayment payment with the given reference.
func (s *Server) EPayment(reference string) (EPaymentSnapshot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, p := range s.ep.payments {
		if k.orderID == reference {
			s.epLookupLocked(k.msn, reference)
			return p.snapshot(), true
		}
	}
	return EPaymentSnapshot{}, false
}

// handleEPLandingGet serves the page a WEB_REDIRECT redirectUrl points to.
func (s *Server) handleEPLandingGet(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.epLandingLocked(w, r)
	if !ok {
		return
	}
	s.renderLanding(w, http.StatusOK, s.epPage(r, p, "phone", ""))
}

func (s *Server) epPage(r *http.Request, p *epPayment, step, phone string) landingPage {
	return landingPage{Title: "Pay with Vipps", Step: step, Action: epLandingPath + "?" + r.URL.RawQuery,
		MSN: p.key.msn, OrderID: p.key.orderID, Phone: phone, Text: p.description,
		Amount: formatNOK(p.amount), AmountOre: p.amount}
}

func (s *Server) epLandingLocked(w http.ResponseWriter, r *http.Request) (*epPayment, bool) {
	key, ok := s.ep.landing[r.URL.Query().Get("token")]
	if !ok {
		s.landingError(w, http.StatusNotFound, "Payment not found", "This payment link is not valid. Go back to the shop and try again.")
		return nil, false
	}
	p, _ := s.epLookupLocked(key.msn, key.orderID)
	if p.state != epCreated {
		s.landingError(w, http.StatusGone, "Payment no longer available", "This payment has already been completed, cancelled or has expired.")
		return nil, false
	}
	return p, true
}

// handleEPLandingPost handles the phone form and then confirm or reject, and sends the browser to returnUrl.
func (s *Server) handleEPLandingPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		s.landingError(w, http.StatusBadRequest, "Invalid form", "The form could not be read.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.epLandingLocked(w, r)
	if !ok {
		return
	}
	phone := strings.TrimSpace(r.PostForm.Get("phone"))
	if !phonePattern.MatchString(phone) {
		page := s.epPage(r, p, "phone", phone)
		page.Error = "Enter your mobile number as 8 digits, without +47."
		s.renderLanding(w, http.StatusBadRequest, page)
		return
	}
	switch r.PostForm.Get("step") {
	case "phone":
		page := s.epPage(r, p, "confirm", phone)
		page.Title = "Confirm in the Vipps app"
		s.renderLanding(w, http.StatusOK, page)
	case "confirm":
		switch r.PostForm.Get("action") {
		case "confirm":
			s.epAuthorizeLocked(p, "47"+phone)
		case "reject":
			p.phone, p.state = "47"+phone, epAborted
			s.epEventLocked(p, epAborted, p.amount, "", true)
		default:
			s.landingError(w, http.StatusBadRequest, "Invalid form", "Choose Confirm payment or Reject.")
			return
		}
		if p.returnURL == "" {
			// QR and PUSH_MESSAGE need no returnUrl: the customer goes back to the screen they started on.
			s.renderLanding(w, http.StatusOK, landingPage{Title: "Done", Step: "error",
				Message: "You can close this page and go back to the shop."})
			return
		}
		http.Redirect(w, r, p.returnURL, http.StatusSeeOther)
	default:
		s.landingError(w, http.StatusBadRequest, "Invalid form", "Unknown form step.")
	}
}
