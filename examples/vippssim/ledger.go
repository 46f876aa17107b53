package vippssim

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// The settlement ledger and the Report API (report-v2.yaml, report-api-guide.md).
//
// Every sales unit (tenant) settles on one ledger of its own. Every capture and refund the simulator
// carries out, by either API, becomes an entry on the ledger's funds account in the open ledger date; a
// capture's fee (LedgerConfig) becomes an entry on the fees account with the capture's pspReference. The
// day stays open until it is closed ([Server.CloseLedgerDay], POST /_sim/ledger/close), which, as in the
// guide's worked example, retains the day's fees from the funds (net settlement: fees-retained on both
// accounts; gross: fees-invoiced on the fees account only) and schedules the funds balance for payout
// (scheduled-for-payout, when the balance is positive; a negative balance is carried over), both timed at
// midnight after the day. The next date then opens.
//
// The Report API serves the ledger: GET /settlement/v1/ledgers, the feed of each account
// (GET /report/v2/ledgers/{ledgerId}/{topic}/feed, every entry as soon as it is made, paged by cursor,
// tryLater at the end) and the report of a closed date (GET .../dates/{ledgerDate}, 404 until the date is
// closed, paged with hasMore and cursor). Each credential sees its own ledger only.

// Defaults of LedgerConfig.
const (
	// DefaultCaptureFee is the fee per capture in øre, the guide's worked example's 4 kr.
	DefaultCaptureFee = 400
	// DefaultReportPageSize is how many entries a Report API page holds at most, as at Vipps.
	DefaultReportPageSize = 1000
)

// LedgerConfig sets how the simulator's ledgers charge fees and page reports.
type LedgerConfig struct {
	// CaptureFee is the fixed fee per capture in minor units. Zero means DefaultCaptureFee; a negative
	// value means no fixed fee.
	CaptureFee int64 `json:"captureFee"`
	// CaptureFeeBasisPoints adds a share of the captured amount to the fee, in hundredths of a percent
	// (175 is 1.75 %), rounded half up.
	CaptureFeeBasisPoints int64 `json:"captureFeeBasisPoints"`
	// Gross settles fees by invoice (fees-invoiced on the fees account at close) instead of retaining
	// them from the payout (net settlement, the default).
	Gross bool `json:"gross"`
	// PageSize is the most entries a Report API page holds. Zero means DefaultReportPageSize.
	PageSize int `json:"pageSize"`
}

func (c LedgerConfig) withDefaults() LedgerConfig {
	if c.CaptureFee == 0 {
		c.CaptureFee = DefaultCaptureFee
	}
	if c.PageSize <= 0 {
		c.PageSize = DefaultReportPageSize
	}
	return c
}

func (c LedgerConfig) fee(amount int64) int64 {
	f := max(c.CaptureFee, 0)
	if c.CaptureFeeBasisPoints > 0 {
		f += (amount*c.CaptureFeeBasisPoints + 5000) / 10000
	}
	return f
}

// LedgerFaults are the faults of the ledger and the Report API ([Faults].Ledger).
type LedgerFaults struct {
	// UnknownReference puts, on every day closed while it is set, a capture of 1000 øre (and its fee)
	// for a reference no payment has: a ledger entry kasse cannot match.
	UnknownReference bool `json:"unknownReference,omitempty"`
	// DropCapture is the share (0..1) of captures never put on the ledger: a capture the merchant made
	// that is missing from the settlement.
	DropCapture float64 `json:"dropCapture,omitempty"`
	// DelayDay makes the Report API fall behind: entries made and days closed while it is set are not
	// shown (not in the feed; the date answers 404) until it is cleared. The guide: the data may trail
	// the other APIs by several hours.
	DelayDay bool `json:"delayDay,omitempty"`
}

// Ledger topics, the two accounts of a ledger.
const (
	TopicFunds = "funds"
	TopicFees  = "fees"
)

