package settlement

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/plugin/abi"
)

// ErrNoReport is returned (wrapped) by Report when the ledger has no entries for the date yet.
var ErrNoReport = errors.New("no settlement report for that date")

// Report is one merchant's settlement for one ledger date: what the funds account received and paid
// out, the fees, every entry matched to its checkout, and what does not match. It is the JSON of
// schemas/settlement-report.schema.json. Money is int64 minor units; refunds and fees are positive.
type Report struct {
	Merchant   string `json:"merchant"`
	LedgerID   string `json:"ledgerId"`
	LedgerDate string `json:"ledgerDate"`
	Currency   string `json:"currency,omitempty"`
	// OpeningBalance and ClosingBalance are the funds account's balance before the day's first entry
	// and after its last.
	OpeningBalance int64 `json:"openingBalance"`
	ClosingBalance int64 `json:"closingBalance"`
	GrossCaptures  int64 `json:"grossCaptures"`
	Refunds        int64 `json:"refunds"`
	// Fees are the day's capture fees (fees account); FeesRetained what the funds account gave up for
	// fees (net settlement; 0 with gross settlement, where fees are invoiced).
	Fees         int64 `json:"fees"`
	FeesRetained int64 `json:"feesRetained"`
	// Other is the sum of the funds entries of any other type (corrections, disputes, top-ups, types
	// the provider added later).
	Other int64 `json:"other"`
	// NetPayout is the amount scheduled for payout at the day's end (0 if none was).
	NetPayout       int64  `json:"netPayout"`
	PayoutReference string `json:"payoutReference,omitempty"`
	// Balanced says the day adds up: each entry moves the balance from where the previous left it,
	// opening + entries = closing, and the payout is what the day left after fees. Problems says
	// what does not.
	Balanced   bool       `json:"balanced"`
	Problems   []string   `json:"problems,omitempty"`
	Entries    []Line     `json:"entries"`
	Mismatches []Mismatch `json:"mismatches"`
}

// Line is one ledger entry of the report with the checkout it was matched to.
type Line struct {
	Topic           string `json:"topic"`
	EntryType       string `json:"entryType"`
	Amount          int64  `json:"amount"`
	Currency        string `json:"currency,omitempty"`
	Reference       string `json:"reference,omitempty"`
	PSPReference    string `json:"pspReference,omitempty"`
	Time            string `json:"time,omitempty"`
	RecipientHandle string `json:"recipientHandle,omitempty"`
	BalanceBefore   int64  `json:"balanceBefore"`
	BalanceAfter    int64  `json:"balanceAfter"`
	// CheckoutID and OrderReference are kasse's session and the shop's order reference, when matched.
	CheckoutID     string `json:"checkoutId,omitempty"`
	OrderReference string `json:"orderReference,omitempty"`
}

// Mismatch is one disagreement between the ledger and kasse.
type Mismatch struct {
	// Kind is one of the Mismatch* constants.
	Kind       string `json:"kind"`
	Reference  string `json:"reference,omitempty"`
	CheckoutID string `json:"checkoutId,omitempty"`
	Detail     string `json:"detail"`
}

