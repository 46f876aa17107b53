package payment

import "slices"

// Settlement is what the merchant's ledger at the provider (the Vipps Report API) says about a session's
// money once it has been settled: the amounts the ledger moved for it, the fees charged, and the payout
// that carried it to the merchant's bank. Amounts are positive, in minor units.
type Settlement struct {
	// LedgerDate is the ledger date (YYYY-MM-DD) of the newest ledger entry matched to the session.
	LedgerDate string `json:"ledgerDate"`
	// Captured and Refunded are what the ledger's capture and refund entries for the session add up to.
	Captured int64 `json:"captured"`
	Refunded int64 `json:"refunded"`
	// Fees are the fees charged for the session's captures.
	Fees int64 `json:"fees"`
	// Net is Captured - Refunded - Fees: what the session adds to the merchant's payouts.
	Net int64 `json:"net"`
	// PayoutReference is the reference on the bank transfer that pays the session out, once scheduled.
	PayoutReference string `json:"payoutReference,omitempty"`
	// PayoutDate is when that payout is expected in the bank (YYYY-MM-DD), once scheduled.
	PayoutDate string `json:"payoutDate,omitempty"`
	// Mismatch says how the ledger disagrees with kasse's own amounts; empty while it agrees.
	Mismatch string `json:"mismatch,omitempty"`
	// Entries are the ids of the ledger entries counted above, so that an entry read twice counts once.
	Entries []string `json:"entries,omitempty"`
}

// netOrZero is st.Net, 0 for nil.
func (st *Settlement) netOrZero() int64 {
	if st == nil {
		return 0
	}
	return st.Net
}

// Has reports whether the ledger entry id is already counted.
func (st *Settlement) Has(id string) bool { return slices.Contains(st.Entries, id) }

// Clone returns a deep copy of st (nil for nil).
func (st *Settlement) Clone() *Settlement {
	if st == nil {
		return nil
	}
	c := *st
	c.Entries = slices.Clone(st.Entries)
	return &c
}

// AwaitsSettlement reports whether money kasse captured for the session is not (yet) all on the
// merchant's ledger: it captured something and the ledger's captures for it add up to less. The stores
// keep an index of the sessions for which this holds (store.Settlements.AwaitingSettlement), written
// with the session, so that a capture is expected on the ledger by the same write that records it.
func (s *Session) AwaitsSettlement() bool {
	return s.CapturedAmount > 0 && (s.Settlement == nil || s.Settlement.Captured < s.CapturedAmount)
}
