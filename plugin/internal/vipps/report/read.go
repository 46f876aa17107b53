package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/internal/vipps"
)

// The Report API's pages are read with the scanner in scan.go; the ledger list and error bodies, which
// are small, with encoding/json. Both tolerate what its documents disagree on: numbers sent as strings,
// ids sent as numbers, and amounts written as 10000.0.

// text is a string that may arrive as a JSON string or number.
type text struct {
	Set bool
	V   string
}

func (t *text) UnmarshalJSON(b []byte) error {
	*t = text{}
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		t.Set = true
		return json.Unmarshal(b, &t.V)
	case len(b) > 0 && (b[0] == '-' || '0' <= b[0] && b[0] <= '9'):
		t.Set, t.V = true, string(b)
		return nil
	}
	return errors.New("want a string")
}

// ledgerList is the answer of GET /settlement/v1/ledgers.
type ledgerList struct {
	Cursor text `json:"cursor"`
	Items  []struct {
		LedgerID          text `json:"ledgerId"`
		Currency          text `json:"currency"`
		PayoutBankAccount *struct {
			Scheme text `json:"scheme"`
			ID     text `json:"id"`
		} `json:"payoutBankAccount"`
		Handles []text `json:"settlesForRecipientHandles"`
	} `json:"items"`
}

func readLedgers(in *abi.Input) *abi.Output {
	q, fail := Query(in)
	if fail != nil {
		if len(bytes.TrimSpace(in.Callback)) != 0 {
			return fail
		}
		q = abi.ReportQuery{}
	}
	if fail := checkQuery(in.Op, q); fail != nil {
		return fail
	}
	body, fail := vipps.Answer(in, providerError)
	if fail != nil {
		return fail
	}
	const what = "ledgers"
	var l ledgerList
	if err := decodeObject(body, &l); err != nil {
		return vipps.Unexpected(in, what, err.Error())
	}
	if len(l.Items) > MaxItems {
		return vipps.Unexpected(in, what, strconv.Itoa(len(l.Items))+" ledgers, more than a page holds ("+strconv.Itoa(MaxItems)+")")
	}
	out := &abi.LedgerList{Ledgers: make([]abi.Ledger, 0, len(l.Items))}
	for i, it := range l.Items {
		at := "items/" + strconv.Itoa(i)
		g := abi.Ledger{LedgerID: it.LedgerID.V}
		if g.LedgerID == "" || len(g.LedgerID) > maxID {
			return vipps.Unexpected(in, what, at+"/ledgerId: missing, or longer than "+strconv.Itoa(maxID)+" characters")
		}
		if c := it.Currency.V; c != "" {
			if !validCurrency(c) {
				return vipps.Unexpected(in, what, at+"/currency: "+strconv.Quote(vipps.Clip(c, 10))+" is not an ISO 4217 code")
			}
			g.Currency = c
		}
		if a := it.PayoutBankAccount; a != nil && a.ID.V != "" {
			g.PayoutBankAccount = a.ID.V
			if a.Scheme.V != "" {
				g.PayoutBankAccount = a.Scheme.V + ":" + a.ID.V
			}
			if len(g.PayoutBankAccount) > maxBankText {
				return vipps.Unexpected(in, what, at+"/payoutBankAccount: longer than "+strconv.Itoa(maxBankText)+" characters")
			}
		}
		if len(it.Handles) > MaxItems {
			return vipps.Unexpected(in, what, at+"/settlesForRecipientHandles: more than "+strconv.Itoa(MaxItems))
		}
		for j, h := range it.Handles {
			if h.V == "" || len(h.V) > maxHandle {
				return vipps.Unexpected(in, what, at+"/settlesForRecipientHandles/"+strconv.Itoa(j)+": empty, or longer than "+strconv.Itoa(maxHandle)+" characters")
			}
			g.RecipientHandles = append(g.RecipientHandles, h.V)
		}
		out.Ledgers = append(out.Ledgers, g)
	}
	if len(l.Cursor.V) > maxCursor {
		return vipps.Unexpected(in, what, "cursor: longer than "+strconv.Itoa(maxCursor)+" characters")
	}
	out.Cursor = l.Cursor.V
	return &abi.Output{OK: true, Ledgers: out}
}

