package fence_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/kassehq/kasse/host/fence"
	"github.com/kassehq/kasse/plugin/abi"
)

// TestReportRequest: a report operation's request must be exactly the Report API GET the host's query names.
func TestReportRequest(t *testing.T) {
	input := func(op abi.Op, q string) *abi.Input {
		in := &abi.Input{Op: op, Merchant: abi.Merchant{ID: "m", MerchantSerialNumber: "123456"}}
		if q != "" {
			in.Callback = json.RawMessage(q)
		}
		return in
	}
	feed := `{"ledgerId":"12345","topic":"funds","cursor":"Mw=="}`
	date := `{"ledgerId":"12345","topic":"fees","date":"2022-10-01"}`
	tests := []struct {
		name  string
		op    abi.Op
		query string
		req   abi.Request
		// refused names the pointer of the refusal; empty means the request passes.
		refused string
	}{
		{"ledgers", abi.OpBuildLedgers, "", abi.Request{Method: "GET", Path: "/settlement/v1/ledgers?settlesForRecipientHandles=api%3A123456"}, ""},
		{"ledgers, other order and escapes", abi.OpBuildLedgers, `{"cursor":"a b"}`,
			abi.Request{Method: "GET", Path: "/settlement/v1/ledgers?settlesForRecipientHandles=api:123456&cursor=a+b"}, ""},
		{"ledgers of another sales unit", abi.OpBuildLedgers, "", abi.Request{Method: "GET", Path: "/settlement/v1/ledgers?settlesForRecipientHandles=api%3A654321"}, "/path"},
		{"all ledgers", abi.OpBuildLedgers, "", abi.Request{Method: "GET", Path: "/settlement/v1/ledgers"}, "/path"},
		{"ledgers with a cursor kasse did not give", abi.OpBuildLedgers, "", abi.Request{Method: "GET",
			Path: "/settlement/v1/ledgers?settlesForRecipientHandles=api%3A123456&cursor=x"}, "/path"},
		{"feed", abi.OpBuildReportFeed, feed, abi.Request{Method: "GET", Path: "/report/v2/ledgers/12345/funds/feed?cursor=Mw%3D%3D"}, ""},
		{"feed without the cursor", abi.OpBuildReportFeed, feed, abi.Request{Method: "GET", Path: "/report/v2/ledgers/12345/funds/feed"}, "/path"},
		{"feed with another cursor", abi.OpBuildReportFeed, feed, abi.Request{Method: "GET", Path: "/report/v2/ledgers/12345/funds/feed?cursor=MA%3D%3D"}, "/path"},
		{"feed of another ledger", abi.OpBuildReportFeed, feed, abi.Request{Method: "GET", Path: "/report/v2/ledgers/99999/funds/feed?cursor=Mw%3D%3D"}, "/path"},
		{"feed of the other topic", abi.OpBuildReportFeed, feed, abi.Request{Method: "GET", Path: "/report/v2/ledgers/12345/fees/feed?cursor=Mw%3D%3D"}, "/path"},
		{"feed with an extra parameter", abi.OpBuildReportFeed, feed, abi.Request{Method: "GET", Path: "/report/v2/ledgers/12345/funds/feed?cursor=Mw%3D%3D&x=1"}, "/path"},
		{"feed on a foreign host", abi.OpBuildReportFeed, feed, abi.Request{Method: "GET", Path: "//evil.example/report/v2/ledgers/12345/funds/feed?cursor=Mw%3D%3D"}, "/path"},
		{"feed as an absolute URL", abi.OpBuildReportFeed, feed, abi.Request{Method: "GET", Path: "https://evil.example/report/v2/ledgers/12345/funds/feed?cursor=Mw%3D%3D"}, "/path"},
		{"feed with an escaped path", abi.OpBuildReportFeed, feed, abi.Request{Method: "GET", Path: "/report/v2/ledgers/12345%2F..%2F1/funds/feed?cursor=Mw%3D%3D"}, "/path"},
		{"feed as a POST", abi.OpBuildReportFeed, feed, abi.Request{Method: "POST", Path: "/report/v2/ledgers/12345/funds/feed?cursor=Mw%3D%3D"}, "/method"},
		{"feed with a body", abi.OpBuildReportFeed, feed, abi.Request{Method: "GET", Path: "/report/v2/ledgers/12345/funds/feed?cursor=Mw%3D%3D", Body: json.RawMessage(`{}`)}, "/body"},
		{"feed asking for the callback token", abi.OpBuildReportFeed, feed, abi.Request{Method: "GET", Path: "/report/v2/ledgers/12345/funds/feed?cursor=Mw%3D%3D",
			Inject: []abi.Injection{{Pointer: "/t", Value: abi.InjectCallbackToken}}}, "/inject"},
		{"feed without a query", abi.OpBuildReportFeed, "", abi.Request{Method: "GET", Path: "/report/v2/ledgers/12345/funds/feed"}, "/path"},
		{"by date", abi.OpBuildReportByDate, date, abi.Request{Method: "GET", Path: "/report/v2/ledgers/12345/fees/dates/2022-10-01"}, ""},
		{"by date, another date", abi.OpBuildReportByDate, date, abi.Request{Method: "GET", Path: "/report/v2/ledgers/12345/fees/dates/2022-10-02"}, "/path"},
		{"by date as the feed", abi.OpBuildReportByDate, date, abi.Request{Method: "GET", Path: "/report/v2/ledgers/12345/fees/feed"}, "/path"},
		{"by date to a payment API", abi.OpBuildReportByDate, date, abi.Request{Method: "GET", Path: "/epayment/v1/payments/12345"}, "/path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fence.Request(input(tt.op, tt.query), &tt.req)
			var fe *fence.Error
			switch {
			case tt.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.refused != "" && !errors.As(err, &fe):
				t.Fatalf("passed (err %v), want a refusal at %s", err, tt.refused)
			case tt.refused != "" && fe.Pointer != tt.refused:
				t.Fatalf("refused at %s (%v), want %s", fe.Pointer, err, tt.refused)
			}
		})
	}
}
