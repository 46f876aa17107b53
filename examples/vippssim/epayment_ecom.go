package vippssim

// ePayment over eCom-created payments. The ePayment API can read, capture, refund and cancel a payment
// that was initiated with the eCom API (vipps-reference.md §7: "eCom-initiated payments can be
// captured/refunded/cancelled/read via ePayment; not vice versa"), so a merchant can move to ePayment
// while eCom payments are still open. The simulator shows an eCom payment to the ePayment API as a shadow
// epPayment built from it, and writes what an ePayment call changed back into the eCom payment (its
// transaction log included, so /details agrees). The eCom API never sees ePayment-created payments. No
// webhooks are sent for eCom-created payments.

// shadowOf returns e as the ePayment API shows it. Call with s.mu held.
func (s *Server) shadowOf(e *payment) *epPayment {
	p := &epPayment{
		key: e.key, amount: e.amount, currency: "NOK", flow: "WEB_REDIRECT", returnURL: e.fallBack,
		description: e.text, psp: e.txID, token: e.landingToken, redirectURL: e.url, created: e.created,
		expires: e.expires, captured: e.captured, refunded: e.refunded, idem: e.idem, ecom: e,
	}
	switch e.state {
	case StateInitiate:
		p.state = epCreated
	case StateReserve:
		p.state, p.authorized = epAuthorized, e.amount
		if e.released {
			p.cancelled = e.amount - e.captured
		}
	case StateVoid:
		p.state, p.authorized, p.cancelled = epAuthorized, e.amount, e.amount
	case StateCancel:
		p.state = epAborted
	case StateRejected:
		p.state = epExpired
	}
	names := map[string]string{opInitiate: epCreated, opReserve: epAuthorized, opCapture: evCaptured,
		opRefund: evRefunded, opVoid: evCancelled, opCancel: epAborted}
	for _, l := range e.log {
		p.events = append(p.events, EPaymentEvent{Name: names[l.Operation], Amount: l.Amount,
			IdempotencyKey: l.RequestID, PspReference: l.TransactionID, Success: l.Success, Time: l.Time})
	}
	return p
}

// writeBackLocked applies to the eCom payment behind shadow p what an ePayment call changed in p. Call
// with s.mu held.
func (s *Server) writeBackLocked(p *epPayment, key string) {
	e := p.ecom
	now := s.now()
	switch {
	case e.state == StateInitiate && p.state == epAuthorized:
		s.reserveLocked(e, "", key)
	case e.state == StateInitiate && p.state == epTerminated:
		e.state = StateCancel
		e.addLog(now, opCancel, e.amount, key, s.nextTxID(), "")
	}
	if d := p.captured - e.captured; d > 0 {
		e.captured += d
		e.addLog(now, opCapture, d, key, s.nextTxID(), "")
	}
	if d := p.refunded - e.refunded; d > 0 {
		e.refunded += d
		e.addLog(now, opRefund, d, key, s.nextTxID(), "")
	}
	if p.cancelled > 0 && p.state == epAuthorized && e.state == StateReserve && !e.released {
		if e.captured == 0 {
			e.state = StateVoid
			e.addLog(now, opVoid, e.amount, key, s.nextTxID(), "")
		} else {
			e.released = true
			e.addLog(now, opVoid, e.amount-e.captured, key, s.nextTxID(), "")
		}
	}
}
