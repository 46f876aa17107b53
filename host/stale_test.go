package host_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestOlderCheckoutDoesNotFailAPaidOrder drives two checkouts of one shop order (a customer who abandons
// the first and pays the second, or a shop that creates a new checkout for the same order) through the
// generic platform, in every order of events that matters, and checks what the shop hears. An outcome
// where no money moved (failed, cancelled before capture) from a session that is no longer the order's
// current one is withheld and recorded in that session's history; money (paid) from any session reaches
// the shop, and a session of the order that takes money makes a later failure of the current one
// withheld too, so a paid order is never marked failed.
func TestOlderCheckoutDoesNotFailAPaidOrder(t *testing.T) {
	type step struct {
		// do is create, approve, reject, cancel, down (the shop answers 503), up (once it has refused an
		// update) or outcome (only wait for the outcome of an earlier step's update).
		do  string
		ses string // A or B
		// outcome is what must become of the notice the step causes: "delivered" or "withheld" ("" for
		// a step that causes none).
		status, outcome string
	}
	cases := []struct {
		name  string
		steps []step
		// want is what the shop heard, in order: status and session (A or B).
		want string
		// paidElsewhere names the order's current session whose history must say another session of the
		// order took money; paidOutside the session whose history must say it took money while not the
		// order's current checkout.
		paidElsewhere, paidOutside string
	}{
		{name: "newer paid, then older rejected", steps: []step{
			{do: "create", ses: "A"}, {do: "create", ses: "B"},
			{do: "approve", ses: "B", status: "paid", outcome: "delivered"},
			{do: "reject", ses: "A", status: "failed", outcome: "withheld"},
		}, want: "paid B"},
		{name: "older rejected before the newer existed", steps: []step{
			{do: "create", ses: "A"},
			{do: "reject", ses: "A", status: "failed", outcome: "delivered"},
			{do: "create", ses: "B"},
			{do: "approve", ses: "B", status: "paid", outcome: "delivered"},
		}, want: "failed A, paid B"},
		// The older checkout's failure is queued before the newer one exists, and tried again after: the
		// shop stays down until the newer one is created and paid, so the retry always finds it.
		{name: "older rejected while the shop was down, newer paid before the retry", steps: []step{
			{do: "create", ses: "A"}, {do: "down"},
			{do: "reject", ses: "A"},
			{do: "create", ses: "B"}, {do: "approve", ses: "B"}, {do: "up"},
			{do: "outcome", ses: "B", status: "paid", outcome: "delivered"},
			{do: "outcome", ses: "A", status: "failed", outcome: "withheld"},
		}, want: "paid B"},
		{name: "newer pending, older rejected, newer rejected", steps: []step{
			{do: "create", ses: "A"}, {do: "create", ses: "B"},
			{do: "reject", ses: "A", status: "failed", outcome: "withheld"},
			{do: "reject", ses: "B", status: "failed", outcome: "delivered"},
		}, want: "failed B"},
		{name: "newer paid, older cancelled", steps: []step{
			{do: "create", ses: "A"}, {do: "create", ses: "B"},
			{do: "approve", ses: "B", status: "paid", outcome: "delivered"},
			{do: "cancel", ses: "A", status: "cancelled", outcome: "withheld"},
		}, want: "paid B"},
		{name: "newer paid, then older paid too", steps: []step{
			{do: "create", ses: "A"}, {do: "create", ses: "B"},
			{do: "approve", ses: "B", status: "paid", outcome: "delivered"},
			{do: "approve", ses: "A", status: "paid", outcome: "delivered"},
		}, want: "paid B, paid A", paidElsewhere: "B", paidOutside: "A"},
		{name: "older paid, then newer rejected", steps: []step{
			{do: "create", ses: "A"}, {do: "create", ses: "B"},
			{do: "approve", ses: "A", status: "paid", outcome: "delivered"},
			{do: "reject", ses: "B", status: "failed", outcome: "withheld"},
		}, want: "paid A", paidElsewhere: "B", paidOutside: "A"},
	}
	stores(t, func(t *testing.T, redisURL string) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s, _, shop := newShopStack(t, redisURL)
				const ref = "order-42"
				ids, orders := map[string]string{}, map[string]string{}
				for _, st := range tc.steps {
					switch st.do {
					case "create":
						res := s.do("POST", "/v1/checkouts", map[string]any{
							"merchant": "shop", "reference": ref, "amount": 10000, "currency": "NOK",
							"description": "Order 42", "returnUrl": "http://shop.test/orders/42/thanks"})
						if res.status != http.StatusCreated {
							t.Fatalf("create %s: %d %s", st.ses, res.status, res.raw)
						}
						ids[st.ses], _ = res.body["id"].(string)
						orders[st.ses], _ = res.body["providerReference"].(string)
					case "approve":
						if err := s.sim.Approve(orders[st.ses], "91234567"); err != nil {
							t.Fatal(err)
						}
						s.waitState(ids[st.ses], "authorized")
					case "reject":
						if err := s.sim.Reject(orders[st.ses]); err != nil {
							t.Fatal(err)
						}
						s.waitState(ids[st.ses], "rejected")
					case "down":
						shop.mu.Lock()
						shop.down = true
						shop.mu.Unlock()
					case "up": // once the shop has refused an update
						deadline := time.Now().Add(10 * time.Second)
						for {
							shop.mu.Lock()
							refused := shop.refused
							if refused > 0 {
								shop.down = false
							}
							shop.mu.Unlock()
							if refused > 0 {
								break
							}
							if time.Now().After(deadline) {
								t.Fatal("the shop was sent no update while down")
							}
							time.Sleep(20 * time.Millisecond)
						}
					case "cancel":
						if res := s.do("POST", "/v1/checkouts/"+ids[st.ses]+"/cancel", map[string]any{}); res.status != http.StatusOK {
							t.Fatalf("cancel %s: %d %s", st.ses, res.status, res.raw)
						}
					}
					if st.outcome != "" {
						if got := s.noticeOutcome(ids[st.ses], st.status); got != st.outcome {
							t.Fatalf("after %s %s: its %s update was %s, want %s; history %s", st.do, st.ses,
								st.status, got, st.outcome, s.get(ids[st.ses]).body["history"])
						}
					}
				}
				var heard []string
				shop.mu.Lock()
				for _, u := range shop.updates {
					for name, id := range ids {
						if u["session"] == id && u["reference"] == ref {
							heard = append(heard, fmt.Sprintf("%v %s", u["status"], name))
						}
					}
				}
				shop.mu.Unlock()
				if got := strings.Join(heard, ", "); got != tc.want {
					t.Errorf("the shop heard %q, want %q", got, tc.want)
				}
				for name, cause := range map[string]string{tc.paidElsewhere: "another session of the order took money",
					tc.paidOutside: "paid while not the order's current checkout"} {
					if name != "" && !historyHas(s.get(ids[name]), cause) {
						t.Errorf("session %s's history does not say %q: %s", name, cause, s.get(ids[name]).body["history"])
					}
				}
				// The operator sees it on /metrics too.
				withheld := map[string]int{}
				for _, st := range tc.steps {
					if st.outcome == "withheld" {
						withheld[st.status]++
					}
				}
				metrics := string(s.ops("GET", "/metrics", nil).raw)
				for status, k := range withheld {
					want := fmt.Sprintf(`kasse_platform_updates_withheld_total{merchant="shop",status=%q} %d`, status, k)
					if !strings.Contains(metrics, want) {
						t.Errorf("/metrics lacks %s", want)
					}
				}
				if want := `kasse_payments_outside_current_session_total{merchant="shop"} 1`; (tc.paidOutside != "") != strings.Contains(metrics, want) {
					t.Errorf("/metrics shows %s: %v, want %v", want, tc.paidOutside == "", tc.paidOutside != "")
				}
			})
		}
	})
}

