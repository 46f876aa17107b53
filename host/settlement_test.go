package host_test

import (
	"encoding/csv"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kassehq/kasse/examples/vippssim"
	"github.com/kassehq/kasse/host/internal/testredis"
	"github.com/kassehq/kasse/schemas"
)

const settlementYAML = "settlement:\n  enabled: true\n  pollInterval: 100ms\n  payoutDelay: 48h\n"

// waitSettled polls the checkout until its settlement names a payout, or fails after a few seconds.
func (s *stack) waitSettled(id string) map[string]any {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res := s.get(id)
		if st, _ := res.body["settlement"].(map[string]any); st != nil && st["payoutReference"] != nil {
			return st
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("checkout %s has no settled payout: %s", id, res.raw)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestSettlementEndToEnd: pay two orders, capture one in parts, refund part of it, close the simulator's
// ledger day; every checkout shows its settlement, and the day's report (JSON and CSV) adds up to what the
// simulator's ledger says. eCom and ePayment merchants settle the same way; memory and Redis.
func TestSettlementEndToEnd(t *testing.T) {
	for _, plugin := range []string{"vipps-ecom", "vipps-epayment"} {
		t.Run(plugin, func(t *testing.T) {
			stores(t, func(t *testing.T, redisURL string) {
				o := stackOptions{redisURL: redisURL, topYAML: settlementYAML, plugin: plugin}
				approve := func(s *stack, ref string) error { return s.sim.Approve(ref, "91234567") }
				if plugin == "vipps-epayment" {
					o.wasmDir = bothPluginsDir(t)
					o.sim, o.simURL = newEPSim(t)
					approve = func(s *stack, ref string) error { return s.sim.ApproveEPayment(ref, "") }
				}
				s := newStack(t, o)
				pay := func(amount int64) (string, string) {
					res := s.do("POST", "/v1/checkouts", checkoutBody(amount))
					if res.status != http.StatusCreated {
						t.Fatalf("create: %d %s", res.status, res.raw)
					}
					id, _ := res.body["id"].(string)
					ref, _ := res.body["providerReference"].(string)
					if err := approve(s, ref); err != nil {
						t.Fatal(err)
					}
					s.waitState(id, "authorized")
					return id, ref
				}
				post := func(id, op string, body any) {
					if res := s.do("POST", "/v1/checkouts/"+id+"/"+op, body); res.status != http.StatusOK {
						t.Fatalf("%s %s: %d %s", op, id, res.status, res.raw)
					}
				}
				a, _ := pay(49900)
				post(a, "capture", map[string]any{"amount": 20000})
				post(a, "capture", nil)
				post(a, "refund", map[string]any{"amount": 10000})
				b, _ := pay(15000)
				post(b, "capture", nil)

				days, err := s.sim.CloseLedgerDay("123456")
				if err != nil || len(days) != 1 {
					t.Fatalf("close the ledger day: %+v, %v", days, err)
				}
				day := days[0]

				stA, stB := s.waitSettled(a), s.waitSettled(b)
				for _, c := range []struct {
					st                            map[string]any
					captured, refunded, fees, net float64
				}{
					{stA, 49900, 10000, 800, 49900 - 10000 - 800},
					{stB, 15000, 0, 400, 15000 - 400},
				} {
					if c.st["captured"] != c.captured || c.st["refunded"] != c.refunded || c.st["fees"] != c.fees ||
						c.st["net"] != c.net || c.st["ledgerDate"] != day.LedgerDate ||
						c.st["payoutReference"] != day.PayoutReference || c.st["mismatch"] != nil {
						t.Errorf("settlement %v, want captured %v refunded %v fees %v net %v on %s paid out as %q",
							c.st, c.captured, c.refunded, c.fees, c.net, day.LedgerDate, day.PayoutReference)
					}
				}

				rep := s.do("GET", "/v1/settlements/demo/"+day.LedgerDate, nil)
				if rep.status != http.StatusOK {
					t.Fatalf("report: %d %s", rep.status, rep.raw)
				}
				if err := schemaSet(t).Validate(schemas.SettlementReport, rep.raw); err != nil {
					t.Fatalf("report fails its schema: %v\n%s", err, rep.raw)
				}
				checkReport(t, rep.body, day)

				csvRes := s.do("GET", "/v1/settlements/demo/"+day.LedgerDate+"?format=csv", nil)
				if csvRes.status != http.StatusOK || !strings.HasPrefix(csvRes.header.Get("Content-Type"), "text/csv") {
					t.Fatalf("csv: %d %s %s", csvRes.status, csvRes.header.Get("Content-Type"), csvRes.raw)
				}
				rows, err := csv.NewReader(strings.NewReader(string(csvRes.raw))).ReadAll()
				if err != nil {
					t.Fatalf("CSV does not parse: %v", err)
				}
				entries, _ := rep.body["entries"].([]any)
				if len(rows) != 1+len(entries)+7 {
					t.Errorf("CSV has %d rows for %d entries", len(rows), len(entries))
				}
			})
		})
	}
}

// checkReport compares the report's sums with what the simulator says it did when it closed the day.
func checkReport(t *testing.T, r map[string]any, day vippssim.ClosedDay) {
	t.Helper()
	for k, want := range map[string]float64{"grossCaptures": float64(day.Captures), "refunds": float64(day.Refunds),
		"fees": float64(day.Fees), "feesRetained": float64(day.FeesRetained), "netPayout": float64(day.Payout),
		"closingBalance": float64(day.Balance)} {
		if r[k] != want {
			t.Errorf("report %s = %v, the simulator's ledger says %v", k, r[k], want)
		}
	}
	if r["payoutReference"] != day.PayoutReference || r["balanced"] != true {
		t.Errorf("report payout %v balanced %v, want %q and true", r["payoutReference"], r["balanced"], day.PayoutReference)
	}
	if ms, _ := r["mismatches"].([]any); len(ms) != 0 {
		t.Errorf("mismatches: %v", ms)
	}
	entries, _ := r["entries"].([]any)
	for _, e := range entries {
		m, _ := e.(map[string]any)
		switch m["entryType"] {
		case "capture", "refund", "capture-fee":
			if m["checkoutId"] == nil || m["orderReference"] != "order-1001" {
				t.Errorf("entry not matched to its checkout: %v", m)
			}
		}
	}
}

// TestSettlementReportProblems: a bad date names the field, another merchant's key is refused, and a
// day the ledger has not closed is not found.
func TestSettlementReportProblems(t *testing.T) {
	s := newStack(t, stackOptions{topYAML: settlementYAML})
	expectProblem(t, s.do("GET", "/v1/settlements/demo/2026-13-01", nil), http.StatusBadRequest, "/ledgerDate")
	expectProblem(t, s.do("GET", "/v1/settlements/demo/2026-12-01?format=xls", nil), http.StatusBadRequest, "/format")
	expectProblem(t, s.do("GET", "/v1/settlements/demo/2026-12-01", nil, "Authorization", "Bearer wrong"), http.StatusUnauthorized, "")
	expectProblem(t, s.do("GET", "/v1/settlements/nobody/2026-12-01", nil), http.StatusNotFound, "")
	expectProblem(t, s.do("GET", "/v1/settlements/demo/2026-12-01", nil), http.StatusNotFound, "")
}

// TestSettlementMismatches: the simulator's ledger faults (a capture for a reference kasse never made,
// a capture kasse made that never reaches the ledger) show in the report and on /metrics.
func TestSettlementMismatches(t *testing.T) {
	s := newStack(t, stackOptions{topYAML: settlementYAML})
	if err := s.sim.SetFaults(vippssim.Faults{Ledger: vippssim.LedgerFaults{UnknownReference: true}}); err != nil {
		t.Fatal(err)
	}
	id, ref := s.create(30000)
	if err := s.sim.Approve(ref, "91234567"); err != nil {
		t.Fatal(err)
	}
	s.waitState(id, "authorized")
	if res := s.do("POST", "/v1/checkouts/"+id+"/capture", nil); res.status != http.StatusOK {
		t.Fatalf("capture: %d %s", res.status, res.raw)
	}
	days, err := s.sim.CloseLedgerDay("123456")
	if err != nil || len(days) != 1 {
		t.Fatalf("close: %+v %v", days, err)
	}
	s.waitSettled(id)
	deadline := time.Now().Add(10 * time.Second)
	for {
		rep := s.do("GET", "/v1/settlements/demo/"+days[0].LedgerDate, nil)
		ms, _ := rep.body["mismatches"].([]any)
		if rep.status == http.StatusOK && len(ms) == 1 {
			m, _ := ms[0].(map[string]any)
			if m["kind"] != "unknown-reference" || rep.body["balanced"] != true {
				t.Fatalf("mismatch %v, balanced %v", m, rep.body["balanced"])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("report: %d %s", rep.status, rep.raw)
		}
		time.Sleep(25 * time.Millisecond)
	}
	metrics := string(s.ops("GET", "/metrics", nil).raw)
	if !strings.Contains(metrics, `kasse_settlement_mismatches_total{kind="unknown-reference",merchant="demo"} 1`) {
		t.Errorf("/metrics does not count the mismatch:\n%s", metrics)
	}
}

// TestSettlementTellsWooCommerce: a WooCommerce merchant's order gets a note with the settlement.
func TestSettlementTellsWooCommerce(t *testing.T) {
	woo := newFakeWoo(t)
	s := newStack(t, stackOptions{topYAML: settlementYAML, extraMerchants: wooMerchant(woo.srv.URL), env: wooEnv("s")})
	body := checkoutBody(2935)
	body["merchant"], body["reference"], body["returnUrl"] = "woo", "727", woo.srv.URL+"/thanks"
	res := s.do("POST", "/v1/checkouts", body)
	if res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.raw)
	}
	id, _ := res.body["id"].(string)
	ref, _ := res.body["providerReference"].(string)
	if err := s.sim.Approve(ref, "91234567"); err != nil {
		t.Fatal(err)
	}
	s.waitState(id, "authorized")
	if res := s.do("POST", "/v1/checkouts/"+id+"/capture", nil); res.status != http.StatusOK {
		t.Fatalf("capture: %d %s", res.status, res.raw)
	}
	if _, err := s.sim.CloseLedgerDay("123456"); err != nil {
		t.Fatal(err)
	}
	note := woo.waitCall(t, "POST /wp-json/wc/v3/orders/727/notes", "Vipps settlement")
	if !strings.Contains(note, "net NOK 25.35") {
		t.Errorf("settlement note: %s", note)
	}
}

// TestSettlementTwoInstances: two kasse instances share one Redis and follow the same ledger; the lease lets
// one read it, and neither the checkouts nor the report count anything twice.
func TestSettlementTwoInstances(t *testing.T) {
	redisURL := testredis.Start(t)
	sim, simURL := newSim(t)
	a := newStack(t, stackOptions{redisURL: redisURL, topYAML: settlementYAML, sim: sim, simURL: simURL})
	b := newStack(t, stackOptions{redisURL: redisURL, topYAML: settlementYAML, sim: sim, simURL: simURL})
	id, ref := a.create(49900)
	if err := sim.Approve(ref, "91234567"); err != nil {
		t.Fatal(err)
	}
	a.waitState(id, "authorized")
	for _, body := range []any{map[string]any{"amount": 20000}, nil} {
		if res := b.do("POST", "/v1/checkouts/"+id+"/capture", body); res.status != http.StatusOK {
			t.Fatalf("capture: %d %s", res.status, res.raw)
		}
	}
	days, err := sim.CloseLedgerDay("123456")
	if err != nil || len(days) != 1 {
		t.Fatalf("close: %+v %v", days, err)
	}
	for _, s := range []*stack{a, b} {
		st := s.waitSettled(id)
		if st["captured"] != float64(49900) || st["fees"] != float64(800) || st["net"] != float64(49100) {
			t.Errorf("settlement %v counts something twice (want captured 49900, fees 800, net 49100)", st)
		}
		rep := s.do("GET", "/v1/settlements/demo/"+days[0].LedgerDate, nil)
		if rep.status != http.StatusOK {
			t.Fatalf("report: %d %s", rep.status, rep.raw)
		}
		checkReport(t, rep.body, days[0])
		if entries, _ := rep.body["entries"].([]any); len(entries) != 7 { // 2 captures, fees retained, payout; 2 fees, fees retained
			t.Errorf("report has %d entries, want 7", len(entries))
		}
	}
}

// TestSettlementMissingCapture: a capture the simulator never puts on the ledger is reported once the
// payout delay has passed.
func TestSettlementMissingCapture(t *testing.T) {
	s := newStack(t, stackOptions{topYAML: "settlement:\n  enabled: true\n  pollInterval: 100ms\n  payoutDelay: 300ms\n"})
	if err := s.sim.SetFaults(vippssim.Faults{Ledger: vippssim.LedgerFaults{DropCapture: 1}}); err != nil {
		t.Fatal(err)
	}
	id, ref := s.create(30000)
	if err := s.sim.Approve(ref, "91234567"); err != nil {
		t.Fatal(err)
	}
	s.waitState(id, "authorized")
	if res := s.do("POST", "/v1/checkouts/"+id+"/capture", nil); res.status != http.StatusOK {
		t.Fatalf("capture: %d %s", res.status, res.raw)
	}
	want := `kasse_settlement_mismatches_total{kind="missing-from-ledger",merchant="demo"} 1`
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(string(s.ops("GET", "/metrics", nil).raw), want) {
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never said %s", want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
