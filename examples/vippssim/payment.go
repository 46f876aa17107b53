package vippssim

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"
)

// State is where a payment is in its life, as the user and the merchant moved
// it. Money movements after reservation (captures, refunds, a released
// remainder) are in the amounts of [PaymentSnapshot], not in the state.
type State string

// Payment states, named after the /details log operations (REJECTED after /status).
const (
	// StateInitiate: waiting for the user.
	StateInitiate State = "INITIATE"
	// StateReserve: the user approved; the amount is reserved (and may since
	// have been captured, refunded or partly released).
	StateReserve State = "RESERVE"
	// StateCancel: cancelled before reservation, by the user in the app or by
	// the merchant.
	StateCancel State = "CANCEL"
	// StateVoid: the merchant cancelled the reservation before any capture.
	StateVoid State = "VOID"
	// StateRejected: the user never acted and the payment expired.
	StateRejected State = "REJECTED"
)

// Transaction log operations (schema TransactionLogHistory, property operation).
const (
	opInitiate = "INITIATE"
	opReserve  = "RESERVE"
	opCapture  = "CAPTURE"
	opRefund   = "REFUND"
	opCancel   = "CANCEL"
	opVoid     = "VOID"
)

// LogEntry is one line of a payment's transaction log, as /details shows it.
type LogEntry struct {
	// Operation is INITIATE, RESERVE, CAPTURE, REFUND, CANCEL or VOID.
	Operation string `json:"operation"`
	// Amount is the amount the operation concerned, in øre.
	Amount int64 `json:"amount"`
	// Success is operationSuccess; refused operations are not logged, so it is always true.
	Success bool `json:"operationSuccess"`
	// RequestID is the X-Request-Id of the call, if any.
	RequestID string `json:"requestId"`
	// TransactionID identifies the operation (10 digits).
	TransactionID string `json:"transactionId"`
	// TransactionText is the text given with the operation.
	TransactionText string `json:"transactionText"`
	// Time is when it happened (UTC).
	Time time.Time `json:"timeStamp"`
}

// PaymentSnapshot is a copy of a payment's state, for test assertions.
type PaymentSnapshot struct {
	// MerchantSerialNumber and OrderID identify the payment.
	MerchantSerialNumber string `json:"merchantSerialNumber"`
	OrderID              string `json:"orderId"`
	// State is where the payment is in its life.
	State State `json:"state"`
	// Amount is the amount initiated (and reserved), in øre.
	Amount int64 `json:"amount"`
	// Authorized is the amount reserved by the user's approval (0 before it,
	// or if the user never approved); Cancelled is what a merchant cancel
	// released from that reservation. Both in øre, as ePayment's aggregate.
	Authorized int64 `json:"authorizedAmount"`
	Cancelled  int64 `json:"cancelledAmount"`
	// Captured, Refunded and the remaining amounts are /details'
	// transactionSummary, in øre.
	Captured           int64 `json:"capturedAmount"`
	Refunded           int64 `json:"refundedAmount"`
	RemainingToCapture int64 `json:"remainingAmountToCapture"`
	RemainingToRefund  int64 `json:"remainingAmountToRefund"`
	// TransactionText is the text given at initiate.
	TransactionText string `json:"transactionText"`
	// CustomerPhone is the number the user gave on the landing page or in
	// force approve; before that, customerInfo.mobileNumber if sent.
	CustomerPhone string `json:"customerPhone,omitempty"`
	// CallbackPrefix, FallBack and IsApp are merchantInfo's values.
	CallbackPrefix string `json:"callbackPrefix"`
	FallBack       string `json:"fallBack"`
	IsApp          bool   `json:"isApp"`
	// URL is what initiate returned; LandingToken is its token parameter.
	URL          string `json:"url"`
	LandingToken string `json:"landingToken"`
	// TransactionID is the id of the reservation, sent in the callback.
	TransactionID string `json:"transactionId"`
	// CreatedAt is when the payment was initiated; ExpiresAt when it expires
	// if the user does not act (CreatedAt + PaymentTTL).
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	// Log is the transaction log, oldest first (/details shows it newest first).
	Log []LogEntry `json:"log"`
	// Express is set for express payments: the shipping offered and chosen, the address and the userId.
	Express *ExpressSnapshot `json:"express,omitempty"`
}

type paymentKey struct{ msn, orderID string }

// idemRecord is a stored answer for an X-Request-Id or Idempotency-Key.
type idemRecord struct {
	fingerprint string
	status      int
	body        []byte
	amount      int64      // what the operation moved, for the operations log
	key         paymentKey // the payment it concerned (ePayment create)
}

type payment struct {
	key            paymentKey
	amount         int64
	text           string
	callbackPrefix string
	fallBack       string
	authToken      string
	isApp          bool
	phone          string
	landingToken   string
	url            string
	txID           string
	created        time.Time
	expires        time.Time

	state    State
	reacted  bool // the user approved or rejected: /details has a transactionSummary
	captured int64
	refunded int64
	released bool // the remainder after a partial capture was cancelled
	log      []LogEntry
	idem     map[string]idemRecord // "capture:<X-Request-Id>" etc.; "initiate:<X-Request-Id>" for the first answer
	express  *expressPayment       // nil for regular payments (express.go)
}

