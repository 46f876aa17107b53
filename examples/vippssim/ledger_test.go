package vippssim_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/kassehq/kasse/examples/vippssim"
)

// reportPage is a Report API page as the client reads it.
type reportPage struct {
	Cursor   *string                `json:"cursor"`
	HasMore  *bool                  `json:"hasMore"`
	TryLater bool                   `json:"tryLater"`
	Items    []vippssim.LedgerEntry `json:"items"`
}

func (h *harness) report(path string) (int, reportPage) {
	h.t.Helper()
	resp, body := h.do(call{method: "GET", path: path})
	var p reportPage
	if resp.StatusCode == http.StatusOK {
		mustJSON(h.t, body, &p)
	}
	return resp.StatusCode, p
}

// ledgerID asks the Report API for the demo tenant's ledger.
func (h *harness) ledgerID() string {
	h.t.Helper()
	resp, body := h.do(call{method: "GET", path: "/settlement/v1/ledgers?settlesForRecipientHandles=api%3A" + h.tenant.MerchantSerialNumber})
	var out struct {
		Items []struct {
			LedgerID string   `json:"ledgerId"`
			Handles  []string `json:"settlesForRecipientHandles"`
		} `json:"items"`
	}
	mustJSON(h.t, body, &out)
	if resp.StatusCode != http.StatusOK || len(out.Items) != 1 || out.Items[0].Handles[0] != "api:"+h.tenant.MerchantSerialNumber {
		h.t.Fatalf("ledgers: %d %s", resp.StatusCode, body)
	}
	return out.Items[0].LedgerID
}

func (h *harness) closeDay() []vippssim.ClosedDay {
	h.t.Helper()
	resp, body := h.do(call{method: "POST", path: "/_sim/ledger/close", noAuth: true,
		body: map[string]string{"merchantSerialNumber": h.tenant.MerchantSerialNumber}})
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("close: %d %s", resp.StatusCode, body)
	}
	var days []vippssim.ClosedDay
	mustJSON(h.t, body, &days)
	return days
}

func (h *harness) setTime(t time.Time) {
	h.clock.mu.Lock()
	h.clock.t = t
	h.clock.mu.Unlock()
}

// row is the part of an entry the guide's tables show, without the pspReference (Vipps's own ids).
type row struct {
	date, entryType string
	amount          int64
	reference, time string
	before, after   int64
}

func rows(es []vippssim.LedgerEntry) []row {
	var out []row
	for _, e := range es {
		out = append(out, row{e.LedgerDate, e.EntryType, e.Amount, e.Reference, e.Time, e.BalanceBefore, e.BalanceAfter})
	}
	return out
}

func sameRows(t *testing.T, what string, got, want []row) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries, want %d:\n got %+v\nwant %+v", what, len(got), len(want), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s[%d] = %+v\n        want %+v", what, i, got[i], want[i])
		}
	}
}

// guideDay plays the guide's worked example (report-api-guide.md, "Ledger transactions and balances"):
// purchase-12 captured twice and refunded once, purchase-14 captured once, at the guide's times (its
// +0200 times in UTC).
func guideDay(h *harness) {
	h.t.Helper()
	at := func(s string) time.Time {
		t, err := time.Parse("2006-01-02T15:04:05.999999Z0700", s)
		if err != nil {
			h.t.Fatal(err)
		}
		return t
	}
	h.setTime(at("2022-10-01T12:00:00+0200"))
	h.reserved("purchase-12", 20000)
	h.reserved("purchase-14", 20000)
	for i, step := range []struct {
		at, order, kind string
		amount          int64
	}{
		{"2022-10-01T16:33:00.824993+0200", "purchase-12", "capture", 10000},
		{"2022-10-01T18:37:55.982497+0200", "purchase-12", "capture", 10000},
		{"2022-10-01T19:12:54.932428+0200", "purchase-14", "capture", 20000},
		{"2022-10-01T23:47:59.984224+0200", "purchase-12", "refund", 10000},
	} {
		h.setTime(at(step.at))
		do := h.capture
		if step.kind == "refund" {
			do = h.refund
		}
		if resp, body := do(step.order, step.amount, "guide-"+strconv.Itoa(i)); resp.StatusCode != http.StatusOK {
			h.t.Fatalf("%s %s: %d %s", step.kind, step.order, resp.StatusCode, body)
		}
	}
}

