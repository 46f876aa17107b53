package fence

import (
	"encoding/json"
	"net/url"
	"slices"

	"github.com/kassehq/kasse/plugin/abi"
)

// reportRequest checks the request of a report operation (abi.ReportOps): a plain GET of the Report API
// that names exactly what the host's query (in.Callback) asks for: the merchant's own sales unit
// (api:{merchantSerialNumber}) for the ledger list, the query's ledger, topic and date for a report, and
// the query's cursor. Nothing else may be in the path or the query string, and nothing may be injected.
func reportRequest(in *abi.Input, req *abi.Request) error {
	refuse := func(ptr, reason string) error { return &Error{Op: in.Op, Pointer: ptr, Reason: reason} }
	switch {
	case req.Method != "GET":
		return refuse("/method", "a report request is a GET")
	case len(req.Body) > 0:
		return refuse("/body", "a report request has no body")
	case len(req.Inject) > 0:
		return refuse("/inject", "operation "+string(in.Op)+" may not ask for host values")
	case req.IdempotencyHeader != "":
		return refuse("/idempotencyHeader", "a report request is not idempotent by key")
	}
	var q abi.ReportQuery
	if len(in.Callback) > 0 && string(in.Callback) != "null" {
		if err := json.Unmarshal(in.Callback, &q); err != nil {
			return refuse("/path", "the host's report query does not decode, so no request can match it")
		}
	}
	u, err := url.Parse(req.Path)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return refuse("/path", "not a path of the merchant's provider")
	}
	want := url.Values{}
	if q.Cursor != "" {
		want.Set("cursor", q.Cursor)
	}
	var path string
	switch in.Op {
	case abi.OpBuildLedgers:
		path = "/settlement/v1/ledgers"
		want.Set("settlesForRecipientHandles", "api:"+in.Merchant.MerchantSerialNumber)
	case abi.OpBuildReportFeed, abi.OpBuildReportByDate:
		if q.LedgerID == "" || (q.Topic != abi.TopicFunds && q.Topic != abi.TopicFees) {
			return refuse("/path", "the host's report query names no ledger and topic")
		}
		path = "/report/v2/ledgers/" + q.LedgerID + "/" + q.Topic
		if in.Op == abi.OpBuildReportFeed {
			path += "/feed"
		} else {
			if q.Date == "" {
				return refuse("/path", "the host's report query names no date")
			}
			path += "/dates/" + q.Date
		}
	default:
		return refuse("/path", "not a report operation that builds a request")
	}
	if u.Path != path || u.RawPath != "" {
		return refuse("/path", "GET "+clip(req.Path, 80)+" is not the Report API request for the merchant's own ledger, topic and date that kasse asked for")
	}
	got := u.Query()
	if len(got) != len(want) {
		return refuse("/path", "the query string must carry exactly what kasse asked for (cursor, and the merchant's sales unit for the ledger list)")
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			return refuse("/path", "query parameter "+k+" differs from the value kasse decided")
		}
	}
	return nil
}