// LedgerEntry is one entry of a ledger account, as the Report API reports it (its Transaction).
type LedgerEntry struct {
	PSPReference    string `json:"pspReference"`
	Time            string `json:"time"`
	LedgerDate      string `json:"ledgerDate"`
	EntryType       string `json:"entryType"`
	Reference       string `json:"reference,omitempty"`
	Currency        string `json:"currency"`
	Amount          int64  `json:"amount"`
	BalanceBefore   int64  `json:"balanceBefore"`
	BalanceAfter    int64  `json:"balanceAfter"`
	RecipientHandle string `json:"recipientHandle,omitempty"`
}

// ClosedDay is what closing one ledger date did.
type ClosedDay struct {
	LedgerID   string `json:"ledgerId"`
	LedgerDate string `json:"ledgerDate"`
	// Captures, Refunds and Fees are the day's sums in minor units (refunds and fees as positive sums).
	Captures int64 `json:"captures"`
	Refunds  int64 `json:"refunds"`
	Fees     int64 `json:"fees"`
	// FeesRetained is the fees taken from the funds (net settlement); 0 for gross settlement.
	FeesRetained int64 `json:"feesRetained"`
	// Payout is the amount scheduled for payout (0 when the balance was not positive), with the bank
	// transfer's reference and the entry's pspReference.
	Payout             int64  `json:"payout"`
	PayoutReference    string `json:"payoutReference,omitempty"`
	PayoutPSPReference string `json:"payoutPspReference,omitempty"`
	// Balance is the funds balance carried into the next date.
	Balance int64 `json:"balance"`
}

// LedgerSnapshot is a whole ledger as the simulator keeps it, shown or not (GET /_sim/ledger).
type LedgerSnapshot struct {
	LedgerID             string        `json:"ledgerId"`
	MerchantSerialNumber string        `json:"merchantSerialNumber"`
	Currency             string        `json:"currency"`
	OpenDate             string        `json:"openDate"`
	ClosedDates          []string      `json:"closedDates"`
	Funds                []LedgerEntry `json:"funds"`
	Fees                 []LedgerEntry `json:"fees"`
	Config               LedgerConfig  `json:"config"`
}

// simLedger is one sales unit's ledger. Guarded by Server.mu.
type simLedger struct {
	id, msn, currency string
	openDate          string
	funds, fees       []LedgerEntry
	dayFees           int64 // capture fees of the open date
	closed            []string
	// shown is how much the Report API shows: everything, unless the DelayDay fault holds it back.
	shownFunds, shownFees, shownClosed int
}

// ledgerState is the ledger part of a Server. Guarded by Server.mu.
type ledgerState struct {
	cfg     LedgerConfig
	byMSN   map[string]*simLedger
	pspSeq  int64
	payouts int64
	unknown int64
}

// ledgerID is the ledger of the tenant with index i: distinct from its MSN, as a ledger may settle for
// several sales units.
func ledgerID(i int) string { return strconv.Itoa(302321 + i) }

// ledgerLocked returns the tenant's ledger, opening it at today's date on first use. Call with s.mu held.
func (s *Server) ledgerLocked(msn string) *simLedger {
	if s.led.byMSN == nil {
		s.led.byMSN = map[string]*simLedger{}
		s.led.cfg = s.cfg.Ledger.withDefaults()
	}
	if l, ok := s.led.byMSN[msn]; ok {
		return l
	}
	l := &simLedger{id: ledgerID(s.byMSN[msn]), msn: msn, currency: "NOK", openDate: s.now().Format(time.DateOnly)}
	s.led.byMSN[msn] = l
	return l
}

func (s *Server) ledgerByIDLocked(id string) *simLedger {
	for _, t := range s.tenants {
		if l := s.ledgerLocked(t.MerchantSerialNumber); l.id == id {
			return l
		}
	}
	return nil
}

func (s *Server) nextPSPLocked() string {
	s.led.pspSeq++
	return strconv.FormatInt(3300000000+s.led.pspSeq, 10)
}