// The guide's tables, times in UTC. The guide shows the fees account's fees-retained with balanceBefore
// 1200; the account's arithmetic (and the simulator) has -1200.
var (
	guideFunds = []row{
		{"2022-10-01", "capture", 10000, "purchase-12", "2022-10-01T14:33:00.824993Z", 0, 10000},
		{"2022-10-01", "capture", 10000, "purchase-12", "2022-10-01T16:37:55.982497Z", 10000, 20000},
		{"2022-10-01", "capture", 20000, "purchase-14", "2022-10-01T17:12:54.932428Z", 20000, 40000},
		{"2022-10-01", "refund", -10000, "purchase-12", "2022-10-01T21:47:59.984224Z", 40000, 30000},
		{"2022-10-01", "fees-retained", -1200, "", "2022-10-02T00:00:00Z", 30000, 28800},
		{"2022-10-01", "scheduled-for-payout", -28800, "Vipps utbet. 2000001 Vippsnr 123456", "2022-10-02T00:00:00Z", 28800, 0},
	}
	guideFees = []row{
		{"2022-10-01", "capture-fee", -400, "purchase-12", "2022-10-01T14:33:00.824993Z", 0, -400},
		{"2022-10-01", "capture-fee", -400, "purchase-12", "2022-10-01T16:37:55.982497Z", -400, -800},
		{"2022-10-01", "capture-fee", -400, "purchase-14", "2022-10-01T17:12:54.932428Z", -800, -1200},
		{"2022-10-01", "fees-retained", 1200, "", "2022-10-02T00:00:00Z", -1200, 0},
	}
)

// TestLedgerGuideExample reproduces the guide's worked example through the Report API, every answer
// validated against report-v2.yaml by the harness's transport: 404 until the day is closed, then the
// funds and fees reports of the guide, and the same entries on the feed.
func TestLedgerGuideExample(t *testing.T) {
	h := newHarness(t)
	guideDay(h)
	id := h.ledgerID()
	if id == h.tenant.MerchantSerialNumber {
		t.Errorf("ledger id %s equals the MSN: a client could confuse them unnoticed", id)
	}
	if code, _ := h.report("/report/v2/ledgers/" + id + "/funds/dates/2022-10-01"); code != http.StatusNotFound {
		t.Fatalf("report of an open day: %d, want 404", code)
	}
	days := h.closeDay()
	want := vippssim.ClosedDay{LedgerID: id, LedgerDate: "2022-10-01", Captures: 40000, Refunds: 10000, Fees: 1200,
		FeesRetained: 1200, Payout: 28800, PayoutReference: "Vipps utbet. 2000001 Vippsnr 123456",
		PayoutPSPReference: id + "-2000001"}
	if len(days) != 1 || days[0] != want {
		t.Fatalf("closed %+v\nwant   %+v", days, want)
	}
	for _, tc := range []struct {
		topic string
		want  []row
	}{{"funds", guideFunds}, {"fees", guideFees}} {
		code, p := h.report("/report/v2/ledgers/" + id + "/" + tc.topic + "/dates/2022-10-01")
		if code != http.StatusOK || p.HasMore == nil || *p.HasMore || p.Cursor != nil || p.TryLater {
			t.Fatalf("%s by date: %d %+v", tc.topic, code, p)
		}
		sameRows(t, tc.topic+" by date", rows(p.Items), tc.want)
		code, f := h.report("/report/v2/ledgers/" + id + "/" + tc.topic + "/feed")
		if code != http.StatusOK || !f.TryLater || f.Cursor == nil || f.HasMore != nil {
			t.Fatalf("%s feed: %d %+v", tc.topic, code, f)
		}
		sameRows(t, tc.topic+" feed", rows(f.Items), tc.want)
		for _, e := range p.Items {
			if e.Currency != "NOK" || e.PSPReference == "" {
				t.Errorf("entry without currency or pspReference: %+v", e)
			}
		}
	}
	// The fees link to their captures by pspReference.
	snap, err := h.sim.Ledger(h.tenant.MerchantSerialNumber)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if snap.Funds[i].PSPReference != snap.Fees[i].PSPReference {
			t.Errorf("capture %d pspReference %s, its fee's %s", i, snap.Funds[i].PSPReference, snap.Fees[i].PSPReference)
		}
	}
	if snap.OpenDate != "2022-10-02" || len(snap.ClosedDates) != 1 {
		t.Errorf("after close: open %s, closed %v", snap.OpenDate, snap.ClosedDates)
	}
	// The next day starts from zero and has no report yet.
	if code, _ := h.report("/report/v2/ledgers/" + id + "/funds/dates/2022-10-02"); code != http.StatusNotFound {
		t.Errorf("report of the next day: %d, want 404", code)
	}
}