// Report builds the settlement report of merchant for ledger date date (YYYY-MM-DD) from the entries
// read so far. ErrNoReport if there are none.
func (f *Follower) Report(ctx context.Context, merchant, date string) (*Report, error) {
	ledger, err := f.Ledger(ctx, merchant)
	if err != nil {
		return nil, err
	}
	entries, err := f.entries(ctx, merchant, ledger, date)
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("settlement: merchant %s, ledger date %s: %w", merchant, date, ErrNoReport)
	}
	r := &Report{Merchant: merchant, LedgerID: ledger, LedgerDate: date, Entries: []Line{}, Mismatches: []Mismatch{}}
	var funds, fees []Entry
	for _, e := range entries {
		if e.Topic == abi.TopicFees {
			fees = append(fees, e)
		} else {
			funds = append(funds, e)
		}
	}
	ledgerCaptured := map[string]int64{} // session id -> the day's captures, to compare with kasse's
	for _, e := range append(funds, fees...) {
		l := Line{Topic: e.Topic, EntryType: e.EntryType, Amount: e.Amount, Currency: e.Currency,
			Reference: e.Reference, PSPReference: e.PSPReference, Time: e.Time, RecipientHandle: e.RecipientHandle,
			BalanceBefore: e.BalanceBefore, BalanceAfter: e.BalanceAfter}
		if r.Currency == "" {
			r.Currency = e.Currency
		}
		ref := e.Reference
		if e.Topic == abi.TopicFees && e.PSPReference != "" {
			for _, c := range funds {
				if c.EntryType == abi.EntryCapture && c.PSPReference == e.PSPReference {
					ref = c.Reference
				}
			}
		}
		matchable := e.EntryType == abi.EntryCapture || e.EntryType == abi.EntryRefund ||
			e.EntryType == abi.EntryCaptureFee || e.EntryType == abi.EntryRetainedDisputedCapture ||
			e.EntryType == abi.EntryReturnedDisputedCapture
		if matchable {
			sess, err := f.sessionOf(ctx, merchant, ref)
			switch {
			case err == nil:
				l.CheckoutID, l.OrderReference = sess.ID, sess.Reference
				if e.Topic == abi.TopicFunds && e.EntryType == abi.EntryCapture {
					ledgerCaptured[sess.ID] += e.Amount
				}
				// Compared now, not as recorded when the entry was read: kasse may have caught up since.
				if mm := amountMismatch(sess, sess.Settlement); e.Topic == abi.TopicFunds && mm != "" &&
					!hasMismatch(r.Mismatches, MismatchAmount, sess.ID) {
					r.Mismatches = append(r.Mismatches, Mismatch{Kind: MismatchAmount, Reference: ref,
						CheckoutID: sess.ID, Detail: mm})
				}
				if e.Topic == abi.TopicFunds && e.EntryType == abi.EntryRefund && sess.Settlement != nil &&
					sess.Settlement.Refunded != sess.RefundedAmount && !hasMismatch(r.Mismatches, MismatchAmount, sess.ID) {
					r.Mismatches = append(r.Mismatches, Mismatch{Kind: MismatchAmount, Reference: ref, CheckoutID: sess.ID,
						Detail: fmt.Sprintf("ledger refunded %d, kasse refunded %d", sess.Settlement.Refunded, sess.RefundedAmount)})
				}
			case errors.Is(err, store.ErrNotFound):
				if e.Topic == abi.TopicFunds && !f.elsewhere(ctx, merchant, ledger, ref) {
					r.Mismatches = append(r.Mismatches, Mismatch{Kind: MismatchUnknownReference, Reference: ref,
						Detail: fmt.Sprintf("ledger %s of %d has no checkout", e.EntryType, e.Amount)})
				}
			default:
				return nil, err
			}
		}
		r.Entries = append(r.Entries, l)
	}
	// A session captured in full whose ledger captures differ from kasse's.
	for id, got := range ledgerCaptured {
		sess, err := f.cfg.Store.Get(ctx, id)
		if err != nil {
			continue
		}
		if sess.Settlement != nil && sess.Settlement.Captured == got && got != sess.CapturedAmount &&
			sess.InDoubt() == nil && !hasMismatch(r.Mismatches, MismatchAmount, id) {
			r.Mismatches = append(r.Mismatches, Mismatch{Kind: MismatchAmount, Reference: sess.ProviderReference,
				CheckoutID: id, Detail: fmt.Sprintf("ledger captured %d, kasse captured %d", got, sess.CapturedAmount)})
		}
	}
	if err := f.overdueMismatches(ctx, r, merchant, date); err != nil {
		return nil, err
	}
	if date < f.cfg.From {
		// Before kasse took over: entries are shown, but there is nothing of kasse's to disagree with.
		r.Mismatches = []Mismatch{}
	}
	sum(r, funds, fees)
	return r, nil
}

func hasMismatch(ms []Mismatch, kind, id string) bool {
	for _, m := range ms {
		if m.Kind == kind && m.CheckoutID == id {
			return true
		}
	}
	return false
}

// overdueMismatches adds the sessions captured on date that are overdue and not on the ledger.
func (f *Follower) overdueMismatches(ctx context.Context, r *Report, merchant, date string) error {
	overdue, err := f.overdue(ctx, merchant)
	if err != nil {
		return err
	}
	for _, s := range overdue {
		captured := ""
		for _, ev := range s.History {
			if ev.To == "captured" {
				captured = ev.At.UTC().Format(time.DateOnly)
				break
			}
		}
		if captured != date {
			continue
		}
		r.Mismatches = append(r.Mismatches, Mismatch{Kind: MismatchMissing, Reference: s.ProviderReference,
			CheckoutID: s.ID, Detail: fmt.Sprintf("captured %d on %s, not on the ledger after the expected payout delay",
				s.CapturedAmount, captured)})
	}
	return nil
}

