package vippssim

import (
	"fmt"
	"net/http"
	"strings"
)

// transactionSummary is the spec's TransactionSummary.
type transactionSummary struct {
	CapturedAmount           int64 `json:"capturedAmount"`
	RefundedAmount           int64 `json:"refundedAmount"`
	RemainingAmountToCapture int64 `json:"remainingAmountToCapture"`
	RemainingAmountToRefund  int64 `json:"remainingAmountToRefund"`
}

// transactionInfo is the spec's TransactionInfo / TransactionInfoCancel.
type transactionInfo struct {
	Amount          int64  `json:"amount"`
	Status          string `json:"status"`
	TimeStamp       string `json:"timeStamp"`
	TransactionID   string `json:"transactionId"`
	TransactionText string `json:"transactionText"`
}

func summaryOf(p *payment) transactionSummary {
	return transactionSummary{
		CapturedAmount:           p.captured,
		RefundedAmount:           p.refunded,
		RemainingAmountToCapture: p.remainingToCapture(),
		RemainingAmountToRefund:  p.remainingToRefund(),
	}
}

var scopeWords = map[string]bool{
	"name": true, "address": true, "email": true, "phoneNumber": true, "birthDate": true, "nin": true,
}

// initiateRequest is a checked InitiatePaymentCommand.
type initiateRequest struct {
	msn, orderID, text, mobile      string
	amount                          int64
	callbackPrefix, fallBack, token string
	isApp                           bool
	express                         *expressPayment // nil for regular payments (express.go)
}

// parseInitiate checks an InitiatePaymentCommand against the spec and the
// guide's rules.
func (s *Server) parseInitiate(body map[string]any) (initiateRequest, *apiError) {
	var f fields
	var out initiateRequest

	ci := f.object(body, "customerInfo", "customerInfo", true)
	if m, ok := f.str(ci, "mobileNumber", "customerInfo.mobileNumber", false, 0); ok {
		if !phonePattern.MatchString(m) {
			f.invalid("customerInfo.mobileNumber", "must be 8 digits, without country code or spaces")
		} else {
			out.mobile = m
		}
	}

	mi := f.object(body, "merchantInfo", "merchantInfo", true)
	out.msn, _ = f.merchantSerialNumber(mi)
	isApp, _ := f.boolean(mi, "isApp", "merchantInfo.isApp")
	out.isApp = isApp
	if cb, ok := f.str(mi, "callbackPrefix", "merchantInfo.callbackPrefix", mi != nil, 255); ok {
		s.checkURL(&f, "merchantInfo.callbackPrefix", cb, urlRule{})
		out.callbackPrefix = cb
	}
	if fb, ok := f.str(mi, "fallBack", "merchantInfo.fallBack", mi != nil, 255); ok {
		if !isApp { // with isApp, Vipps does not validate fallBack as a URL
			s.checkURL(&f, "merchantInfo.fallBack", fb, urlRule{customScheme: true})
		}
		out.fallBack = fb
	}
	out.token, _ = f.str(mi, "authToken", "merchantInfo.authToken", false, 255)
	for _, k := range []string{"consentRemovalPrefix", "shippingDetailsPrefix"} {
		if u, ok := f.str(mi, k, "merchantInfo."+k, false, 255); ok {
			s.checkURL(&f, "merchantInfo."+k, u, urlRule{})
		}
	}
	if pt, ok := f.str(mi, "paymentType", "merchantInfo.paymentType", false, 0); ok {
		switch pt {
		case "eComm Regular Payment":
		case "eComm Express Payment":
			out.express = &expressPayment{} // read below, once transaction is known
		default:
			f.invalid("merchantInfo.paymentType", `must be "eComm Regular Payment" or "eComm Express Payment"`)
		}
	}
	if v, ok := f.get(mi, "staticShippingDetails", "merchantInfo.staticShippingDetails", false); ok {
		checkShippingDetails(&f, v)
	}

	tx := f.object(body, "transaction", "transaction", true)
	if out.express != nil {
		out.express = parseExpress(&f, mi, tx)
	}
	if id, ok := f.str(tx, "orderId", "transaction.orderId", tx != nil, 0); ok {
		if !orderIDPattern.MatchString(id) {
			f.invalid("transaction.orderId", "must match ^[a-zA-Z0-9-]{1,50}$")
		} else {
			out.orderID = id
		}
	}
	out.amount, _ = f.amount(tx, "amount", "transaction.amount", tx != nil)
	out.text, _ = f.str(tx, "transactionText", "transaction.transactionText", tx != nil, 100)
	f.boolean(tx, "useExplicitCheckoutFlow", "transaction.useExplicitCheckoutFlow")
	skip, _ := f.boolean(tx, "skipLandingPage", "transaction.skipLandingPage")
	if scope, ok := f.str(tx, "scope", "transaction.scope", false, 0); ok {
		for _, w := range strings.Fields(scope) {
			if !scopeWords[w] {
				f.invalid("transaction.scope", "unknown scope %q (want name, address, email, phoneNumber, birthDate, nin)", w)
				break
			}
		}
	}
	if ad := f.object(tx, "additionalData", "transaction.additionalData", false); ad != nil {
		for _, c := range []struct {
			key      string
			min, max int
			required bool
		}{
			{"passengerName", 1, 49, true}, {"airlineCode", 3, 3, true}, {"airlineDesignatorCode", 2, 2, true},
			{"ticketNumber", 1, 150, false}, {"agencyInvoiceNumber", 1, 6, true},
		} {
			p := "transaction.additionalData." + c.key
			if v, ok := f.str(ad, c.key, p, c.required, c.max); ok && len([]rune(v)) < c.min {
				f.invalid(p, "must be at least %d characters", c.min)
			}
		}
	}
	if e := f.err(); e != nil {
		return out, e
	}
	if skip {
		return out, newVippsError(http.StatusBadRequest, groupMerchant, "38",
			"Sales unit is not allowed to skip the landing page")
	}
	return out, nil
}