// TestLedgerFeedPaging follows the feed a page at a time: every entry once, in order, a cursor that
// never empties, and tryLater at the end with the same cursor.
func TestLedgerFeedPaging(t *testing.T) {
	h := newHarness(t, func(c *vippssim.Config) { c.Ledger.PageSize = 2 })
	guideDay(h)
	h.closeDay()
	id := h.ledgerID()
	var got []vippssim.LedgerEntry
	cur := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("the feed does not end")
		}
		path := "/report/v2/ledgers/" + id + "/funds/feed"
		if cur != "" {
			path += "?cursor=" + cur
		}
		code, p := h.report(path)
		if code != http.StatusOK || p.Cursor == nil || *p.Cursor == "" || len(p.Items) > 2 {
			t.Fatalf("page %d: %d %+v", pages, code, p)
		}
		got = append(got, p.Items...)
		if p.TryLater {
			again, q := h.report("/report/v2/ledgers/" + id + "/funds/feed?cursor=" + *p.Cursor)
			if again != http.StatusOK || len(q.Items) != 0 || !q.TryLater || *q.Cursor != *p.Cursor {
				t.Fatalf("at the end: %d %+v, want no items, tryLater and the same cursor", again, q)
			}
			break
		}
		cur = *p.Cursor
	}
	sameRows(t, "feed", rows(got), guideFunds)
	// New entries appear after the cursor that said tryLater.
	_, last := h.report("/report/v2/ledgers/" + id + "/funds/feed?cursor=" + cursorOf(6))
	h.reserved("order-next-day", 5000)
	if resp, body := h.capture("order-next-day", 5000, "next-1"); resp.StatusCode != http.StatusOK {
		t.Fatalf("capture: %d %s", resp.StatusCode, body)
	}
	_, p := h.report("/report/v2/ledgers/" + id + "/funds/feed?cursor=" + *last.Cursor)
	if len(p.Items) != 1 || p.Items[0].Reference != "order-next-day" || p.Items[0].LedgerDate != "2022-10-02" || !p.TryLater {
		t.Fatalf("after a new capture: %+v", p)
	}
	// By date pages too.
	code, d := h.report("/report/v2/ledgers/" + id + "/funds/dates/2022-10-01")
	if code != http.StatusOK || d.HasMore == nil || !*d.HasMore || d.Cursor == nil || len(d.Items) != 2 {
		t.Fatalf("first page by date: %d %+v", code, d)
	}
	var all []vippssim.LedgerEntry
	for all = d.Items; *d.HasMore; all = append(all, d.Items...) {
		if _, d = h.report("/report/v2/ledgers/" + id + "/funds/dates/2022-10-01?cursor=" + *d.Cursor); d.HasMore == nil {
			t.Fatal("page without hasMore")
		}
	}
	sameRows(t, "by date, paged", rows(all), guideFunds)
}

func cursorOf(n int) string {
	b, _ := json.Marshal([]byte(strconv.Itoa(n))) // base64, quoted
	return string(b[1 : len(b)-1])
}

// TestLedgerGross: with gross settlement the fees are invoiced on the fees account, and the whole balance
// is paid out.
func TestLedgerGross(t *testing.T) {
	h := newHarness(t, func(c *vippssim.Config) { c.Ledger.Gross = true })
	guideDay(h)
	days := h.closeDay()
	if days[0].Payout != 30000 || days[0].FeesRetained != 0 || days[0].Fees != 1200 {
		t.Fatalf("closed %+v", days[0])
	}
	id := h.ledgerID()
	_, funds := h.report("/report/v2/ledgers/" + id + "/funds/dates/2022-10-01")
	_, fees := h.report("/report/v2/ledgers/" + id + "/fees/dates/2022-10-01")
	last := func(p reportPage) vippssim.LedgerEntry { return p.Items[len(p.Items)-1] }
	if len(funds.Items) != 5 || last(funds).EntryType != "scheduled-for-payout" || last(funds).Amount != -30000 {
		t.Errorf("funds: %+v", rows(funds.Items))
	}
	if len(fees.Items) != 4 || last(fees).EntryType != "fees-invoiced" || last(fees).Amount != 1200 || last(fees).BalanceAfter != 0 {
		t.Errorf("fees: %+v", rows(fees.Items))
	}
}

