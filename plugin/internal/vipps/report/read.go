package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/internal/vipps"
)

// The Report API's answers are read with encoding/json (report operations are off the checkout's hot
// path) into types that tolerate what its documents disagree on: numbers sent as strings, ids sent as
// numbers, and amounts written as 10000.0.

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

// money is an amount in minor units: a JSON number (10000 or 10000.0) or a string holding one.
type money struct {
	Set bool
	V   int64
}

func (m *money) UnmarshalJSON(b []byte) error {
	*m = money{}
	s := string(b)
	switch {
	case s == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		m.Set, m.V = true, n
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return errors.New(strconv.Quote(vipps.Clip(s, 30)) + " is not a whole amount in minor units")
	}
	m.Set, m.V = true, int64(f)
	return nil
}

// flag is a boolean that may be absent.
type flag struct {
	Set bool
	V   bool
}

func (f *flag) UnmarshalJSON(b []byte) error {
	*f = flag{}
	switch string(b) {
	case "null":
	case "true":
		f.Set, f.V = true, true
	case "false":
		f.Set = true
	default:
		return errors.New("want a boolean")
	}
	return nil
}

// transaction is the Report API's Transaction (report-v2.yaml), decoded field by field so that an error
// names its field.
type transaction struct {
	PSPReference, Time, LedgerDate, EntryType, Reference, Currency, RecipientHandle text
	Amount, BalanceBefore, BalanceAfter                                             money
}

// page is the Report API's answer to the feed and by-date endpoints.
type page struct {
	Cursor   text              `json:"cursor"`
	HasMore  flag              `json:"hasMore"`
	TryLater flag              `json:"tryLater"`
	Items    []json.RawMessage `json:"items"`
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
	var p page
	if err := decodeObject(body, &p); err != nil {
		return vipps.Unexpected(in, what, err.Error())
	}
	if len(p.Items) > MaxItems {
		return vipps.Unexpected(in, what, strconv.Itoa(len(p.Items))+" entries, more than a page holds ("+strconv.Itoa(MaxItems)+")")
	}
	if len(p.Cursor.V) > maxCursor || !printable(p.Cursor.V) {
		return vipps.Unexpected(in, what, "cursor: not printable ASCII of at most "+strconv.Itoa(maxCursor)+" characters")
	}
	out.TryLater = p.TryLater.V
	if byDate && out.TryLater {
		// The date is not complete: nothing on it counts until it is closed, and it then comes whole.
		return &abi.Output{OK: true, Report: out}
	}
	for i, raw := range p.Items {
		e, err := entry(raw, q)
		if err != nil {
			return vipps.Unexpected(in, what, "items/"+strconv.Itoa(i)+err.Error())
		}
		out.Entries = append(out.Entries, e)
	}
	out.HasMore = p.HasMore.V
	out.Cursor = p.Cursor.V
	switch {
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

// entry reads one Transaction. An error's text starts with the field's pointer below the item ("/amount: ...").
func entry(raw json.RawMessage, q abi.ReportQuery) (abi.LedgerEntry, error) {
	var fields map[string]json.RawMessage
	if err := decodeObject(raw, &fields); err != nil {
		return abi.LedgerEntry{}, errors.New(": " + err.Error())
	}
	var t transaction
	for _, f := range []struct {
		name string
		dst  json.Unmarshaler
	}{{"pspReference", &t.PSPReference}, {"time", &t.Time}, {"ledgerDate", &t.LedgerDate}, {"entryType", &t.EntryType},
		{"reference", &t.Reference}, {"currency", &t.Currency}, {"amount", &t.Amount}, {"balanceBefore", &t.BalanceBefore},
		{"balanceAfter", &t.BalanceAfter}, {"recipientHandle", &t.RecipientHandle}} {
		if v, ok := fields[f.name]; ok {
			if err := f.dst.UnmarshalJSON(bytes.TrimSpace(v)); err != nil {
				return abi.LedgerEntry{}, errors.New("/" + f.name + ": " + err.Error())
			}
		}
	}
	e := abi.LedgerEntry{EntryType: t.EntryType.V, Reference: t.Reference.V, PSPReference: t.PSPReference.V,
		RecipientHandle: t.RecipientHandle.V, Amount: t.Amount.V, BalanceBefore: t.BalanceBefore.V, BalanceAfter: t.BalanceAfter.V}
	switch {
	case !t.Amount.Set:
		return e, errors.New("/amount: missing")
	case len(e.EntryType) > maxID:
		return e, errors.New("/entryType: longer than " + strconv.Itoa(maxID) + " characters")
	case len(e.Reference) > maxRef:
		return e, errors.New("/reference: longer than " + strconv.Itoa(maxRef) + " characters")
	case len(e.PSPReference) > maxRef:
		return e, errors.New("/pspReference: longer than " + strconv.Itoa(maxRef) + " characters")
	case len(e.RecipientHandle) > maxHandle:
		return e, errors.New("/recipientHandle: longer than " + strconv.Itoa(maxHandle) + " characters")
	}
	if c := t.Currency.V; c != "" {
		if !validCurrency(c) {
			return e, errors.New("/currency: " + strconv.Quote(vipps.Clip(c, 10)) + " is not an ISO 4217 code")
		}
		e.Currency = c
	}
	if s := t.Time.V; s != "" {
		ts, ok := parseTime(s)
		if !ok {
			return e, errors.New("/time: " + strconv.Quote(vipps.Clip(s, 40)) + " is not a date-time")
		}
		e.Time = ts
	}
	switch d := t.LedgerDate.V; {
	case d != "" && !validDate(d):
		return e, errors.New("/ledgerDate: " + strconv.Quote(vipps.Clip(d, 20)) + " is not a date (YYYY-MM-DD)")
	case d != "":
		e.LedgerDate = d
	default:
		e.LedgerDate = q.Date // by date: the date asked for; the feed: unknown
	}
	return e, nil
}

// timeLayouts are the forms the Report API's documents write times in: RFC 3339 ("...Z", "...+02:00"),
// the guide's "+0200", and no zone at all (the spec says the time is in UTC).
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999"}

// parseTime returns s as RFC 3339 in UTC.
func parseTime(s string) (string, bool) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC().Format(time.RFC3339Nano), true
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