// noticeOutcome waits until the session's history says what became of its update with status: delivered
// to the shop's platform, or withheld.
func (s *stack) noticeOutcome(id, status string) string {
	s.t.Helper()
	// An update refused once is tried again after outbound's first back-off (5 s, with jitter).
	deadline := time.Now().Add(30 * time.Second)
	for {
		res := s.get(id)
		hist, _ := res.body["history"].([]any)
		for _, e := range hist {
			ev, _ := e.(map[string]any)
			detail, _ := ev["detail"].(string)
			if !strings.HasPrefix(detail, status+" update ") {
				continue
			}
			switch ev["cause"] {
			case "platform update delivered":
				return "delivered"
			case "platform update withheld":
				return "withheld"
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("session %s: no %s update delivered or withheld; history %s", id, status, res.body["history"])
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// historyHas reports whether the session's history has an event with cause.
func historyHas(res result, cause string) bool {
	hist, _ := res.body["history"].([]any)
	for _, e := range hist {
		if ev, _ := e.(map[string]any); ev["cause"] == cause {
			return true
		}
	}
	return false
}

// TestOlderCheckoutDoesNotFailAPaidWooCommerceOrder: WooCommerce is the platform where a failed update
// changes the order's status. Two checkouts of order 727: the newer is paid and the order marked paid;
// the older is then rejected, and the order is left paid (no PUT to "failed"), with the update withheld
// in the older session's history.
func TestOlderCheckoutDoesNotFailAPaidWooCommerceOrder(t *testing.T) {
	woo := newFakeWoo(t)
	s := newStack(t, stackOptions{
		extraMerchants: wooMerchant(woo.srv.URL),
		env:            wooEnv("woo-webhook-secret"),
	})
	create := func() (id, orderID string) {
		res := s.do("POST", "/v1/checkouts", map[string]any{"merchant": "woo", "reference": "727", "amount": 2935,
			"currency": "NOK", "description": "Order 727", "returnUrl": woo.srv.URL + "/checkout/order-received/727"})
		if res.status != http.StatusCreated {
			t.Fatalf("create: %d %s", res.status, res.raw)
		}
		id, _ = res.body["id"].(string)
		orderID, _ = res.body["providerReference"].(string)
		return id, orderID
	}
	a, aOrder := create()
	b, bOrder := create()
	if err := s.sim.Approve(bOrder, "91234567"); err != nil {
		t.Fatal(err)
	}
	s.waitState(b, "authorized")
	woo.waitCall(t, "PUT /wp-json/wc/v3/orders/727", `"set_paid":true`)
	if err := s.sim.Reject(aOrder); err != nil {
		t.Fatal(err)
	}
	s.waitState(a, "rejected")
	if got := s.noticeOutcome(a, "failed"); got != "withheld" {
		t.Fatalf("the older checkout's failed update was %s, want withheld", got)
	}
	woo.mu.Lock()
	defer woo.mu.Unlock()
	for _, c := range woo.calls {
		if strings.HasPrefix(c, "PUT /wp-json/wc/v3/orders/727") && strings.Contains(c, `"status":"failed"`) {
			t.Errorf("the paid order was marked failed: %s", c)
		}
	}
}