// appendLocked adds an entry to an account, setting its balances, date and time.
func (l *simLedger) appendLocked(topic string, e LedgerEntry, at time.Time) {
	acct := &l.funds
	if topic == TopicFees {
		acct = &l.fees
	}
	var bal int64
	if n := len(*acct); n > 0 {
		bal = (*acct)[n-1].BalanceAfter
	}
	e.BalanceBefore, e.BalanceAfter = bal, bal+e.Amount
	if e.LedgerDate == "" {
		e.LedgerDate = l.openDate
	}
	e.Time = at.UTC().Format(time.RFC3339Nano)
	if e.Currency == "" {
		e.Currency = l.currency
	}
	*acct = append(*acct, e)
}

// ledgerOpLocked puts a capture or refund the simulator carried out on the sales unit's ledger, with the
// capture's fee. Call with s.mu held.
func (s *Server) ledgerOpLocked(api string, k paymentKey, kind string, amount int64) {
	if (kind != OpKindCapture && kind != OpKindRefund) || amount <= 0 {
		return
	}
	if _, ok := s.byMSN[k.msn]; !ok {
		return
	}
	if kind == OpKindCapture {
		if p := s.fs.faults.Ledger.DropCapture; p > 0 && s.fs.rng.Float64() < p {
			s.ledgerLog("vippssim: ledger: capture of %d for %s left off the ledger (fault dropCapture)", amount, k.orderID)
			return
		}
	}
	currency := "NOK"
	if api == "epayment" {
		if p, ok := s.ep.payments[k]; ok && p.currency != "" {
			currency = p.currency
		}
	}
	l := s.ledgerLocked(k.msn)
	now := s.now()
	psp := s.nextPSPLocked()
	handle := "api:" + k.msn
	if kind == OpKindRefund {
		l.appendLocked(TopicFunds, LedgerEntry{PSPReference: psp, EntryType: "refund", Reference: k.orderID,
			Currency: currency, Amount: -amount, RecipientHandle: handle}, now)
	} else {
		s.ledgerCaptureLocked(l, k.orderID, currency, amount, psp, now)
	}
	s.ledgerShowLocked()
}

func (s *Server) ledgerCaptureLocked(l *simLedger, reference, currency string, amount int64, psp string, at time.Time) {
	handle := "api:" + l.msn
	l.appendLocked(TopicFunds, LedgerEntry{PSPReference: psp, EntryType: "capture", Reference: reference,
		Currency: currency, Amount: amount, RecipientHandle: handle}, at)
	if fee := s.led.cfg.fee(amount); fee > 0 {
		l.appendLocked(TopicFees, LedgerEntry{PSPReference: psp, EntryType: "capture-fee", Reference: reference,
			Currency: currency, Amount: -fee, RecipientHandle: handle}, at)
		l.dayFees += fee
	}
}

// ledgerLog writes one log line of the ledger through the simulator's logger (a money event: it is part
// of the quiet summary).
func (s *Server) ledgerLog(format string, args ...any) {
	s.log.Info(fmt.Sprintf(format, args...))
}

// ledgerShowLocked lets the Report API show everything, unless the DelayDay fault holds it back.
func (s *Server) ledgerShowLocked() {
	if s.fs.faults.Ledger.DelayDay {
		return
	}
	for _, l := range s.led.byMSN {
		l.shownFunds, l.shownFees, l.shownClosed = len(l.funds), len(l.fees), len(l.closed)
	}
}

// ErrUnknownLedger reports a ledger control for a merchant serial number no tenant has.
var ErrUnknownLedger = errors.New("no such ledger")

// CloseLedgerDay closes the open ledger date of the sales unit msn ("" closes every sales unit's), as
// Vipps does at the date's cut-off: the day's fees are retained (net) or invoiced (gross), the funds
// balance is scheduled for payout when positive, and the next date opens. The closing entries are timed
// at midnight (UTC) after the date.
func (s *Server) CloseLedgerDay(msn string) ([]ClosedDay, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if msn != "" {
		if _, ok := s.byMSN[msn]; !ok {
			return nil, fmt.Errorf("close ledger day: merchant serial number %q: %w", msn, ErrUnknownLedger)
		}
	}
	out := []ClosedDay{}
	for _, t := range s.tenants {
		if msn == "" || t.MerchantSerialNumber == msn {
			out = append(out, s.closeDayLocked(s.ledgerLocked(t.MerchantSerialNumber)))
		}
	}
	s.ledgerShowLocked()
	return out, nil
}

