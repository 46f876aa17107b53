package vippssim_test

import (
	"encoding/json"
	"testing"

	"github.com/kassehq/kasse/examples/vippssim"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/vippsecom/ecom"
	"github.com/kassehq/kasse/plugin/vippsepayment/epayment"
)

// TestLedgerThroughPlugins follows the simulator's ledger the way kasse does, with the report operations
// of both Vipps plugins: find the ledger, follow the funds and fees feeds a page at a time to their end,
// and read the closed day's reports. Every request the plugins build and every answer the simulator gives
// is checked against report-v2.yaml by the harness's transport; the entries read must be the guide's.
func TestLedgerThroughPlugins(t *testing.T) {
	for _, p := range []struct {
		name   string
		handle func(*abi.Input) *abi.Output
	}{{"vipps-ecom", ecom.Handle}, {"vipps-epayment", epayment.Handle}} {
		t.Run(p.name, func(t *testing.T) {
			h := newHarness(t, func(c *vippssim.Config) { c.Ledger.PageSize = 4 })
			guideDay(h)
			merchant := abi.Merchant{ID: "acme", MerchantSerialNumber: h.tenant.MerchantSerialNumber}
			call := func(op abi.Op, q abi.ReportQuery) *abi.Output {
				t.Helper()
				raw, _ := json.Marshal(q)
				in := &abi.Input{Op: op, Merchant: merchant, Callback: raw}
				out := p.handle(in)
				if !out.OK {
					t.Fatalf("%s: %+v", op, out.Error)
				}
				if out.Request == nil {
					return out
				}
				resp, body := h.do(call{method: out.Request.Method, path: out.Request.Path})
				in.Op = abi.Op("read_" + string(op)[len("build_"):])
				in.Response = &abi.Response{Status: resp.StatusCode, Body: body}
				if len(body) == 0 {
					in.Response.Body = nil
				}
				read := p.handle(in)
				if !read.OK {
					t.Fatalf("%s of %d %s: %+v", in.Op, resp.StatusCode, body, read.Error)
				}
				return read
			}
			ledgers := call(abi.OpBuildLedgers, abi.ReportQuery{}).Ledgers
			if len(ledgers.Ledgers) != 1 || ledgers.Cursor != "" {
				t.Fatalf("ledgers: %+v", ledgers)
			}
			id := ledgers.Ledgers[0].LedgerID
			date := abi.ReportQuery{LedgerID: id, Topic: abi.TopicFunds, Date: "2022-10-01"}
			if r := call(abi.OpBuildReportByDate, date).Report; !r.TryLater || len(r.Entries) != 0 {
				t.Fatalf("report of an open day: %+v", r)
			}
			h.closeDay()
			for _, tc := range []struct {
				topic string
				want  []row
			}{{abi.TopicFunds, guideFunds}, {abi.TopicFees, guideFees}} {
				var feed []abi.LedgerEntry
				q := abi.ReportQuery{LedgerID: id, Topic: tc.topic}
				for pages := 0; ; pages++ {
					if pages > 5 {
						t.Fatal("the feed does not end")
					}
					r := call(abi.OpBuildReportFeed, q).Report
					feed = append(feed, r.Entries...)
					if r.Cursor == "" {
						t.Fatal("a feed page without a cursor")
					}
					q.Cursor = r.Cursor
					if r.TryLater {
						break
					}
				}
				sameRows(t, tc.topic+" feed", canonicalRows(feed), tc.want)
				var day []abi.LedgerEntry
				dq := abi.ReportQuery{LedgerID: id, Topic: tc.topic, Date: "2022-10-01"}
				for {
					r := call(abi.OpBuildReportByDate, dq).Report
					day = append(day, r.Entries...)
					if !r.HasMore {
						break
					}
					dq.Cursor = r.Cursor
				}
				sameRows(t, tc.topic+" by date", canonicalRows(day), tc.want)
			}
		})
	}
}

func canonicalRows(es []abi.LedgerEntry) []row {
	var out []row
	for _, e := range es {
		out = append(out, row{e.LedgerDate, e.EntryType, e.Amount, e.Reference, e.Time, e.BalanceBefore, e.BalanceAfter})
	}
	return out
}
