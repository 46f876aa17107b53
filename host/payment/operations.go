package payment

import (
	"fmt"
	"strconv"
	"time"
)

// OpStatus is how far kasse knows the outcome of a provider operation.
type OpStatus string

// The operation statuses.
const (
	// OpInDoubt: recorded before it was sent; kasse does not know yet whether the provider carried it
	// out (not sent yet, sent without an answer, or answered with a timeout or 5xx). It is settled by
	// sending it again with the same request id, or by a status check, never by a new request.
	OpInDoubt OpStatus = "in-doubt"
	// OpSucceeded: the provider carried it out.
	OpSucceeded OpStatus = "succeeded"
	// OpFailed: the provider refused it, or it was never sent; nothing changed at the provider.
	OpFailed OpStatus = "failed"
)

// The kinds of provider operation (ProviderOp.Kind).
const (
	OpKindInitiate = "initiate"
	OpKindCapture  = "capture"
	OpKindRefund   = "refund"
	OpKindCancel   = "cancel"
)

// ProviderOp is one money operation kasse sent, or is about to send, to the payment provider. It is
// written to the session before the request leaves kasse, so a crash, a timeout or a lost answer
// leaves a record that says what may have happened and the id that makes the provider deduplicate it.
type ProviderOp struct {
	// ID is the provider request id: eCom X-Request-Id, ePayment Idempotency-Key. Every attempt of the
	// operation sends this id, so the provider applies it at most once.
	ID string `json:"id"`
	// Kind is one of the OpKind constants.
	Kind string `json:"kind"`
	// Amount is the amount the operation moves, in minor units (0 for cancel).
	Amount int64 `json:"amount"`
	// Text is the transaction text sent with it.
	Text   string   `json:"text,omitempty"`
	Status OpStatus `json:"status"`
	// Attempts counts the sends so far.
	Attempts int `json:"attempts"`
	// At is when the operation was recorded; SettledAt when its outcome became known.
	At        time.Time `json:"at"`
	SettledAt time.Time `json:"settledAt,omitzero"`
	// LastError is why the last attempt did not settle it, or why it failed.
	LastError string `json:"lastError,omitempty"`
	// Key identifies the shop request that asked for it (a digest of its Idempotency-Key), so that the
	// shop's retry finds the operation instead of starting another. Empty without a key.
	Key string `json:"key,omitempty"`
}

// InDoubt returns the session's operation whose outcome is not known yet, or nil. There is at most one:
// kasse starts no new operation on a session while one is in doubt.
func (s *Session) InDoubt() *ProviderOp {
	for i := range s.Operations {
		if s.Operations[i].Status == OpInDoubt {
			return &s.Operations[i]
		}
	}
	return nil
}

// Op returns the operation with request id id, or nil.
func (s *Session) Op(id string) *ProviderOp {
	for i := range s.Operations {
		if s.Operations[i].ID == id {
			return &s.Operations[i]
		}
	}
	return nil
}

// OpByKey returns the newest operation recorded for the shop request key, or nil.
func (s *Session) OpByKey(key string) *ProviderOp {
	if key == "" {
		return nil
	}
	for i := len(s.Operations) - 1; i >= 0; i-- {
		if s.Operations[i].Key == key {
			return &s.Operations[i]
		}
	}
	return nil
}

// SettleOp records the outcome of operation id. It reports whether anything changed: an operation that
// is already settled keeps its first outcome, so a late duplicate answer changes nothing.
func (s *Session) SettleOp(id string, status OpStatus, detail string, now time.Time) bool {
	op := s.Op(id)
	if op == nil || op.Status != OpInDoubt || status == OpInDoubt {
		return false
	}
	op.Status = status
	op.SettledAt = now.UTC()
	op.LastError = detail
	cause := op.Kind + " " + string(status)
	s.History = append(s.History, Event{At: now.UTC(), From: s.State, To: s.State, Cause: cause,
		Amount: op.Amount, Detail: "request " + op.ID + detailSuffix(detail)})
	s.UpdatedAt = now.UTC()
	return true
}

func detailSuffix(d string) string {
	if d == "" {
		return ""
	}
	return ": " + d
}

