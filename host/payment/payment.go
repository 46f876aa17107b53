// Package payment owns kasse's canonical, provider-neutral model of a checkout: the checkout a shop asks
// for, the session that tracks its payment, the payment states, and the one state machine that moves a
// session between them. It does no I/O; the checkout service, the stores and the HTTP API all share it.
package payment

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"
)

// State is a session's canonical payment state.
type State string

// The canonical states. Final states never change again, except captured, which can still be refunded
// or partly captured further.
const (
	// StatePending: created, the customer has not approved yet.
	StatePending State = "pending"
	// StateAuthorized: the customer approved; the amount is reserved, nothing captured.
	StateAuthorized State = "authorized"
	// StateCaptured: some or all of the reserved amount was captured (refunds may be partial).
	StateCaptured State = "captured"
	// StateRefunded: everything captured was refunded and nothing is left to capture. Final.
	StateRefunded State = "refunded"
	// StateCancelled: the merchant cancelled before anything was captured. Final.
	StateCancelled State = "cancelled"
	// StateRejected: the customer declined or cancelled in the app. Final.
	StateRejected State = "rejected"
	// StateExpired: the customer never acted before the payment timed out. Final.
	StateExpired State = "expired"
	// StateFailed: the provider could not reserve the amount (card refused, insufficient funds). Final.
	StateFailed State = "failed"
)

// States lists every canonical state.
var States = []State{StatePending, StateAuthorized, StateCaptured, StateRefunded, StateCancelled,
	StateRejected, StateExpired, StateFailed}

// Valid reports whether s is a canonical state.
func (s State) Valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// Final reports whether no further transition can leave s.
func (s State) Final() bool {
	switch s {
	case StateRefunded, StateCancelled, StateRejected, StateExpired, StateFailed:
		return true
	}
	return false
}

// Settled reports whether the customer's part of the payment is over (approved or ended), so that the
// reconciler no longer needs to poll.
func (s State) Settled() bool { return s != StatePending }

// Customer is who pays, as far as the shop knows.
type Customer struct {
	// PhoneNumber is an 8-digit Norwegian mobile number, used to prefill the Vipps landing page.
	PhoneNumber string `json:"phoneNumber,omitempty"`
}

// Line is one order line; money in minor units.
type Line struct {
	SKU       string `json:"sku,omitempty"`
	Name      string `json:"name"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unitPrice"`
}

// Checkout is the canonical checkout a shop (directly or through a platform adapter) asks kasse to take
// payment for. It is validated against schemas/checkout.schema.json before it gets here.
type Checkout struct {
	Merchant string `json:"merchant"`
	// Reference is the shop's own order reference.
	Reference string `json:"reference"`
	// Amount in minor units (øre).
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	// Description is shown to the customer in Vipps.
	Description string `json:"description"`
	// ReturnURL is the shop's order confirmation page the customer lands on afterwards.
	ReturnURL string    `json:"returnUrl"`
	Customer  *Customer `json:"customer,omitempty"`
	Lines     []Line    `json:"lines,omitempty"`
	// UserFlow, when set, asks for how the customer reaches the payment in the Vipps app: one of the
	// UserFlow* constants. Empty keeps the default: PUSH_MESSAGE when Customer names a phone number (where
	// the provider supports it), WEB_REDIRECT otherwise.
	UserFlow string `json:"userFlow,omitempty"`
}

// User flows a checkout may ask for (Checkout.UserFlow), named as the Vipps ePayment API names them.
const (
	// UserFlowWebRedirect is the browser flow: the landing page on a desktop, an app switch on a phone.
	UserFlowWebRedirect = "WEB_REDIRECT"
	// UserFlowNativeRedirect is for a checkout started in the merchant's own app: the redirect URL is an
	// app deeplink (vipps://) that switches straight to the Vipps app.
	UserFlowNativeRedirect = "NATIVE_REDIRECT"
	// UserFlowPushMessage skips the landing page: Vipps sends a push message to the phone number in
	// Customer, which it requires; there is no redirect URL.
	UserFlowPushMessage = "PUSH_MESSAGE"
	// UserFlowQR answers with the target of a QR code the customer scans with the Vipps app.
	UserFlowQR = "QR"
)

