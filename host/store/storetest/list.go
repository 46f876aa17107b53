package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/store"
)

// testList checks Lister: newest first across pages (ties at one microsecond included), the state index
// following Update, the date range, Match, the counts per state, and a refused cursor.
func testList(t *testing.T, st store.Store, _ *config) {
	l, ok := st.(store.Lister)
	if !ok {
		t.Fatalf("%T does not implement store.Lister", st)
	}
	ctx := t.Context()
	// s0..s5 of acme, one minute apart, except s3 and s4 which share s3's microsecond; x0 of another
	// merchant in between.
	for i := range 6 {
		s := Sample(fmt.Sprintf("s%d", i), "")
		at := t0.Add(time.Duration(min(i, 3)+max(i-4, 0)) * time.Minute)
		if i == 5 {
			at = t0.Add(10 * time.Minute)
		}
		s.CreatedAt = at
		if i%2 == 1 {
			s.PluginVersion = "2.0.0"
		}
		mustCreate(t, st, s, time.Hour)
	}
	other := Sample("x0", "")
	other.Merchant = "other"
	other.CreatedAt = t0.Add(2 * time.Minute)
	mustCreate(t, st, other, time.Hour)
	mustUpdate(t, st, "s1", func(s *payment.Session) (bool, error) {
		s.State = payment.StateAuthorized
		return true, nil
	})

	list := func(q store.ListQuery) []string {
		t.Helper()
		var ids []string
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatalf("ListSessions(%+v): no end after 10 pages", q)
			}
			page, err := l.ListSessions(ctx, q)
			if err != nil {
				t.Fatalf("ListSessions(%+v): %v", q, err)
			}
			for _, s := range page.Sessions {
				ids = append(ids, s.ID)
			}
			if page.Next == "" {
				return ids
			}
			q.Cursor = page.Next
		}
	}
	for _, tc := range []struct {
		name string
		q    store.ListQuery
		want []string
	}{
		{"all in pages of 2", store.ListQuery{Merchant: "acme", Limit: 2}, []string{"s5", "s4", "s3", "s2", "s1", "s0"}},
		{"one page", store.ListQuery{Merchant: "acme"}, []string{"s5", "s4", "s3", "s2", "s1", "s0"}},
		{"pages of 1", store.ListQuery{Merchant: "acme", Limit: 1}, []string{"s5", "s4", "s3", "s2", "s1", "s0"}},
		{"state moved by Update", store.ListQuery{Merchant: "acme", State: payment.StateAuthorized}, []string{"s1"}},
		{"state pending", store.ListQuery{Merchant: "acme", State: payment.StatePending, Limit: 2},
			[]string{"s5", "s4", "s3", "s2", "s0"}},
		{"date range", store.ListQuery{Merchant: "acme", From: t0.Add(time.Minute), To: t0.Add(3 * time.Minute)},
			[]string{"s2", "s1"}},
		{"match", store.ListQuery{Merchant: "acme", Limit: 1,
			Match: func(s *payment.Session) bool { return s.PluginVersion == "2.0.0" }}, []string{"s5", "s3", "s1"}},
		{"match bounded by MaxScan", store.ListQuery{Merchant: "acme", Limit: 1, MaxScan: 1,
			Match: func(s *payment.Session) bool { return s.ID == "s0" }}, []string{"s0"}},
		{"other merchant", store.ListQuery{Merchant: "other"}, []string{"x0"}},
		{"unknown merchant", store.ListQuery{Merchant: "nobody"}, nil},
	} {
		if got := list(tc.q); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	page, err := l.ListSessions(ctx, store.ListQuery{Merchant: "acme", Limit: 1})
	if err != nil || len(page.Sessions) != 1 || page.Scanned != 1 {
		t.Fatalf("first page: %+v, %v", page, err)
	}
	mustEqual(t, "listed session", page.Sessions[0], mustGet(t, st, "s5"))

	counts, err := l.CountSessions(ctx, "acme", time.Time{}, time.Time{})
	if want := map[payment.State]int64{payment.StatePending: 5, payment.StateAuthorized: 1}; err != nil || !reflect.DeepEqual(counts, want) {
		t.Errorf("CountSessions(acme) = %v, %v; want %v", counts, err, want)
	}
	counts, err = l.CountSessions(ctx, "acme", t0.Add(time.Minute), t0.Add(3*time.Minute))
	if want := map[payment.State]int64{payment.StatePending: 1, payment.StateAuthorized: 1}; err != nil || !reflect.DeepEqual(counts, want) {
		t.Errorf("CountSessions(acme, range) = %v, %v; want %v", counts, err, want)
	}
	for _, c := range []string{"x", "12", ":s1", "a:b"} {
		if _, err := l.ListSessions(ctx, store.ListQuery{Merchant: "acme", Cursor: c}); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("cursor %q: got %v, want ErrBadCursor", c, err)
		}
	}
	if _, err := l.ListSessions(ctx, store.ListQuery{}); err == nil {
		t.Error("a query without a merchant was accepted")
	}
}