func (s *Server) closeDayLocked(l *simLedger) ClosedDay {
	date := l.openDate
	day, _ := time.Parse(time.DateOnly, date) // written by this file: cannot fail
	cutoff := day.AddDate(0, 0, 1)
	if s.fs.faults.Ledger.UnknownReference {
		s.led.unknown++
		// An hour before the cut-off, so that it sorts among the day's sales.
		s.ledgerCaptureLocked(l, "sim-unknown-"+strconv.FormatInt(s.led.unknown, 10), l.currency, 1000,
			s.nextPSPLocked(), cutoff.Add(-time.Hour))
	}
	c := ClosedDay{LedgerID: l.id, LedgerDate: date, Fees: l.dayFees}
	for _, e := range l.funds {
		switch {
		case e.LedgerDate != date:
		case e.EntryType == "capture":
			c.Captures += e.Amount
		case e.EntryType == "refund":
			c.Refunds -= e.Amount
		}
	}
	if l.dayFees > 0 {
		psp := l.id + "-" + strconv.FormatInt(2000300+int64(len(l.closed))+1, 10)
		if s.led.cfg.Gross {
			l.appendLocked(TopicFees, LedgerEntry{PSPReference: psp, EntryType: "fees-invoiced", Amount: l.dayFees}, cutoff)
		} else {
			l.appendLocked(TopicFunds, LedgerEntry{PSPReference: psp, EntryType: "fees-retained", Amount: -l.dayFees}, cutoff)
			l.appendLocked(TopicFees, LedgerEntry{PSPReference: psp, EntryType: "fees-retained", Amount: l.dayFees}, cutoff)
			c.FeesRetained = l.dayFees
		}
	}
	var bal int64
	if n := len(l.funds); n > 0 {
		bal = l.funds[n-1].BalanceAfter
	}
	if bal > 0 {
		s.led.payouts++
		no := strconv.FormatInt(2000000+s.led.payouts, 10)
		c.Payout, c.PayoutReference, c.PayoutPSPReference = bal, "Vipps utbet. "+no+" Vippsnr "+l.msn, l.id+"-"+no
		l.appendLocked(TopicFunds, LedgerEntry{PSPReference: c.PayoutPSPReference, EntryType: "scheduled-for-payout",
			Reference: c.PayoutReference, Amount: -bal}, cutoff)
	}
	if n := len(l.funds); n > 0 {
		c.Balance = l.funds[n-1].BalanceAfter
	}
	l.dayFees = 0
	l.closed = append(l.closed, date)
	l.openDate = cutoff.Format(time.DateOnly)
	s.ledgerLog("vippssim: ledger %s: closed %s: captures %d, refunds %d, fees %d, payout %d", l.id, date,
		c.Captures, c.Refunds, c.Fees, c.Payout)
	return c
}