func checkShippingDetails(f *fields, v any) {
	const path = "merchantInfo.staticShippingDetails"
	items, ok := v.([]any)
	if !ok {
		f.invalid(path, "must be an array")
		return
	}
	for i, it := range items {
		p := fmt.Sprintf("%s[%d]", path, i)
		m, ok := it.(map[string]any)
		if !ok {
			f.invalid(p, "must be a JSON object")
			continue
		}
		if d, ok := f.str(m, "isDefault", p+".isDefault", true, 0); ok && d != "Y" && d != "N" {
			f.invalid(p+".isDefault", `must be "Y" or "N"`)
		}
		f.integer(m, "priority", p+".priority", false)
		if c, ok := f.number(m, "shippingCost", p+".shippingCost", true); ok && c < 0 {
			f.invalid(p+".shippingCost", "must not be negative (NOK, not øre)")
		}
		f.str(m, "shippingMethod", p+".shippingMethod", true, 256)
		f.str(m, "shippingMethodId", p+".shippingMethodId", true, 100)
	}
}

// checkMSN checks that the body's merchant serial number belongs to the
// caller and agrees with the Merchant-Serial-Number header.
func checkMSN(r *http.Request, t Tenant, msn string) *apiError {
	if msn != t.MerchantSerialNumber {
		return newVippsError(http.StatusForbidden, groupMerchant, "merchantInfo.merchantSerialNumber.forbidden",
			"merchantSerialNumber %s does not belong to these credentials", msn)
	}
	if h := r.Header.Get("Merchant-Serial-Number"); h != "" && h != msn {
		return invalidRequest("merchantInfo.merchantSerialNumber.invalid",
			"merchantSerialNumber %s differs from the Merchant-Serial-Number header", msn)
	}
	return nil
}