func (p *payment) remainingToCapture() int64 {
	if p.state != StateReserve || p.released {
		return 0
	}
	return p.amount - p.captured
}

func (p *payment) remainingToRefund() int64 { return p.captured - p.refunded }

func (p *payment) authorizedAmount() int64 {
	if p.state == StateReserve || p.state == StateVoid {
		return p.amount
	}
	return 0
}

func (p *payment) cancelledAmount() int64 {
	switch {
	case p.state == StateVoid:
		return p.amount
	case p.released:
		return p.amount - p.captured
	}
	return 0
}

func (p *payment) addLog(now time.Time, op string, amount int64, requestID, txID, text string) {
	p.log = append(p.log, LogEntry{
		Operation: op, Amount: amount, Success: true, RequestID: requestID,
		TransactionID: txID, TransactionText: text, Time: now,
	})
}

func (p *payment) snapshot() PaymentSnapshot {
	return PaymentSnapshot{
		MerchantSerialNumber: p.key.msn,
		OrderID:              p.key.orderID,
		State:                p.state,
		Amount:               p.amount,
		Authorized:           p.authorizedAmount(),
		Cancelled:            p.cancelledAmount(),
		Captured:             p.captured,
		Refunded:             p.refunded,
		RemainingToCapture:   p.remainingToCapture(),
		RemainingToRefund:    p.remainingToRefund(),
		TransactionText:      p.text,
		CustomerPhone:        p.phone,
		CallbackPrefix:       p.callbackPrefix,
		FallBack:             p.fallBack,
		IsApp:                p.isApp,
		URL:                  p.url,
		LandingToken:         p.landingToken,
		TransactionID:        p.txID,
		CreatedAt:            p.created,
		ExpiresAt:            p.expires,
		Log:                  append([]LogEntry(nil), p.log...),
		Express:              p.express.snapshot(),
	}
}

// nextTxID returns a new 10-digit transaction id (the spec's ^\d{10,}$).
// Call with s.mu held.
func (s *Server) nextTxID() string {
	s.txSeq++
	return fmt.Sprintf("%010d", 5001000000+s.txSeq)
}

func newLandingToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// timeStamp formats t as the API does: ISO-8601 UTC with milliseconds.
func timeStamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// lookupLocked finds a payment and applies lazy expiry. Call with s.mu held.
func (s *Server) lookupLocked(k paymentKey) (*payment, bool) {
	p, ok := s.payments[k]
	if !ok {
		return nil, false
	}
	s.expireIfDueLocked(p)
	return p, true
}

// findByOrderLocked finds a payment by orderId alone, for the test controls.
// Call with s.mu held.
func (s *Server) findByOrderLocked(orderID string) (*payment, error) {
	var found *payment
	for k, p := range s.payments {
		if k.orderID != orderID {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("find %q: %w", orderID, ErrAmbiguousOrderID)
		}
		found = p
	}
	if found == nil {
		return nil, fmt.Errorf("find %q: %w", orderID, ErrUnknownPayment)
	}
	s.expireIfDueLocked(found)
	return found, nil
}

func (s *Server) expireIfDueLocked(p *payment) {
	if p.state == StateInitiate && !s.now().Before(p.expires) {
		s.expireLocked(p)
	}
}

// reserveLocked is the user approving the payment. Call with s.mu held.
func (s *Server) reserveLocked(p *payment, phone, requestID string) {
	now := s.now()
	p.state = StateReserve
	p.reacted = true
	if phone != "" {
		p.phone = phone
	}
	p.addLog(now, opReserve, p.amount, requestID, p.txID, p.text)
	status := "RESERVED"
	if p.express != nil {
		status = "RESERVE" // the express callback's spelling
	}
	s.sendCallbackLocked(p, callbackInfo{status: status, txID: p.txID, at: now})
}

// userCancelLocked is the user rejecting the payment. Call with s.mu held.
func (s *Server) userCancelLocked(p *payment) {
	now := s.now()
	p.state = StateCancel
	p.reacted = true
	p.addLog(now, opCancel, p.amount, "", p.txID, p.text)
	s.sendCallbackLocked(p, callbackInfo{status: "CANCELLED", txID: p.txID, at: now})
}

// expireLocked is the user never acting. Call with s.mu held.
func (s *Server) expireLocked(p *payment) {
	now := s.now()
	p.state = StateRejected
	p.addLog(now, opCancel, p.amount, "", p.txID, p.text)
	s.sendCallbackLocked(p, callbackInfo{status: "REJECTED", at: now, errorInfo: &vippsError{
		ErrorGroup:   groupPayment,
		ErrorCode:    "45",
		ErrorMessage: "User has not acted upon the payment",
		ContextID:    newUUID(),
	}})
}