// SetLedgerConfig changes how fees are charged and reports paged from now on; zero fields take their
// defaults.
func (s *Server) SetLedgerConfig(c LedgerConfig) error {
	if c.CaptureFeeBasisPoints < 0 || c.CaptureFeeBasisPoints > 10000 {
		return fmt.Errorf("ledger config: captureFeeBasisPoints %d: want 0 to 10000", c.CaptureFeeBasisPoints)
	}
	if c.PageSize < 0 || c.PageSize > DefaultReportPageSize {
		return fmt.Errorf("ledger config: pageSize %d: want 1 to %d (0 for the default)", c.PageSize, DefaultReportPageSize)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ledgerLocked(s.tenants[0].MerchantSerialNumber) // initialises the state
	s.led.cfg = c.withDefaults()
	return nil
}

// Ledger returns the whole ledger of the sales unit msn, shown by the Report API or not.
func (s *Server) Ledger(msn string) (LedgerSnapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byMSN[msn]; !ok {
		return LedgerSnapshot{}, fmt.Errorf("ledger: merchant serial number %q: %w", msn, ErrUnknownLedger)
	}
	l := s.ledgerLocked(msn)
	return LedgerSnapshot{LedgerID: l.id, MerchantSerialNumber: msn, Currency: l.currency, OpenDate: l.openDate,
		ClosedDates: append([]string{}, l.closed...), Funds: append([]LedgerEntry{}, l.funds...),
		Fees: append([]LedgerEntry{}, l.fees...), Config: s.led.cfg}, nil
}

func (s *Server) ledgerRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /settlement/v1/ledgers", s.handleLedgers)
	m.HandleFunc("GET /report/v2/ledgers/{ledgerId}/{topic}/feed", s.handleReportFeed)
	m.HandleFunc("GET /report/v2/ledgers/{ledgerId}/{topic}/dates/{ledgerDate}", s.handleReportByDate)
	m.HandleFunc("POST /_sim/ledger/close", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			MerchantSerialNumber string `json:"merchantSerialNumber"`
		}
		if err := readSimBody(w, r, &in); err != nil {
			simError(w, err)
			return
		}
		if in.MerchantSerialNumber == "" {
			in.MerchantSerialNumber = r.PostForm.Get("merchantSerialNumber")
		}
		days, err := s.CloseLedgerDay(in.MerchantSerialNumber)
		if err != nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, days)
	})
	m.HandleFunc("GET /_sim/ledger", func(w http.ResponseWriter, r *http.Request) {
		msn := r.URL.Query().Get("merchantSerialNumber")
		if msn == "" {
			msn = s.tenants[0].MerchantSerialNumber
		}
		snap, err := s.Ledger(msn)
		if err != nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, snap)
	})
	m.HandleFunc("PUT /_sim/ledger/config", func(w http.ResponseWriter, r *http.Request) {
		var c LedgerConfig
		if err := readSimBody(w, r, &c); err != nil {
			simError(w, err)
			return
		}
		if err := s.SetLedgerConfig(c); err != nil {
			simError(w, err)
			return
		}
		s.mu.Lock()
		c = s.led.cfg
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, c)
	})
}

// reportProblem writes the Report API's problem answer.
func reportProblem(w http.ResponseWriter, status int, title, format string, args ...any) {
	writeProblem(w, &problem{Type: problemTypeBase + "report", Title: title, Status: status, Detail: fmt.Sprintf(format, args...)})
}

// handleLedgers serves GET /settlement/v1/ledgers: the caller's own ledger, filtered by
// settlesForRecipientHandles. One ledger per credential, so there is never a next page.
func (s *Server) handleLedgers(w http.ResponseWriter, r *http.Request) {
	t, ok := s.authorize(w, r)
	if !ok {
		return
	}
	type account struct {
		Scheme string `json:"scheme"`
		ID     string `json:"id"`
	}
	type ledger struct {
		LedgerID          string   `json:"ledgerId"`
		Currency          string   `json:"currency"`
		PayoutBankAccount account  `json:"payoutBankAccount"`
		Owner             account  `json:"owner"`
		Handles           []string `json:"settlesForRecipientHandles"`
	}
	s.mu.Lock()
	l := s.ledgerLocked(t.MerchantSerialNumber)
	s.mu.Unlock()
	handle := "api:" + t.MerchantSerialNumber
	items := []ledger{}
	if f := r.URL.Query().Get("settlesForRecipientHandles"); f == "" || f == handle {
		items = append(items, ledger{LedgerID: l.id, Currency: l.currency,
			PayoutBankAccount: account{Scheme: "BBAN:NO", ID: "86011117947"},
			Owner:             account{Scheme: "business:NO:ORG", ID: "987654321"}, Handles: []string{handle}})
	}
	writeJSONPlain(w, http.StatusOK, struct {
		Cursor string   `json:"cursor"`
		Items  []ledger `json:"items"`
	}{"", items})
}