func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// handleInitiate serves POST /ecomm/v2/payments.
func (s *Server) handleInitiate(w http.ResponseWriter, r *http.Request) {
	t, ok := s.authorize(w, r)
	if !ok {
		return
	}
	body, e := readJSONBody(w, r)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	reqID, e := requestID(r, false)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	in, e := s.parseInitiate(body)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	if e := checkMSN(r, t, in.msn); e != nil {
		writeAPIError(w, e)
		return
	}
	canonical, _ := marshal(body) // decoded JSON: cannot fail; map keys come out sorted
	fp := fingerprint(canonical)

	key := paymentKey{msn: in.msn, orderID: in.orderID}
	tok := newLandingToken()
	u := s.baseURL(r) + landingPath + "?v=2&token=" + tok
	if in.isApp {
		u = "vippsMT://?token=" + tok // the test environment's app scheme
	}

	s.mu.Lock()
	if prev, dup := s.payments[key]; dup {
		rec, same := prev.idem["initiate:"+reqID]
		switch {
		case reqID != "" && same && rec.fingerprint == fp:
			s.recordOpLocked("ecom", key, OpKindInitiate, rec.amount, reqID, true)
			s.mu.Unlock()
			w.Header().Set("Content-Type", jsonContentType)
			w.WriteHeader(rec.status)
			_, _ = w.Write(rec.body)
		case reqID != "" && same:
			s.mu.Unlock()
			writeAPIError(w, newVippsError(http.StatusConflict, groupVippsError, "93",
				"Request must be identical in an idempotent retry: X-Request-Id %q was used with a different body", reqID))
		default:
			s.mu.Unlock()
			writeAPIError(w, newVippsError(http.StatusConflict, groupMerchant, "34",
				"Duplicate Order Id: orderId %q is already used for this merchant serial number", in.orderID))
		}
		return
	}
	now := s.now()
	p := &payment{
		key: key, amount: in.amount, text: in.text, callbackPrefix: in.callbackPrefix,
		fallBack: in.fallBack, authToken: in.token, isApp: in.isApp, phone: in.mobile,
		landingToken: tok, url: u, txID: s.nextTxID(), created: now,
		expires: now.Add(s.cfg.PaymentTTL), state: StateInitiate, idem: map[string]idemRecord{},
		express: in.express,
	}
	p.addLog(now, opInitiate, p.amount, reqID, p.txID, p.text)
	s.payments[key] = p
	s.landing[tok] = key
	answer, _ := marshal(map[string]string{"orderId": in.orderID, "url": u}) // strings: cannot fail
	if reqID != "" {
		p.idem["initiate:"+reqID] = idemRecord{fingerprint: fp, status: http.StatusOK, body: answer, amount: p.amount}
	}
	s.recordOpLocked("ecom", key, OpKindInitiate, p.amount, reqID, false)
	s.mu.Unlock()

	w.Header().Set("Content-Type", jsonContentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(answer)
}

// handleDetails serves GET /ecomm/v2/payments/{orderId}/details.
func (s *Server) handleDetails(w http.ResponseWriter, r *http.Request) {
	t, ok := s.authorize(w, r)
	if !ok {
		return
	}
	orderID := r.PathValue("orderId")
	type logItem struct {
		Amount           int64  `json:"amount"`
		Operation        string `json:"operation"`
		OperationSuccess bool   `json:"operationSuccess"`
		RequestID        string `json:"requestId"`
		TimeStamp        string `json:"timeStamp"`
		TransactionID    string `json:"transactionId"`
		TransactionText  string `json:"transactionText"`
	}
	type details struct {
		OrderID               string              `json:"orderId"`
		TransactionSummary    *transactionSummary `json:"transactionSummary,omitempty"`
		TransactionLogHistory []logItem           `json:"transactionLogHistory"`
		ShippingDetails       any                 `json:"shippingDetails,omitempty"` // express (express.go)
		UserDetails           any                 `json:"userDetails,omitempty"`
	}

	s.mu.Lock()
	p, found := s.lookupLocked(paymentKey{msn: t.MerchantSerialNumber, orderID: orderID})
	if !found {
		s.mu.Unlock()
		writeAPIError(w, unknownOrder(orderID))
		return
	}
	out := details{OrderID: orderID, TransactionLogHistory: make([]logItem, 0, len(p.log))}
	if p.reacted {
		sum := summaryOf(p)
		out.TransactionSummary = &sum
		out.ShippingDetails, out.UserDetails = p.expressDetailsFields()
	}
	for i := len(p.log) - 1; i >= 0; i-- { // newest first
		e := p.log[i]
		out.TransactionLogHistory = append(out.TransactionLogHistory, logItem{
			Amount: e.Amount, Operation: e.Operation, OperationSuccess: e.Success, RequestID: e.RequestID,
			TimeStamp: timeStamp(e.Time), TransactionID: e.TransactionID, TransactionText: e.TransactionText,
		})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// handleStatus serves the deprecated GET /ecomm/v2/payments/{orderId}/status.
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	t, ok := s.authorize(w, r)
	if !ok {
		return
	}
	orderID := r.PathValue("orderId")
	type statusInfo struct {
		Amount        int64  `json:"amount"`
		Status        string `json:"status"`
		TimeStamp     string `json:"timeStamp"`
		TransactionID string `json:"transactionId"`
	}
	s.mu.Lock()
	p, found := s.lookupLocked(paymentKey{msn: t.MerchantSerialNumber, orderID: orderID})
	if !found {
		s.mu.Unlock()
		writeAPIError(w, unknownOrder(orderID))
		return
	}
	last := p.log[len(p.log)-1]
	info := statusInfo{Amount: p.amount, Status: last.Operation, TimeStamp: timeStamp(last.Time), TransactionID: last.TransactionID}
	if p.state == StateRejected {
		info.Status = string(StateRejected)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"orderId": orderID, "transactionInfo": info})
}

// actionRequest is a checked PaymentActionsRequest or CancelPaymentActionRequest.
type actionRequest struct {
	msn         string
	amount      int64 // 0: not given (omitted, null or 0)
	text        string
	release     bool // cancel: shouldReleaseRemainingFunds
	fingerprint string
}

func parseAction(body map[string]any, withAmount, withRelease bool) (actionRequest, *apiError) {
	var f fields
	var out actionRequest
	mi := f.object(body, "merchantInfo", "merchantInfo", true)
	out.msn, _ = f.merchantSerialNumber(mi)
	tx := f.object(body, "transaction", "transaction", true)
	if withAmount {
		// Omitted, null or 0 means "everything that is left" (guide).
		if a, ok := f.integer(tx, "amount", "transaction.amount", false); ok && a != 0 {
			if a < 100 {
				f.invalid("transaction.amount", "must be at least 100 (1 NOK, in øre), or 0/omitted for the remaining amount")
			}
			out.amount = a
		}
	}
	out.text, _ = f.str(tx, "transactionText", "transaction.transactionText", tx != nil, 100)
	if withRelease {
		out.release, _ = f.boolean(body, "shouldReleaseRemainingFunds", "shouldReleaseRemainingFunds")
	}
	if e := f.err(); e != nil {
		return out, e
	}
	out.fingerprint = fmt.Sprintf("%s|%d|%t|%s", out.msn, out.amount, out.release, out.text)
	return out, nil
}

// action runs the shared part of capture, refund and cancel: authorization,
// parsing, MSN and idempotency checks; do runs with s.mu held and returns the
// success body or an error.
func (s *Server) action(w http.ResponseWriter, r *http.Request, name string, needRequestID, withAmount, withRelease bool,
	do func(p *payment, req actionRequest, requestID string) (any, *apiError)) {
	t, ok := s.authorize(w, r)
	if !ok {
		return
	}
	orderID := r.PathValue("orderId")
	reqID, e := requestID(r, needRequestID)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	body, e := readJSONBody(w, r)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	req, e := parseAction(body, withAmount, withRelease)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	if e := checkMSN(r, t, req.msn); e != nil {
		writeAPIError(w, e)
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	p, found := s.lookupLocked(paymentKey{msn: req.msn, orderID: orderID})
	if !found {
		writeAPIError(w, unknownOrder(orderID))
		return
	}
	idemKey := name + ":" + reqID
	if reqID != "" {
		if rec, seen := p.idem[idemKey]; seen {
			if rec.fingerprint != req.fingerprint {
				writeAPIError(w, newVippsError(http.StatusConflict, groupVippsError, "93",
					"Request must be identical in an idempotent retry: X-Request-Id %q was used with a different body", reqID))
				return
			}
			s.recordOpLocked("ecom", p.key, name, rec.amount, reqID, true)
			w.Header().Set("Content-Type", jsonContentType)
			w.WriteHeader(rec.status)
			_, _ = w.Write(rec.body)
			return
		}
	}
	res, e := do(p, req, reqID)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	amount := p.log[len(p.log)-1].Amount // every successful action logs one entry
	s.recordOpLocked("ecom", p.key, name, amount, reqID, false)
	data, _ := marshal(res) // plain structs: cannot fail
	if reqID != "" {
		p.idem[idemKey] = idemRecord{fingerprint: req.fingerprint, status: http.StatusOK, body: data, amount: amount}
	}
	w.Header().Set("Content-Type", jsonContentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

func notReserved(p *payment, op string) *apiError {
	switch p.state {
	case StateInitiate:
		return newVippsError(http.StatusBadRequest, groupPayment, "62",
			"Amount not reserved: the user has not approved the payment yet (cannot %s)", op)
	default:
		return newVippsError(http.StatusBadRequest, groupVippsError, "91",
			"Transaction not allowed: payment is %s (cannot %s)", p.state, op)
	}
}

// handleCapture serves POST /ecomm/v2/payments/{orderId}/capture.
func (s *Server) handleCapture(w http.ResponseWriter, r *http.Request) {
	s.action(w, r, "capture", true, true, false, func(p *payment, req actionRequest, reqID string) (any, *apiError) {
		if p.state != StateReserve {
			return nil, notReserved(p, "capture")
		}
		if p.released {
			return nil, newVippsError(http.StatusBadRequest, groupVippsError, "91",
				"Transaction not allowed: the remaining amount was cancelled")
		}
		remaining := p.remainingToCapture()
		amount := req.amount
		if amount == 0 {
			amount = remaining
		}
		if amount == 0 || amount > remaining {
			return nil, newVippsError(http.StatusBadRequest, groupPayment, "61",
				"Captured amount exceeds the reserved amount: %d requested, %d left to capture", amount, remaining)
		}
		now := s.now()
		txID := s.nextTxID()
		p.captured += amount
		p.addLog(now, opCapture, amount, reqID, txID, req.text)
		return struct {
			OrderID            string             `json:"orderId"`
			TransactionInfo    transactionInfo    `json:"transactionInfo"`
			TransactionSummary transactionSummary `json:"transactionSummary"`
		}{p.key.orderID, transactionInfo{amount, "Captured", timeStamp(now), txID, req.text}, summaryOf(p)}, nil
	})
}

// handleRefund serves POST /ecomm/v2/payments/{orderId}/refund.
func (s *Server) handleRefund(w http.ResponseWriter, r *http.Request) {
	s.action(w, r, "refund", true, true, false, func(p *payment, req actionRequest, reqID string) (any, *apiError) {
		if p.captured == 0 {
			switch p.state {
			case StateCancel, StateVoid, StateRejected:
				return nil, newVippsError(http.StatusBadRequest, groupPayment, "73",
					"Cannot refund a cancelled order: payment is %s", p.state)
			}
			return nil, newVippsError(http.StatusBadRequest, groupPayment, "72",
				"Cannot refund a reserved order: nothing has been captured (cancel instead)")
		}
		remaining := p.remainingToRefund()
		amount := req.amount
		if amount == 0 {
			amount = remaining
		}
		if amount == 0 || amount > remaining {
			return nil, newVippsError(http.StatusBadRequest, groupPayment, "71",
				"Refund amount exceeds the captured amount: %d requested, %d left to refund", amount, remaining)
		}
		now := s.now()
		txID := s.nextTxID()
		p.refunded += amount
		p.addLog(now, opRefund, amount, reqID, txID, req.text)
		return struct {
			OrderID            string             `json:"orderId"`
			Transaction        transactionInfo    `json:"transaction"`
			TransactionSummary transactionSummary `json:"transactionSummary"`
		}{p.key.orderID, transactionInfo{amount, "Refund", timeStamp(now), txID, req.text}, summaryOf(p)}, nil
	})
}

// handleCancel serves PUT /ecomm/v2/payments/{orderId}/cancel.
func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) {
	s.action(w, r, "cancel", false, false, true, func(p *payment, req actionRequest, reqID string) (any, *apiError) {
		now := s.now()
		txID := s.nextTxID()
		switch {
		case p.state == StateInitiate:
			p.state = StateCancel
			p.addLog(now, opCancel, p.amount, reqID, txID, req.text)
		case p.state != StateReserve || p.released:
			return nil, newVippsError(http.StatusBadRequest, groupVippsError, "91",
				"Transaction not allowed: payment is already cancelled or expired")
		case p.captured == 0:
			p.state = StateVoid
			p.addLog(now, opVoid, p.amount, reqID, txID, req.text)
		case p.captured >= p.amount:
			return nil, newVippsError(http.StatusBadRequest, groupPayment, "51",
				"Cannot cancel an already captured order (refund instead)")
		case !req.release:
			return nil, newVippsError(http.StatusBadRequest, groupPayment, "51",
				"Cannot cancel a partially captured order unless shouldReleaseRemainingFunds is true")
		default:
			released := p.amount - p.captured
			p.released = true
			p.addLog(now, opVoid, released, reqID, txID, req.text)
		}
		return struct {
			OrderID            string             `json:"orderId"`
			TransactionInfo    transactionInfo    `json:"transactionInfo"`
			TransactionSummary transactionSummary `json:"transactionSummary"`
		}{p.key.orderID, transactionInfo{p.amount, "Cancelled", timeStamp(now), txID, req.text}, summaryOf(p)}, nil
	})
}

// handleForceApprove serves the test environment's
// POST /ecomm/v2/integration-test/payments/{orderId}/approve.
func (s *Server) handleForceApprove(w http.ResponseWriter, r *http.Request) {
	t, ok := s.authorize(w, r)
	if !ok {
		return
	}
	orderID := r.PathValue("orderId")
	reqID, e := requestID(r, false)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	body, e := readJSONBody(w, r)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	var f fields
	phone, hasPhone := f.str(body, "customerPhoneNumber", "customerPhoneNumber", false, 0)
	if hasPhone && !phonePattern.MatchString(phone) {
		f.invalid("customerPhoneNumber", "must be 8 digits")
	}
	token, _ := f.str(body, "token", "token", true, 0)
	if e := f.err(); e != nil {
		writeAPIError(w, e)
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	p, found := s.lookupLocked(paymentKey{msn: t.MerchantSerialNumber, orderID: orderID})
	if !found {
		writeAPIError(w, unknownOrder(orderID))
		return
	}
	if p.express != nil {
		writeAPIError(w, invalidRequest("paymentType.invalid", "force approve does not support express payments"))
		return
	}
	if !secureEqual(token, p.landingToken) {
		writeAPIError(w, invalidRequest("token.invalid", "token is not the one in this payment's url"))
		return
	}
	fingerprint := phone + "|" + token
	if reqID != "" {
		if rec, seen := p.idem["approve:"+reqID]; seen {
			if rec.fingerprint != fingerprint {
				writeAPIError(w, newVippsError(http.StatusConflict, groupVippsError, "93",
					"Request must be identical in an idempotent retry: X-Request-Id %q was used with a different body", reqID))
				return
			}
			w.WriteHeader(http.StatusOK)
			return
		}
	}
	if p.state != StateInitiate {
		writeAPIError(w, newVippsError(http.StatusBadRequest, groupVippsError, "92",
			"Transaction already processed: payment is %s", p.state))
		return
	}
	s.reserveLocked(p, phone, reqID)
	if reqID != "" {
		p.idem["approve:"+reqID] = idemRecord{fingerprint: fingerprint, status: http.StatusOK}
	}
	w.WriteHeader(http.StatusOK)
}
