// Package report is the Vipps Report API mapping both Vipps plugins share: it builds the requests for a
// merchant's settlement ledgers (GET /settlement/v1/ledgers) and for the funds and fees accounts of a
// ledger (GET /report/v2/ledgers/{ledgerId}/{topic}/feed and .../dates/{ledgerDate}), and reads the answers
// into the canonical abi.LedgerList and abi.ReportPage. The ledger belongs to the sales unit, not to the
// payment API, so vipps-ecom and vipps-epayment answer the report operations (abi.ReportOps) the same way.
//
// It owns the reading of the Report API's shapes and quirks (report-v2.yaml and the API guide): times with
// "Z" or "+0200" offsets, entry types added without warning (kept as given), 404 for a date that is not
// closed yet, a feed cursor that never empties. It keeps no state, like the plugins, and everything the
// request names (ledger, topic, date, cursor, the merchant's sales unit) comes from the host's query.
package report

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strconv"
	"time"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/internal/vipps"
)

// Error codes this package reports; the plugins document the same values as their own.
const (
	// CodeInvalidInput: the query or the merchant cannot be turned into a Report API request.
	CodeInvalidInput = vipps.CodeInvalidInput
	// CodeProviderError: the Report API answered with an error status.
	CodeProviderError = "provider_error"
	// CodeUnexpectedResponse: a success answer that cannot be read as a page of the ledger.
	CodeUnexpectedResponse = vipps.CodeUnexpectedResponse
)

// Limits of what a query may hold and a page may carry (the output schema's limits).
const (
	// MaxItems is the most entries (or ledgers) a page may hold: the Report API sends up to 1000.
	MaxItems    = 1000
	maxID       = 100
	maxCursor   = 1000
	maxRef      = 200
	maxHandle   = 100
	maxBankText = 200
)

// Paths of the Report API.
const (
	ledgersPath = "/settlement/v1/ledgers"
	reportPath  = "/report/v2/ledgers/"
)

// Handle performs in.Op if it is a report operation; ok is false for any other operation.
func Handle(in *abi.Input) (out *abi.Output, ok bool) {
	switch in.Op {
	case abi.OpBuildLedgers:
		return buildLedgers(in), true
	case abi.OpReadLedgers:
		return readLedgers(in), true
	case abi.OpBuildReportFeed:
		return buildReport(in, false), true
	case abi.OpReadReportFeed:
		return readReport(in, false), true
	case abi.OpBuildReportByDate:
		return buildReport(in, true), true
	case abi.OpReadReportByDate:
		return readReport(in, true), true
	}
	return nil, false
}

// Path returns the request path a build operation produces for query q (and, for build_ledgers, the
// merchant serial number msn), or "" if op is not a report build operation. host/fence rebuilds the same
// request independently and refuses any other.
func Path(op abi.Op, q abi.ReportQuery, msn string) string {
	switch op {
	case abi.OpBuildLedgers:
		v := url.Values{"settlesForRecipientHandles": {"api:" + msn}}
		if q.Cursor != "" {
			v.Set("cursor", q.Cursor)
		}
		return ledgersPath + "?" + v.Encode()
	case abi.OpBuildReportFeed, abi.OpBuildReportByDate:
		p := reportPath + url.PathEscape(q.LedgerID) + "/" + url.PathEscape(q.Topic)
		if op == abi.OpBuildReportFeed {
			p += "/feed"
		} else {
			p += "/dates/" + url.PathEscape(q.Date)
		}
		if q.Cursor != "" {
			p += "?" + url.Values{"cursor": {q.Cursor}}.Encode()
		}
		return p
	}
	return ""
}