// TestLedgerFeesConfigurable: a fee of a share of the amount, and a negative balance carried over
// without a payout.
func TestLedgerFeesConfigurable(t *testing.T) {
	h := newHarness(t)
	if err := h.sim.SetLedgerConfig(vippssim.LedgerConfig{CaptureFee: -1, CaptureFeeBasisPoints: 175}); err != nil {
		t.Fatal(err)
	}
	h.reserved("order-fee-1", 10001)
	h.capture("order-fee-1", 10001, "c1")
	h.refund("order-fee-1", 10001, "r1")
	days := h.closeDay()
	// 1.75 % of 100.01 kr is 175.0175 øre: 175. Refunds have no fee. The balance is -175: no payout.
	if d := days[0]; d.Fees != 175 || d.Payout != 0 || d.Balance != -175 {
		t.Fatalf("closed %+v", d)
	}
	if err := h.sim.SetLedgerConfig(vippssim.LedgerConfig{CaptureFeeBasisPoints: -1}); err == nil {
		t.Error("a negative share was accepted")
	}
}

// TestLedgerEPayment: ePayment captures and refunds go on the same ledger as eCom's (the ledger is the
// sales unit's, not the API's).
func TestLedgerEPayment(t *testing.T) {
	h := newHarness(t)
	if resp, body := h.epCreate("ep-ledger-0001", 30000, "WEB_REDIRECT", "k-create"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	if err := h.sim.ApproveEPayment("ep-ledger-0001", ""); err != nil {
		t.Fatal(err)
	}
	h.epModify("ep-ledger-0001", "capture", 30000, "k-capture")
	h.epModify("ep-ledger-0001", "capture", 30000, "k-capture") // a replay is no second capture
	h.epModify("ep-ledger-0001", "refund", 5000, "k-refund")
	h.reserved("ecom-ledger-1", 1000)
	h.capture("ecom-ledger-1", 1000, "c1")
	days := h.closeDay()
	if d := days[0]; d.Captures != 31000 || d.Refunds != 5000 || d.Fees != 800 || d.Payout != 31000-5000-800 {
		t.Fatalf("closed %+v", d)
	}
	snap, _ := h.sim.Ledger(h.tenant.MerchantSerialNumber)
	if snap.Funds[0].Reference != "ep-ledger-0001" || snap.Funds[0].RecipientHandle != "api:123456" {
		t.Errorf("first entry %+v", snap.Funds[0])
	}
}

// TestLedgerFaults: an entry for an unknown reference, a capture missing from the ledger, and a day the
// Report API shows late.
func TestLedgerFaults(t *testing.T) {
	h := newHarness(t)
	id := h.ledgerID()
	h.reserved("order-f1", 5000)
	if err := h.sim.SetFaults(vippssim.Faults{Ledger: vippssim.LedgerFaults{UnknownReference: true, DropCapture: 1, DelayDay: true}}); err != nil {
		t.Fatal(err)
	}
	h.capture("order-f1", 5000, "c1") // dropped from the ledger
	days := h.closeDay()
	if d := days[0]; d.Captures != 1000 || d.Fees != 400 || d.Payout != 600 {
		t.Fatalf("closed with faults: %+v", d)
	}
	date := days[0].LedgerDate
	if code, _ := h.report("/report/v2/ledgers/" + id + "/funds/dates/" + date); code != http.StatusNotFound {
		t.Fatalf("a delayed day: %d, want 404", code)
	}
	if _, f := h.report("/report/v2/ledgers/" + id + "/funds/feed"); len(f.Items) != 0 || !f.TryLater {
		t.Fatalf("the feed shows held entries: %+v", f)
	}
	h.sim.ResetFaults()
	code, p := h.report("/report/v2/ledgers/" + id + "/funds/dates/" + date)
	if code != http.StatusOK || len(p.Items) != 3 || p.Items[0].Reference != "sim-unknown-1" {
		t.Fatalf("after the delay: %d %+v", code, rows(p.Items))
	}
	// Through HTTP, as a test driving the command would.
	resp, body := h.do(call{method: "PUT", path: "/_sim/faults", noAuth: true, body: `{"ledger":{"dropCapture":2}}`})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("dropCapture 2: %d %s", resp.StatusCode, body)
	}
}