// Event records one change to a session: when, from which state to which, and why.
type Event struct {
	At     time.Time `json:"at"`
	From   State     `json:"from"`
	To     State     `json:"to"`
	Cause  string    `json:"cause"`
	Amount int64     `json:"amount,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

// Session is the stored state of one checkout's payment.
type Session struct {
	ID          string    `json:"id"`
	Merchant    string    `json:"merchant"`
	Reference   string    `json:"reference"`
	State       State     `json:"state"`
	Amount      int64     `json:"amount"`
	Currency    string    `json:"currency"`
	Description string    `json:"description"`
	ReturnURL   string    `json:"returnUrl"`
	Customer    *Customer `json:"customer,omitempty"`
	Lines       []Line    `json:"lines,omitempty"`
	// UserFlow is the checkout's requested user flow (Checkout.UserFlow); empty for the default.
	UserFlow string `json:"userFlow,omitempty"`

	AuthorizedAmount int64 `json:"authorizedAmount"`
	CapturedAmount   int64 `json:"capturedAmount"`
	RefundedAmount   int64 `json:"refundedAmount"`
	CancelledAmount  int64 `json:"cancelledAmount"`

	// Plugin and PluginVersion name the payment plugin that created the session; later operations use it.
	Plugin        string `json:"plugin"`
	PluginVersion string `json:"pluginVersion,omitempty"`
	// ProviderReference is the provider's id for the payment (Vipps eCom orderId).
	ProviderReference string `json:"providerReference"`
	RedirectURL       string `json:"redirectUrl,omitempty"`
	// CallbackToken is the per-session secret the provider echoes on callbacks. Never shown by the API.
	CallbackToken string `json:"callbackToken,omitempty"`
	// Reason explains a rejected, expired or failed payment.
	Reason string `json:"reason,omitempty"`

	// Express is true for an Express Checkout session: the customer chooses address and shipping with
	// the provider. Lines (with Amount) are the cart as it was at initiation, from which shipping is
	// computed.
	Express bool `json:"express,omitempty"`
	// Contact is who the Express customer is, as the provider told. Personal data: consent removal
	// clears it.
	Contact Contact `json:"contact,omitempty,omitzero"`
	// Shipping is the delivery the Express customer chose: method, cost (in øre, included in the
	// authorized amount) and address. Consent removal clears the address.
	Shipping Shipping `json:"shipping,omitempty,omitzero"`

	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	// ExpiresAt is when a still-pending session is given up on as expired.
	ExpiresAt time.Time `json:"expiresAt"`
	History   []Event   `json:"history"`

	// Operations are the money operations kasse sent to the provider for this session, oldest first,
	// each recorded before it was sent. At most one is in doubt.
	Operations []ProviderOp `json:"operations,omitempty"`
	// Outbox holds the notices for the shop's platform that are written but not yet handed to the
	// delivery queue. Internal: the API does not show it.
	Outbox []Notice `json:"outbox,omitempty"`
	// NoticeSeq is the sequence number of the session's newest notice.
	NoticeSeq int64 `json:"noticeSeq,omitempty"`
	// NextCheckAt is when the reconciler must look at the session next (a poll while pending, an
	// operation in doubt, notices not yet relayed, a check that kasse's amounts match the provider's);
	// zero when nothing is needed. The store keeps its poll schedule in step with it, in the same atomic
	// write. Internal: the API does not show it.
	NextCheckAt time.Time `json:"nextCheckAt,omitzero"`
	// Settlement is what the merchant's ledger says was settled for the session; nil until a ledger
	// entry for it has been read.
	Settlement *Settlement `json:"settlement,omitempty"`
	// Applied holds the digests (MessageDigest) of the last provider messages (callbacks, webhooks) whose
	// effect is in the session, newest last, at most MaxApplied, each written in the same write as its
	// effect: the same authenticated message again changes nothing, so it can be answered without reading
	// it again. Internal: the API does not show it.
	Applied []string `json:"applied,omitempty"`
	// Revision counts stored changes; stores use it to detect lost updates.
	Revision int64 `json:"revision"`
}

// MaxApplied bounds Session.Applied: a payment gets a handful of distinct callbacks and webhooks.
const MaxApplied = 8

// MessageDigest names a provider message by the SHA-256 of its kind (e.g. "callback") and its bytes.
func MessageDigest(kind string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write(body)
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// HasApplied reports whether the message with digest d is among those applied to the session.
func (s *Session) HasApplied(d string) bool { return slices.Contains(s.Applied, d) }

// MarkApplied records digest d as applied, dropping the oldest beyond MaxApplied, and reports whether
// it was new.
func (s *Session) MarkApplied(d string) bool {
	if d == "" || s.HasApplied(d) {
		return false
	}
	s.Applied = append(s.Applied, d)
	if n := len(s.Applied) - MaxApplied; n > 0 {
		s.Applied = slices.Delete(s.Applied, 0, n)
	}
	return true
}

// Contact is a customer as the payment provider knows them (Express Checkout). Every field is personal
// data except that UserID is the provider's pseudonymous id, which consent removal names.
type Contact struct {
	// UserID is the provider's id of the user (Vipps userId).
	UserID      string `json:"userId,omitempty"`
	FirstName   string `json:"firstName,omitempty"`
	LastName    string `json:"lastName,omitempty"`
	Email       string `json:"email,omitempty"`
	PhoneNumber string `json:"phoneNumber,omitempty"`
}

// Address is a delivery address.
type Address struct {
	Line1    string `json:"line1,omitempty"`
	Line2    string `json:"line2,omitempty"`
	PostCode string `json:"postCode,omitempty"`
	City     string `json:"city,omitempty"`
	// Country is an ISO 3166-1 alpha-2 code, e.g. "NO".
	Country string `json:"country,omitempty"`
}

// Shipping is the shipping an Express customer chose.
type Shipping struct {
	// MethodID and Method are the merchant's id and name of the shipping method.
	MethodID string `json:"methodId,omitempty"`
	Method   string `json:"method,omitempty"`
	// Cost is the shipping cost in minor units (øre); it is part of the authorized amount.
	Cost    int64   `json:"cost,omitempty"`
	Address Address `json:"address,omitempty,omitzero"`
}

// Observation is what one provider answer or callback says about a payment. Amounts of -1 are unknown.
type Observation struct {
	State            State
	AuthorizedAmount int64
	CapturedAmount   int64
	RefundedAmount   int64
	CancelledAmount  int64
	Reason           string
}

// ErrTransition is returned (wrapped) when an operation is not allowed in the session's state.
var ErrTransition = errors.New("transition not allowed")

// Apply folds an observation into the session. It is idempotent and order-tolerant: amounts only grow,
// a state only moves forward, and a stale or repeated observation changes nothing. It reports whether the
// session changed; if so it appends an Event with the cause.
func (s *Session) Apply(o Observation, cause string, now time.Time) bool {
	before := *s
	grow := func(cur *int64, v int64) {
		if v > *cur {
			*cur = v
		}
	}
	grow(&s.AuthorizedAmount, o.AuthorizedAmount)
	grow(&s.CapturedAmount, o.CapturedAmount)
	grow(&s.RefundedAmount, o.RefundedAmount)
	grow(&s.CancelledAmount, o.CancelledAmount)
	if s.CapturedAmount > 0 && s.AuthorizedAmount < s.CapturedAmount {
		s.AuthorizedAmount = s.CapturedAmount
	}

	next := s.State
	switch {
	case s.State.Final():
		// Nothing leaves a final state.
	case o.State == StateRejected || o.State == StateExpired || o.State == StateFailed:
		if s.State == StatePending {
			next = o.State
		}
	default:
		next = derive(s, o.State)
	}
	if next != s.State && o.Reason != "" {
		s.Reason = o.Reason
	}
	s.State = next

	changed := s.State != before.State || s.AuthorizedAmount != before.AuthorizedAmount ||
		s.CapturedAmount != before.CapturedAmount || s.RefundedAmount != before.RefundedAmount ||
		s.CancelledAmount != before.CancelledAmount
	if !changed {
		return false
	}
	s.History = append(s.History, Event{At: now.UTC(), From: before.State, To: s.State, Cause: cause,
		Amount: movedAmount(&before, s), Detail: o.Reason})
	s.UpdatedAt = now.UTC()
	return true
}

// derive computes the state implied by the session's amounts and the state the provider reported.
func derive(s *Session, reported State) State {
	cancelled := reported == StateCancelled || s.CancelledAmount > 0
	switch {
	case s.CapturedAmount > 0 && s.RefundedAmount >= s.CapturedAmount &&
		(cancelled || s.CapturedAmount >= s.AuthorizedAmount):
		return StateRefunded
	case s.CapturedAmount > 0:
		return StateCaptured
	case cancelled:
		return StateCancelled
	case s.AuthorizedAmount > 0 || reported == StateAuthorized:
		if s.State == StatePending || s.State == StateAuthorized {
			return StateAuthorized
		}
	}
	return s.State
}

func movedAmount(before, after *Session) int64 {
	for _, d := range []int64{
		after.RefundedAmount - before.RefundedAmount,
		after.CapturedAmount - before.CapturedAmount,
		after.CancelledAmount - before.CancelledAmount,
		after.AuthorizedAmount - before.AuthorizedAmount,
	} {
		if d > 0 {
			return d
		}
	}
	return 0
}

// CheckCapture reports whether amount (0 = the rest) can be captured now, and returns the amount to capture.
func (s *Session) CheckCapture(amount int64) (int64, error) {
	if s.State != StateAuthorized && s.State != StateCaptured {
		return 0, fmt.Errorf("capture in state %s: %w", s.State, ErrTransition)
	}
	remaining := s.AuthorizedAmount - s.CapturedAmount - s.CancelledAmount
	if remaining <= 0 {
		return 0, fmt.Errorf("capture: nothing left to capture: %w", ErrTransition)
	}
	if amount == 0 {
		return remaining, nil
	}
	if amount < 0 || amount > remaining {
		return 0, fmt.Errorf("capture %d: only %d left to capture: %w", amount, remaining, ErrTransition)
	}
	return amount, nil
}

// CheckRefund reports whether amount (0 = everything still refundable) can be refunded now.
func (s *Session) CheckRefund(amount int64) (int64, error) {
	if s.State != StateCaptured {
		return 0, fmt.Errorf("refund in state %s: %w", s.State, ErrTransition)
	}
	remaining := s.CapturedAmount - s.RefundedAmount
	if remaining <= 0 {
		return 0, fmt.Errorf("refund: nothing left to refund: %w", ErrTransition)
	}
	if amount == 0 {
		return remaining, nil
	}
	if amount < 0 || amount > remaining {
		return 0, fmt.Errorf("refund %d: only %d left to refund: %w", amount, remaining, ErrTransition)
	}
	return amount, nil
}

// CheckCancel reports whether the session can be cancelled now.
func (s *Session) CheckCancel() error {
	switch s.State {
	case StatePending, StateAuthorized:
		return nil
	case StateCaptured:
		if s.AuthorizedAmount-s.CapturedAmount-s.CancelledAmount > 0 {
			return nil // releases the uncaptured rest
		}
	}
	return fmt.Errorf("cancel in state %s: %w", s.State, ErrTransition)
}