func readReport(in *abi.Input, byDate bool) *abi.Output {
	q, fail := Query(in)
	if fail != nil {
		return fail
	}
	if fail := checkQuery(in.Op, q); fail != nil {
		return fail
	}
	what := "report feed"
	if byDate {
		what = "report by date"
	}
	out := &abi.ReportPage{LedgerID: q.LedgerID, Topic: q.Topic, Date: q.Date, Entries: []abi.LedgerEntry{}}
	// A date that is not closed yet: the spec answers 404, the guide 200 with tryLater.
	if byDate && in.Response != nil && in.Response.Status == 404 {
		out.TryLater = true
		return &abi.Output{OK: true, Report: out}
	}
	body, fail := vipps.Answer(in, providerError)
	if fail != nil {
		return fail
	}
	if err := readPage(body, q, out); err != nil {
		return vipps.Unexpected(in, what, err.Error())
	}
	if len(out.Cursor) > maxCursor || !printable(out.Cursor) {
		return vipps.Unexpected(in, what, "cursor: not printable ASCII of at most "+strconv.Itoa(maxCursor)+" characters")
	}
	switch {
	case byDate && out.TryLater:
		// The date is not complete: nothing on it counts until it is closed, and it then comes whole.
		out.Entries, out.Cursor, out.HasMore = out.Entries[:0], "", false
	case byDate && out.HasMore && out.Cursor == "":
		return vipps.Unexpected(in, what, "hasMore without a cursor: the next page cannot be fetched")
	case byDate && !out.HasMore:
		out.Cursor = ""
	case !byDate && out.Cursor == "" && len(out.Entries) > 0:
		return vipps.Unexpected(in, what, "entries without a cursor: the feed could not continue after them")
	case !byDate && out.Cursor == "":
		// The end of the feed without a cursor: stay where we are.
		out.Cursor, out.TryLater = q.Cursor, true
	}
	return &abi.Output{OK: true, Report: out}
}

// readPage reads the Report API's page ({cursor, hasMore, tryLater, items}) into out. An error's text names
// the field ("items/3/amount: ...").
func readPage(body []byte, q abi.ReportQuery, out *abi.ReportPage) error {
	s := scanner{b: body}
	if s.peek() != '{' {
		return errors.New("not a JSON object")
	}
	var interned pageStrings
	err := s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "cursor":
			out.Cursor, _, err = s.text()
		case "hasMore":
			out.HasMore, err = s.flag()
		case "tryLater":
			out.TryLater, err = s.flag()
		case "items":
			out.Entries = out.Entries[:0]
			if s.peek() == 'n' {
				return s.literal("null")
			}
			if cap(out.Entries) == 0 {
				// About 250 bytes an entry: one allocation for the page, not a copy per doubling.
				out.Entries = make([]abi.LedgerEntry, 0, min(MaxItems, len(body)/200+1))
			}
			return s.array(func() error {
				if len(out.Entries) == MaxItems {
					return errors.New("more entries than a page holds (" + strconv.Itoa(MaxItems) + ")")
				}
				out.Entries = append(out.Entries, abi.LedgerEntry{})
				if err := s.entry(q, &out.Entries[len(out.Entries)-1], &interned); err != nil {
					return errors.New("items/" + strconv.Itoa(len(out.Entries)-1) + err.Error())
				}
				return nil
			})
		default:
			return s.skip()
		}
		if err != nil {
			return errors.New(string(key) + ": " + err.Error())
		}
		return nil
	})
	if err == nil && s.peek() != 0 {
		err = s.fail("data after the object")
	}
	return err
}

// pageStrings keeps the last value of the fields that repeat from entry to entry (ledger date, entry
// type, currency, recipient handle), so that a page allocates and checks them once.
type pageStrings struct {
	last      [4]string
	validDate string // the last ledger date found valid
}

// intern returns b as a string, reusing the slot's last value if it is the same.
func (x *pageStrings) intern(slot int, b []byte) string {
	if string(b) != x.last[slot] { // no allocation: the conversion is only compared
		x.last[slot] = string(b)
	}
	return x.last[slot]
}