// TestLedgerAccess: the Report API wants the access token, and each credential sees its own ledger only.
func TestLedgerAccess(t *testing.T) {
	h := newHarness(t)
	id := h.ledgerID()
	if resp, _ := h.do(call{method: "GET", path: "/report/v2/ledgers/" + id + "/funds/feed", header: map[string]string{"Authorization": ""}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d", resp.StatusCode)
	}
	other := h.fetchToken(h.other)
	resp, body := h.do(call{method: "GET", path: "/report/v2/ledgers/" + id + "/funds/feed", header: map[string]string{
		"Authorization": "Bearer " + other, "Ocp-Apim-Subscription-Key": h.other.SubscriptionKey, "Merchant-Serial-Number": h.other.MerchantSerialNumber}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("another merchant's ledger: %d %s", resp.StatusCode, body)
	}
	resp, body = h.do(call{method: "GET", path: "/settlement/v1/ledgers?settlesForRecipientHandles=api%3A654321"})
	if resp.StatusCode != http.StatusOK || string(body) != `{"cursor":"","items":[]}` {
		t.Errorf("ledgers of another sales unit: %d %s", resp.StatusCode, body)
	}
	if resp, body := h.do(call{method: "GET", path: "/report/v2/ledgers/" + id + "/funds/feed?cursor=nonsense"}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad cursor: %d %s", resp.StatusCode, body)
	}
	if resp, body := h.do(call{method: "POST", path: "/_sim/ledger/close", noAuth: true, body: `{"merchantSerialNumber":"999999"}`}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("closing an unknown ledger: %d %s", resp.StatusCode, body)
	}
}

// TestLedgerControls drives the ledger controls over HTTP, as a demo or another process does: the
// configuration, the whole ledger, and closing every ledger at once.
func TestLedgerControls(t *testing.T) {
	h := newHarness(t)
	resp, body := h.do(call{method: "PUT", path: "/_sim/ledger/config", noAuth: true, body: `{"captureFee":100,"gross":true,"pageSize":5}`})
	var cfg vippssim.LedgerConfig
	mustJSON(t, body, &cfg)
	if resp.StatusCode != http.StatusOK || cfg != (vippssim.LedgerConfig{CaptureFee: 100, Gross: true, PageSize: 5}) {
		t.Fatalf("config: %d %s", resp.StatusCode, body)
	}
	if resp, body := h.do(call{method: "PUT", path: "/_sim/ledger/config", noAuth: true, body: `{"pageSize":1001}`}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("page size over 1000: %d %s", resp.StatusCode, body)
	}
	h.reserved("order-c1", 2000)
	h.capture("order-c1", 2000, "c1")
	resp, body = h.do(call{method: "POST", path: "/_sim/ledger/close", noAuth: true})
	var days []vippssim.ClosedDay
	mustJSON(t, body, &days)
	if resp.StatusCode != http.StatusOK || len(days) != 2 || days[0].Payout != 2000 || days[1].Payout != 0 {
		t.Fatalf("close all: %d %s", resp.StatusCode, body)
	}
	resp, body = h.do(call{method: "GET", path: "/_sim/ledger?merchantSerialNumber=" + h.tenant.MerchantSerialNumber, noAuth: true})
	var snap vippssim.LedgerSnapshot
	mustJSON(t, body, &snap)
	if resp.StatusCode != http.StatusOK || len(snap.Funds) != 2 || len(snap.Fees) != 2 || snap.Fees[1].EntryType != "fees-invoiced" ||
		len(snap.ClosedDates) != 1 || snap.Config.PageSize != 5 {
		t.Fatalf("ledger: %d %s", resp.StatusCode, body)
	}
	if resp, _ := h.do(call{method: "GET", path: "/_sim/ledger?merchantSerialNumber=999999", noAuth: true}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown ledger: %d", resp.StatusCode)
	}
}