// Amounts are a session's absolute money figures, in minor units.
type Amounts struct {
	Authorized int64 `json:"authorized"`
	Captured   int64 `json:"captured"`
	Refunded   int64 `json:"refunded"`
	Cancelled  int64 `json:"cancelled"`
}

// Amounts returns the session's absolute figures.
func (s *Session) Amounts() Amounts {
	return Amounts{Authorized: s.AuthorizedAmount, Captured: s.CapturedAmount, Refunded: s.RefundedAmount,
		Cancelled: s.CancelledAmount}
}

// String formats the figures for a history entry.
func (a Amounts) String() string {
	return fmt.Sprintf("authorized %d, captured %d, refunded %d, cancelled %d", a.Authorized, a.Captured,
		a.Refunded, a.Cancelled)
}

// CauseDiverged is the history cause of Converge's change.
const CauseDiverged = "diverged"

// Converge makes the session's amounts equal the provider's figures when they differ (the provider is
// the source of truth for money), and records the divergence with both figures in the history. The
// state follows the amounts. It reports whether the session changed. Callers only converge a session
// with no operation in doubt, whose effect the provider may not show yet.
func (s *Session) Converge(provider Amounts, providerState State, now time.Time) bool {
	had := s.Amounts()
	if had == provider {
		return false
	}
	before := s.State
	s.AuthorizedAmount, s.CapturedAmount = provider.Authorized, provider.Captured
	s.RefundedAmount, s.CancelledAmount = provider.Refunded, provider.Cancelled
	switch {
	case s.CapturedAmount > 0 && s.RefundedAmount >= s.CapturedAmount &&
		(s.CancelledAmount > 0 || s.CapturedAmount >= s.AuthorizedAmount):
		s.State = StateRefunded
	case s.CapturedAmount > 0:
		s.State = StateCaptured
	case s.CancelledAmount > 0 || providerState == StateCancelled:
		s.State = StateCancelled
	case s.AuthorizedAmount > 0:
		if s.State != StateExpired && s.State != StateRejected && s.State != StateFailed {
			s.State = StateAuthorized
		}
	}
	s.History = append(s.History, Event{At: now.UTC(), From: before, To: s.State, Cause: CauseDiverged,
		Detail: "kasse had " + had.String() + "; the provider has " + provider.String()})
	s.UpdatedAt = now.UTC()
	return true
}

// Notice statuses: what a change of the payment means for the shop.
const (
	NoticePaid      = "paid"
	NoticeCaptured  = "captured"
	NoticeRefunded  = "refunded"
	NoticeCancelled = "cancelled"
	NoticeFailed    = "failed"
	// NoticeSettled: the merchant's ledger scheduled the payment's money for payout (Notice.Settlement).
	NoticeSettled = "settled"
)