// Query decodes the report query the host sends in in.Callback (abi.ReportQuery as JSON); a field of
// the wrong type is an invalid_input failure naming it.
func Query(in *abi.Input) (abi.ReportQuery, *abi.Output) {
	var q abi.ReportQuery
	raw := bytes.TrimSpace(in.Callback)
	if len(raw) == 0 || string(raw) == "null" {
		return q, vipps.Invalid("callback", "missing: "+string(in.Op)+" needs the report query (ledgerId, topic, date, cursor)")
	}
	if raw[0] != '{' {
		return q, vipps.Invalid("callback", "the report query must be a JSON object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return q, vipps.Invalid("callback", "the report query is not JSON: "+vipps.Clip(err.Error(), 100))
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"ledgerId", &q.LedgerID}, {"topic", &q.Topic}, {"date", &q.Date}, {"cursor", &q.Cursor}} {
		name, dst := f.name, f.dst
		v, ok := fields[name]
		if !ok || string(v) == "null" {
			continue
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return q, vipps.Invalid("callback."+name, "must be a string")
		}
	}
	return q, nil
}

// checkQuery checks the parts of q that op uses.
func checkQuery(op abi.Op, q abi.ReportQuery) *abi.Output {
	if len(q.Cursor) > maxCursor || !printable(q.Cursor) {
		return vipps.Invalid("callback.cursor", "must be printable ASCII of at most "+strconv.Itoa(maxCursor)+" characters")
	}
	if op == abi.OpBuildLedgers || op == abi.OpReadLedgers {
		return nil
	}
	switch {
	case q.LedgerID == "":
		return vipps.Invalid("callback.ledgerId", "missing: the ledger to read")
	case len(q.LedgerID) > maxID || !segment(q.LedgerID):
		return vipps.Invalid("callback.ledgerId", strconv.Quote(vipps.Clip(q.LedgerID, 40))+" is not a ledger id (at most 100 letters, digits, \"-\", \"_\", \"~\" and single dots between them)")
	case q.Topic != abi.TopicFunds && q.Topic != abi.TopicFees:
		return vipps.Invalid("callback.topic", strconv.Quote(vipps.Clip(q.Topic, 20))+" is not a topic: funds or fees")
	}
	byDate := op == abi.OpBuildReportByDate || op == abi.OpReadReportByDate
	if byDate && !validDate(q.Date) {
		return vipps.Invalid("callback.date", strconv.Quote(vipps.Clip(q.Date, 20))+" is not a ledger date (YYYY-MM-DD)")
	}
	if !byDate && q.Date != "" {
		return vipps.Invalid("callback.date", "the feed has no date")
	}
	return nil
}

func buildLedgers(in *abi.Input) *abi.Output {
	msn := in.Merchant.MerchantSerialNumber
	if len(msn) < 4 || len(msn) > 6 || !vipps.AllDigits(msn) {
		return vipps.Invalid("merchant.merchantSerialNumber", strconv.Quote(vipps.Clip(msn, 20))+" is not a Vipps merchant serial number (4 to 6 digits)")
	}
	q, fail := Query(in)
	if fail != nil {
		// The first page needs no query: an absent callback asks for it.
		if len(bytes.TrimSpace(in.Callback)) != 0 {
			return fail
		}
		q = abi.ReportQuery{}
	}
	if fail := checkQuery(in.Op, q); fail != nil {
		return fail
	}
	return &abi.Output{OK: true, Request: &abi.Request{Method: "GET", Path: Path(in.Op, q, msn)}}
}

func buildReport(in *abi.Input, byDate bool) *abi.Output {
	q, fail := Query(in)
	if fail != nil {
		return fail
	}
	if fail := checkQuery(in.Op, q); fail != nil {
		return fail
	}
	return &abi.Output{OK: true, Request: &abi.Request{Method: "GET", Path: Path(in.Op, q, "")}}
}

// printable reports whether s is printable ASCII (no space: a cursor or id never has one).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// segment reports whether s is a path segment the host takes without escapes: letters, digits, "-", "_",
// "~" and single dots between them (so never "." or "..").
func segment(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '~':
		case c == '.' && i > 0 && i < len(s)-1 && s[i-1] != '.':
		default:
			return false
		}
	}
	return len(s) > 0
}

// validDate reports whether s is a calendar date YYYY-MM-DD.
func validDate(s string) bool {
	if len(s) != 10 {
		return false
	}
	_, err := time.Parse("2006-01-02", s)
	return err == nil
}