// sum totals the day and checks that it adds up.
func sum(r *Report, funds, fees []Entry) {
	var problems []string
	var feesRetainedOnFees int64
	for i, e := range funds {
		if i == 0 {
			r.OpeningBalance = e.BalanceBefore
		} else if prev := funds[i-1]; prev.BalanceAfter != e.BalanceBefore {
			problems = append(problems, fmt.Sprintf("funds: entry %d starts at balance %d, the one before ended at %d",
				i+1, e.BalanceBefore, prev.BalanceAfter))
		}
		if e.BalanceBefore+e.Amount != e.BalanceAfter {
			problems = append(problems, fmt.Sprintf("funds: %s %s: %d + %d != %d", e.EntryType, e.Reference,
				e.BalanceBefore, e.Amount, e.BalanceAfter))
		}
		r.ClosingBalance = e.BalanceAfter
		switch e.EntryType {
		case abi.EntryCapture:
			r.GrossCaptures += e.Amount
		case abi.EntryRefund:
			r.Refunds -= e.Amount
		case abi.EntryFeesRetained:
			r.FeesRetained -= e.Amount
		case abi.EntryScheduledForPayout:
			r.NetPayout -= e.Amount
			r.PayoutReference = e.Reference
		default:
			r.Other += e.Amount
		}
	}
	for _, e := range fees {
		switch e.EntryType {
		case abi.EntryCaptureFee:
			r.Fees -= e.Amount
		case abi.EntryFeesRetained:
			feesRetainedOnFees += e.Amount
		}
	}
	if len(funds) > 0 {
		if got := r.OpeningBalance + r.GrossCaptures - r.Refunds - r.FeesRetained + r.Other - r.NetPayout; got != r.ClosingBalance {
			problems = append(problems, fmt.Sprintf("opening %d + captures %d - refunds %d - fees retained %d + other %d - payout %d = %d, but the closing balance is %d",
				r.OpeningBalance, r.GrossCaptures, r.Refunds, r.FeesRetained, r.Other, r.NetPayout, got, r.ClosingBalance))
		}
	}
	if r.FeesRetained != 0 && r.FeesRetained != r.Fees {
		problems = append(problems, fmt.Sprintf("fees retained %d differ from the day's capture fees %d", r.FeesRetained, r.Fees))
	}
	if feesRetainedOnFees != r.FeesRetained {
		problems = append(problems, fmt.Sprintf("fees retained on the funds account (%d) and on the fees account (%d) differ",
			r.FeesRetained, feesRetainedOnFees))
	}
	r.Balanced = len(problems) == 0
	r.Problems = problems
	if !r.Balanced {
		r.Mismatches = append(r.Mismatches, Mismatch{Kind: MismatchUnbalanced, Detail: problems[0]})
	}
}

// CSVHeader is the header row of WriteCSV.
var CSVHeader = []string{"ledgerDate", "topic", "entryType", "amount", "currency", "reference", "pspReference",
	"time", "balanceBefore", "balanceAfter", "checkoutId", "orderReference"}

// WriteCSV writes the report as CSV for a spreadsheet: the header, one row per entry, then one summary row
// per total (entryType "total:<name>", the amount in the amount column) and one per mismatch (entryType
// "mismatch:<kind>", its detail in the last column).
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	i := strconv.FormatInt
	rows := [][]string{CSVHeader}
	for _, l := range r.Entries {
		rows = append(rows, []string{r.LedgerDate, l.Topic, l.EntryType, i(l.Amount, 10), l.Currency, l.Reference,
			l.PSPReference, l.Time, i(l.BalanceBefore, 10), i(l.BalanceAfter, 10), l.CheckoutID, l.OrderReference})
	}
	total := func(name string, v int64, ref string) {
		rows = append(rows, []string{r.LedgerDate, "", "total:" + name, i(v, 10), r.Currency, ref, "", "", "", "", "", ""})
	}
	total("grossCaptures", r.GrossCaptures, "")
	total("refunds", r.Refunds, "")
	total("fees", r.Fees, "")
	total("feesRetained", r.FeesRetained, "")
	total("other", r.Other, "")
	total("netPayout", r.NetPayout, r.PayoutReference)
	balanced := "balanced"
	if !r.Balanced {
		balanced = "unbalanced"
	}
	rows = append(rows, []string{r.LedgerDate, "", "total:" + balanced, "", r.Currency, "", "", "", "", "", "", ""})
	for _, m := range r.Mismatches {
		rows = append(rows, []string{r.LedgerDate, "", "mismatch:" + m.Kind, "", "", m.Reference, "", "", "", "",
			m.CheckoutID, m.Detail})
	}
	if err := cw.WriteAll(rows); err != nil {
		return fmt.Errorf("settlement: write csv: %w", err)
	}
	return nil
}