// reportLedger checks the caller may read the ledger and topic of the path. It writes the error itself.
func (s *Server) reportLedger(w http.ResponseWriter, r *http.Request) (*simLedger, string, bool) {
	t, ok := s.authorize(w, r)
	if !ok {
		return nil, "", false
	}
	topic := r.PathValue("topic")
	if topic != TopicFunds && topic != TopicFees {
		reportProblem(w, http.StatusBadRequest, "Bad Request", "topic %q: want funds or fees", topic)
		return nil, "", false
	}
	s.mu.Lock()
	l := s.ledgerByIDLocked(r.PathValue("ledgerId"))
	s.mu.Unlock()
	if l == nil || l.msn != t.MerchantSerialNumber {
		reportProblem(w, http.StatusForbidden, "Forbidden", "no access to ledger %q with these credentials", r.PathValue("ledgerId"))
		return nil, "", false
	}
	return l, topic, true
}

// cursor encodes a position as the Report API's examples do: base64 of a decimal number ("Mw==" is 3).
func cursor(pos int) string { return base64.StdEncoding.EncodeToString([]byte(strconv.Itoa(pos))) }

func parseCursor(c string) (int, bool) {
	if c == "" {
		return 0, true
	}
	b, err := base64.StdEncoding.DecodeString(c)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(string(b))
	return n, err == nil && n >= 0
}

type reportPage struct {
	Cursor   string        `json:"cursor,omitempty"`
	HasMore  *bool         `json:"hasMore,omitempty"`
	TryLater bool          `json:"tryLater"`
	Items    []LedgerEntry `json:"items"`
}

// handleReportFeed serves GET /report/v2/ledgers/{ledgerId}/{topic}/feed: the account's entries from the
// cursor on, a page at a time. The cursor never empties: at the end it comes back unchanged with tryLater.
func (s *Server) handleReportFeed(w http.ResponseWriter, r *http.Request) {
	l, topic, ok := s.reportLedger(w, r)
	if !ok {
		return
	}
	pos, ok := parseCursor(r.URL.Query().Get("cursor"))
	if !ok {
		reportProblem(w, http.StatusBadRequest, "Bad Request", "cursor %q is not a cursor this feed gave", r.URL.Query().Get("cursor"))
		return
	}
	s.mu.Lock()
	entries, shown := l.funds, l.shownFunds
	if topic == TopicFees {
		entries, shown = l.fees, l.shownFees
	}
	pos = min(pos, shown)
	end := min(pos+s.led.cfg.PageSize, shown)
	page := reportPage{Cursor: cursor(end), TryLater: end == shown, Items: append([]LedgerEntry{}, entries[pos:end]...)}
	s.mu.Unlock()
	writeJSONPlain(w, http.StatusOK, page)
}

// handleReportByDate serves GET /report/v2/ledgers/{ledgerId}/{topic}/dates/{ledgerDate}: the complete
// report of a closed date, paged; 404 while the date is not closed (or not shown yet).
func (s *Server) handleReportByDate(w http.ResponseWriter, r *http.Request) {
	l, topic, ok := s.reportLedger(w, r)
	if !ok {
		return
	}
	date := r.PathValue("ledgerDate")
	if _, err := time.Parse(time.DateOnly, date); err != nil {
		reportProblem(w, http.StatusBadRequest, "Bad Request", "ledgerDate %q: want YYYY-MM-DD", date)
		return
	}
	pos, ok := parseCursor(r.URL.Query().Get("cursor"))
	if !ok {
		reportProblem(w, http.StatusBadRequest, "Bad Request", "cursor %q is not a cursor this report gave", r.URL.Query().Get("cursor"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	closed := false
	for _, d := range l.closed[:l.shownClosed] {
		closed = closed || d == date
	}
	if !closed {
		w.WriteHeader(http.StatusNotFound) // the spec's 404 has no body: "try again later"
		return
	}
	entries := l.funds
	if topic == TopicFees {
		entries = l.fees
	}
	var day []LedgerEntry
	for _, e := range entries {
		if e.LedgerDate == date {
			day = append(day, e)
		}
	}
	pos = min(pos, len(day))
	end := min(pos+s.led.cfg.PageSize, len(day))
	more := end < len(day)
	page := reportPage{HasMore: &more, Items: append([]LedgerEntry{}, day[pos:end]...)}
	if more {
		page.Cursor = cursor(end)
	}
	writeJSONPlain(w, http.StatusOK, page)
}