// entry reads one Transaction into e. An error's text starts with the field's pointer below the item
// ("/amount: ...").
func (s *scanner) entry(q abi.ReportQuery, e *abi.LedgerEntry, x *pageStrings) error {
	var amountSet bool
	var tm, date, currency string
	if s.peek() != '{' {
		return errors.New(": not a JSON object")
	}
	s.i++
	for first := true; ; first = false {
		key, more, err := s.member(first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		var b []byte
		switch string(key) {
		case "pspReference":
			e.PSPReference, _, err = s.text()
		case "time":
			tm, _, err = s.text()
		case "ledgerDate":
			if b, err = s.textBytes(); err == nil {
				date = x.intern(0, b)
			}
		case "entryType":
			if b, err = s.textBytes(); err == nil {
				e.EntryType = x.intern(1, b)
			}
		case "reference":
			e.Reference, _, err = s.text()
		case "currency":
			if b, err = s.textBytes(); err == nil {
				currency = x.intern(2, b)
			}
		case "recipientHandle":
			if b, err = s.textBytes(); err == nil {
				e.RecipientHandle = x.intern(3, b)
			}
		case "amount":
			e.Amount, amountSet, err = s.money()
		case "balanceBefore":
			e.BalanceBefore, _, err = s.money()
		case "balanceAfter":
			e.BalanceAfter, _, err = s.money()
		default:
			err = s.skip()
		}
		if err != nil {
			return errors.New("/" + string(key) + ": " + err.Error())
		}
	}
	switch {
	case !amountSet:
		return errors.New("/amount: missing")
	case len(e.EntryType) > maxID:
		return errors.New("/entryType: longer than " + strconv.Itoa(maxID) + " characters")
	case len(e.Reference) > maxRef:
		return errors.New("/reference: longer than " + strconv.Itoa(maxRef) + " characters")
	case len(e.PSPReference) > maxRef:
		return errors.New("/pspReference: longer than " + strconv.Itoa(maxRef) + " characters")
	case len(e.RecipientHandle) > maxHandle:
		return errors.New("/recipientHandle: longer than " + strconv.Itoa(maxHandle) + " characters")
	}
	if currency != "" {
		if !validCurrency(currency) {
			return errors.New("/currency: " + strconv.Quote(vipps.Clip(currency, 10)) + " is not an ISO 4217 code")
		}
		e.Currency = currency
	}
	if tm != "" {
		ts, ok := parseTime(tm)
		if !ok {
			return errors.New("/time: " + strconv.Quote(vipps.Clip(tm, 40)) + " is not a date-time")
		}
		e.Time = ts
	}
	switch {
	case date != "" && date != x.validDate && !validDate(date):
		return errors.New("/ledgerDate: " + strconv.Quote(vipps.Clip(date, 20)) + " is not a date (YYYY-MM-DD)")
	case date != "":
		e.LedgerDate, x.validDate = date, date
	default:
		e.LedgerDate = q.Date // by date: the date asked for; the feed: unknown
	}
	return nil
}

// timeLayouts are the forms the Report API's documents write times in: RFC 3339 ("...Z", "...+02:00"),
// the guide's "+0200", and no zone at all (the spec says the time is in UTC).
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999"}

// parseTime returns s as RFC 3339 in UTC.
func parseTime(s string) (string, bool) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			var buf [64]byte
			c := t.UTC().AppendFormat(buf[:0], time.RFC3339Nano)
			if string(c) == s {
				return s, true // already canonical: no second copy
			}
			return string(c), true
		}
	}
	return "", false
}

func validCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}

// decodeObject decodes a JSON object into v, with an error that names the field when it can.
func decodeObject(b []byte, v any) error {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || t[0] != '{' {
		return errors.New("not a JSON object")
	}
	if err := json.Unmarshal(t, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return errors.New(strings.ReplaceAll(te.Field, ".", "/") + ": want " + te.Type.String() + ", got " + te.Value)
		}
		return errors.New(vipps.Clip(err.Error(), 200))
	}
	return nil
}
