package notify_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/host/notify"
	"github.com/kassehq/kasse/host/outbound"
	"github.com/kassehq/kasse/host/payment"
)

// TestDeliveryChecksTheOrdersCurrentSession: an update is delivered, withheld, or reported as a payment
// outside the order's current session, by its status, what it captured, and the session the order's
// reference points at when it is delivered.
func TestDeliveryChecksTheOrdersCurrentSession(t *testing.T) {
	paidElsewhere := []payment.Event{{Cause: payment.CauseOrderPaidElsewhere, Detail: "session ks0 of this order took 29.35 NOK"}}
	cases := []struct {
		name     string
		status   string
		captured int64
		current  *payment.Session // the order's current session at delivery; nil: none
		lookup   error
		// want: "sent", "withheld" or "retried"; stale: whether OnStalePayment is called.
		want  string
		stale bool
	}{
		{name: "failed, this is the current session", status: payment.NoticeFailed,
			current: &payment.Session{ID: "ks1", State: payment.StateRejected}, want: "sent"},
		{name: "failed, no session indexed", status: payment.NoticeFailed, want: "sent"},
		{name: "failed, a newer session is current", status: payment.NoticeFailed,
			current: &payment.Session{ID: "ks2", State: payment.StateAuthorized}, want: "withheld"},
		{name: "failed, a newer pending session is current", status: payment.NoticeFailed,
			current: &payment.Session{ID: "ks2", State: payment.StatePending}, want: "withheld"},
		{name: "failed, current, another session took money", status: payment.NoticeFailed,
			current: &payment.Session{ID: "ks1", State: payment.StateRejected, History: paidElsewhere}, want: "withheld"},
		{name: "cancelled before capture, a newer session is current", status: payment.NoticeCancelled,
			current: &payment.Session{ID: "ks2", State: payment.StateAuthorized}, want: "withheld"},
		{name: "cancelled after a capture, a newer session is current", status: payment.NoticeCancelled, captured: 1000,
			current: &payment.Session{ID: "ks2", State: payment.StateAuthorized}, want: "sent"},
		{name: "paid, a newer session is current", status: payment.NoticePaid,
			current: &payment.Session{ID: "ks2", State: payment.StateAuthorized}, want: "sent", stale: true},
		{name: "paid, this is the current session", status: payment.NoticePaid,
			current: &payment.Session{ID: "ks1", State: payment.StateAuthorized}, want: "sent"},
		{name: "captured, a newer session is current", status: payment.NoticeCaptured, captured: 1000,
			current: &payment.Session{ID: "ks2", State: payment.StateAuthorized}, want: "sent"},
		{name: "refunded, a newer session is current", status: payment.NoticeRefunded, captured: 1000,
			current: &payment.Session{ID: "ks2", State: payment.StateAuthorized}, want: "sent"},
		{name: "failed, the order cannot be looked up", status: payment.NoticeFailed,
			lookup: errors.New("store unavailable"), want: "retried"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlatform(t, `{"id":727}`)
			clk := &clock{t: time.Unix(1_764_000_000, 0)}
			var withheld []string
			var stale []string
			n, err := notify.New(notify.Config{Adapters: adapters.Registered(),
				Merchants: merchants{"woo": wooMerchant(p.URL)}, Storage: outbound.NewMemoryStorage(),
				Client: p.Client(), Now: clk.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				CurrentSession: func(_ context.Context, merchant, reference string) (*payment.Session, error) {
					if merchant != "woo" || reference != "727" {
						t.Errorf("CurrentSession(%s, %s)", merchant, reference)
					}
					return tc.current, tc.lookup
				},
				OnWithheld: func(_ context.Context, _ string, u adapters.StatusUpdate, why string) {
					withheld = append(withheld, string(u.Status)+": "+why)
				},
				OnStalePayment: func(_ context.Context, _ string, u adapters.StatusUpdate, cur *payment.Session) error {
					stale = append(stale, u.Session+" outside "+cur.ID)
					return nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			sess := &payment.Session{ID: "ks1", Merchant: "woo", Reference: "727", Amount: 2935, Currency: "NOK",
				ProviderReference: "kvipps1"}
			nt := payment.Notice{Seq: 1, DeliveryID: "ks1.1", Status: tc.status, Amount: 2935,
				Totals: payment.Amounts{Authorized: 2935, Captured: tc.captured}}
			if err := n.Relay(t.Context(), sess, []payment.Notice{nt}); err != nil {
				t.Fatal(err)
			}
			if k, err := n.RunOnce(t.Context(), 10); k != 1 || err != nil {
				t.Fatalf("RunOnce = %d, %v", k, err)
			}
			st, _ := n.Stats(t.Context())
			got := "sent"
			switch {
			case len(withheld) > 0:
				got = "withheld"
			case st.Pending == 1:
				got = "retried"
			}
			if got != tc.want {
				t.Fatalf("%s, want %s (withheld %q, stats %+v)", got, tc.want, withheld, st)
			}
			if sent := len(p.got()) > 0; sent != (got == "sent") {
				t.Errorf("%d requests reached the platform for an update that was %s", len(p.got()), got)
			}
			if got == "withheld" && !strings.Contains(withheld[0], "ks") {
				t.Errorf("the reason does not name the session: %q", withheld[0])
			}
			if (len(stale) > 0) != tc.stale {
				t.Errorf("OnStalePayment calls %q, want any: %v", stale, tc.stale)
			}
		})
	}
}

// TestWithholdIsPure: Withhold decides from the update and the current session alone.
func TestWithholdIsPure(t *testing.T) {
	u := adapters.StatusUpdate{Status: adapters.StatusFailed, Session: "ks1", Reference: "727"}
	if why := notify.Withhold(u, &payment.Session{ID: "ks2", State: payment.StateAuthorized}); !strings.Contains(why, "ks2") {
		t.Errorf("Withhold = %q, want a reason naming ks2", why)
	}
	if why := notify.Withhold(u, nil); why != "" {
		t.Errorf("Withhold without a current session = %q", why)
	}
	u.Status = adapters.StatusCancelled // no totals: not known to have captured nothing
	if why := notify.Withhold(u, &payment.Session{ID: "ks2"}); why != "" {
		t.Errorf("Withhold of a cancel without totals = %q", why)
	}
}