// Notice is one status update the shop's platform must hear about. It is written to the session's
// Outbox in the same store operation as the change that causes it, so a crash cannot separate them, and
// relayed to the durable delivery queue after. It carries the session's absolute amounts after the
// change (plus the amount this change moved), a delivery id that stays the same on every resend, and a
// sequence number per session, so a receiver can drop duplicates and put updates in order.
type Notice struct {
	// Seq is the notice's number within its session: 1, 2, 3, ...
	Seq int64 `json:"seq"`
	// DeliveryID is unique per notice and the same on every delivery attempt: "<session>.<seq>".
	DeliveryID string `json:"deliveryId"`
	// Status is one of the Notice* constants.
	Status string `json:"status"`
	// Amount is what this change moved: the reserved amount for paid, the amount captured, refunded or
	// released; the checkout amount for failed.
	Amount int64 `json:"amount"`
	// Totals are the session's absolute amounts after the change.
	Totals Amounts `json:"totals"`
	// State is the session's state after the change.
	State  State     `json:"state"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
	// Settlement is what the ledger settled, for NoticeSettled (without the entry ids).
	Settlement *Settlement `json:"settlement,omitempty"`
}

// RecordSettledNotice appends a NoticeSettled notice with the session's settlement to the Outbox.
func (s *Session) RecordSettledNotice(now time.Time) {
	st := s.Settlement.Clone()
	if st != nil {
		st.Entries = nil
	}
	s.NoticeSeq++
	s.Outbox = append(s.Outbox, Notice{Seq: s.NoticeSeq, DeliveryID: s.ID + "." + strconv.FormatInt(s.NoticeSeq, 10),
		Status: NoticeSettled, Amount: st.netOrZero(), Totals: s.Amounts(), State: s.State, At: now.UTC(),
		Settlement: st})
}

// RecordNotices appends to the session's Outbox the notices that the change from before to the session
// as it is now means for the shop, numbering them after the session's last notice. It returns how many
// it appended.
func (s *Session) RecordNotices(before *Session, now time.Time) int {
	var b Session
	if before != nil {
		b = *before
	} else {
		b.State = StatePending
	}
	add := func(status string, amount int64, reason string) {
		s.NoticeSeq++
		s.Outbox = append(s.Outbox, Notice{Seq: s.NoticeSeq,
			DeliveryID: s.ID + "." + strconv.FormatInt(s.NoticeSeq, 10), Status: status, Amount: amount,
			Totals: s.Amounts(), State: s.State, Reason: reason, At: now.UTC()})
	}
	n := len(s.Outbox)
	wasReserved := b.State != StatePending && !b.State.Final() || b.AuthorizedAmount > 0
	isReserved := s.AuthorizedAmount > 0 || s.State == StateAuthorized || s.State == StateCaptured ||
		s.State == StateRefunded
	if !wasReserved && isReserved {
		add(NoticePaid, max(s.AuthorizedAmount, s.Amount), "")
	}
	if d := s.CapturedAmount - b.CapturedAmount; d > 0 {
		add(NoticeCaptured, d, "")
	}
	if d := s.RefundedAmount - b.RefundedAmount; d > 0 {
		add(NoticeRefunded, d, "")
	}
	if s.State == StateCancelled && b.State != StateCancelled {
		add(NoticeCancelled, s.CancelledAmount, "")
	}
	switch s.State {
	case StateRejected, StateExpired, StateFailed:
		if b.State == StatePending {
			reason := s.Reason
			if reason == "" {
				reason = string(s.State)
			}
			add(NoticeFailed, s.Amount, reason)
		}
	}
	return len(s.Outbox) - n
}

// CauseNoticeQueued is the history cause DropNotices records for each notice handed to the delivery
// queue; CauseNoticeDelivered the one the host records when the platform took it.
const (
	CauseNoticeQueued    = "platform update queued"
	CauseNoticeDelivered = "platform update delivered"
	// CauseNoticeWithheld: the notice was not sent, because the session no longer speaks for the shop's
	// order (host/notify, Withhold); the event's detail says why.
	CauseNoticeWithheld = "platform update withheld"
	// CausePaidNotCurrent: the session took money while another session was the shop order's current
	// checkout (the order's reference points at that one, so the shop's own capture and cancel reach that
	// one, not this): an operator must decide what becomes of this money.
	CausePaidNotCurrent = "paid while not the order's current checkout"
	// CauseOrderPaidElsewhere, on the order's current session: another session of the order took money.
	// A failure of this session then no longer tells the shop its order failed.
	CauseOrderPaidElsewhere = "another session of the order took money"
)

// DropNotices removes the notices with the given delivery ids from the Outbox (they were handed to the
// delivery queue) and records each in the history, so the session's timeline keeps its platform updates.
// It reports whether any was removed.
func (s *Session) DropNotices(ids []string, now time.Time) bool {
	n := len(s.Outbox)
	kept := s.Outbox[:0:0]
	for _, nt := range s.Outbox {
		drop := false
		for _, id := range ids {
			if nt.DeliveryID == id {
				drop = true
				break
			}
		}
		if !drop {
			kept = append(kept, nt)
			continue
		}
		s.History = append(s.History, Event{At: now, From: s.State, To: s.State, Cause: CauseNoticeQueued,
			Amount: nt.Amount, Detail: nt.Status + " update " + nt.DeliveryID})
	}
	s.Outbox = kept
	if len(s.Outbox) == 0 {
		s.Outbox = nil
	}
	return len(s.Outbox) != n
}
