package settlement_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kassehq/kasse/host/internal/testredis"
	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/settlement"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/schemas"
)

var redisURL string

func TestMain(m *testing.M) { os.Exit(testredis.Main(m, &redisURL)) }

var prefixes atomic.Int64

// stores runs a test on the in-process store and on a real Redis.
func stores(t *testing.T, run func(t *testing.T, st store.Store)) {
	t.Run("memory", func(t *testing.T) {
		st := store.NewMemory()
		t.Cleanup(func() { _ = st.Close() })
		run(t, st)
	})
	t.Run("redis", func(t *testing.T) {
		run(t, openRedis(t, newPrefix(), true))
	})
}

// newPrefix returns a key prefix no other test uses.
func newPrefix() string { return fmt.Sprintf("kasse:settle%d:", prefixes.Add(1)) }

// openRedis opens a Redis store on prefix, closed when t ends; indexed keeps the index of sessions awaiting
// the ledger, as kasse with settlement on does (an older version, or settlement off, does not).
func openRedis(t *testing.T, prefix string, indexed bool) *store.Redis {
	t.Helper()
	st, err := store.NewRedis(t.Context(), redisURL, store.RedisOptions{KeyPrefix: prefix, AwaitingSettlement: indexed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// ledgerShows records that the ledger shows all amount of session id captured, as the follower does, with
// st (an older version's store leaves the index as it is).
func ledgerShows(t *testing.T, st store.Store, id string, amount int64) {
	t.Helper()
	if _, err := st.Update(t.Context(), id, func(s *payment.Session) (bool, error) {
		s.Settlement = &payment.Settlement{Captured: amount, Net: amount}
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// ledger is an in-process Report API feed: the entries of each topic in order, served in pages of two
// with the index of the next entry as cursor and tryLater at the end, as the Report API's feed does.
type ledger struct {
	mu      sync.Mutex
	entries map[string][]abi.LedgerEntry
	pages   atomic.Int64
}

func (l *ledger) add(topic string, es ...abi.LedgerEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.entries == nil {
		l.entries = map[string][]abi.LedgerEntry{}
	}
	l.entries[topic] = append(l.entries[topic], es...)
}

func (l *ledger) FindLedger(context.Context, string) (string, error) { return "57860", nil }

func (l *ledger) FeedPage(_ context.Context, _ string, q abi.ReportQuery) (*abi.ReportPage, error) {
	l.pages.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	from := 0
	if q.Cursor != "" {
		n, err := strconv.Atoi(q.Cursor)
		if err != nil {
			return nil, fmt.Errorf("bad cursor %q", q.Cursor)
		}
		from = n
	}
	all := l.entries[q.Topic]
	to := min(from+2, len(all))
	return &abi.ReportPage{LedgerID: q.LedgerID, Topic: q.Topic, Entries: append([]abi.LedgerEntry(nil), all[from:to]...),
		Cursor: strconv.Itoa(to), TryLater: to == len(all)}, nil
}

// guideDay is the Report API guide's worked example: three captures (two of them parts of purchase-12),
// a refund, fees retained and the payout.
func guideDay(l *ledger) {
	f := func(typ string, amount int64, ref, psp, tm string, before int64) abi.LedgerEntry {
		return abi.LedgerEntry{EntryType: typ, Amount: amount, Currency: "NOK", Reference: ref, PSPReference: psp,
			Time: tm, LedgerDate: "2022-10-01", RecipientHandle: "NO:57860", BalanceBefore: before, BalanceAfter: before + amount}
	}
	l.add(abi.TopicFunds,
		f("capture", 10000, "purchase-12", "3343121302", "2022-10-01T14:33:00.824993Z", 0),
		f("capture", 10000, "purchase-12", "3334234112", "2022-10-01T16:37:55.982497Z", 10000),
		f("capture", 20000, "purchase-14", "3259823497", "2022-10-01T17:12:54.932428Z", 20000),
		f("refund", -10000, "purchase-12", "1154320987", "2022-10-01T21:47:59.984224Z", 40000),
		f("fees-retained", -1200, "", "01H7W7Q6Y5R-3G58CTAZX0MHKV2", "2022-10-01T22:00:00Z", 30000),
		f("scheduled-for-payout", -28800, "Vipps utbet. 2000023 Vippsnr 57860", "12345-2000023", "2022-10-01T22:00:00Z", 28800),
	)
	l.add(abi.TopicFees,
		f("capture-fee", -400, "purchase-12", "3343121302", "2022-10-01T14:33:00.824993Z", 0),
		f("capture-fee", -400, "purchase-12", "3334234112", "2022-10-01T16:37:55.982497Z", -400),
		f("capture-fee", -400, "purchase-14", "3259823497", "2022-10-01T17:12:54.932428Z", -800),
		f("fees-retained", 1200, "", "12345-2000321", "2022-10-01T22:00:00Z", -1200),
	)
}

// captured stores a captured session of merchant m1 with provider reference ref.
func captured(t *testing.T, st store.Store, id, ref string, captured, refunded int64) {
	t.Helper()
	at := time.Date(2022, 10, 1, 12, 0, 0, 0, time.UTC)
	s := &payment.Session{ID: id, Merchant: "m1", Reference: "order-" + id, State: payment.StateCaptured,
		Amount: captured, Currency: "NOK", Plugin: "vipps-ecom", ProviderReference: ref,
		AuthorizedAmount: captured, CapturedAmount: captured, RefundedAmount: refunded,
		CreatedAt: at, UpdatedAt: at, ExpiresAt: at.Add(time.Hour),
		History: []payment.Event{{At: at, From: payment.StateAuthorized, To: payment.StateCaptured, Cause: "capture"}}}
	if err := st.Create(t.Context(), s, 0); err != nil {
		t.Fatal(err)
	}
}

type mismatches struct {
	mu    sync.Mutex
	kinds map[string]int
}

func (m *mismatches) add(_, kind string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.kinds == nil {
		m.kinds = map[string]int{}
	}
	m.kinds[kind]++
}

func (m *mismatches) get(kind string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.kinds[kind]
}

func newFollower(t *testing.T, st store.Store, src settlement.Source, holder string, mm *mismatches, now func() time.Time) *settlement.Follower {
	t.Helper()
	if now == nil {
		now = func() time.Time { return time.Date(2022, 10, 2, 6, 0, 0, 0, time.UTC) }
	}
	cfg := settlement.Config{Store: st, Source: src, Merchants: []settlement.Merchant{{ID: "m1"}}, Holder: holder,
		Now: now, PayoutDelay: 48 * time.Hour}
	if mm != nil {
		cfg.OnMismatch = mm.add
	}
	f, err := settlement.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// checkGuideDay checks the sessions and the report after the guide's day was followed.
func checkGuideDay(t *testing.T, st store.Store, f *settlement.Follower) {
	t.Helper()
	ctx := t.Context()
	for _, c := range []struct {
		id                         string
		want                       payment.Settlement
		wantPayout, wantPayoutDate string
	}{
		{"s12", payment.Settlement{LedgerDate: "2022-10-01", Captured: 20000, Refunded: 10000, Fees: 800, Net: 9200}, "Vipps utbet. 2000023 Vippsnr 57860", "2022-10-03"},
		{"s14", payment.Settlement{LedgerDate: "2022-10-01", Captured: 20000, Fees: 400, Net: 19600}, "Vipps utbet. 2000023 Vippsnr 57860", "2022-10-03"},
	} {
		s, err := st.Get(ctx, c.id)
		if err != nil {
			t.Fatal(err)
		}
		got := s.Settlement
		if got == nil {
			t.Fatalf("%s: no settlement", c.id)
		}
		if got.LedgerDate != c.want.LedgerDate || got.Captured != c.want.Captured || got.Refunded != c.want.Refunded ||
			got.Fees != c.want.Fees || got.Net != c.want.Net || got.PayoutReference != c.wantPayout ||
			got.PayoutDate != c.wantPayoutDate || got.Mismatch != "" {
			t.Errorf("%s: settlement %+v, want %+v payout %q on %s", c.id, *got, c.want, c.wantPayout, c.wantPayoutDate)
		}
	}
	r, err := f.Report(ctx, "m1", "2022-10-01")
	if err != nil {
		t.Fatal(err)
	}
	if r.GrossCaptures != 40000 || r.Refunds != 10000 || r.Fees != 1200 || r.FeesRetained != 1200 ||
		r.NetPayout != 28800 || r.ClosingBalance != 0 || !r.Balanced || len(r.Mismatches) != 0 ||
		r.PayoutReference != "Vipps utbet. 2000023 Vippsnr 57860" || len(r.Entries) != 10 {
		t.Errorf("report: %+v", r)
	}
	for _, l := range r.Entries {
		if (l.EntryType == "capture" || l.EntryType == "refund" || l.EntryType == "capture-fee") && l.CheckoutID == "" {
			t.Errorf("entry %s %s not matched to a checkout", l.EntryType, l.PSPReference)
		}
	}
	set, err := schemas.Compile()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Validate(schemas.SettlementReport, doc); err != nil {
		t.Errorf("report fails its schema: %v", err)
	}
	var buf bytes.Buffer
	if err := r.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("CSV does not parse: %v", err)
	}
	if len(rows) != 1+10+7 || rows[0][0] != "ledgerDate" {
		t.Errorf("CSV has %d rows (want header, 10 entries, 7 totals): %q", len(rows), rows[0])
	}
}

func TestGuideDaySettles(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		captured(t, st, "s12", "purchase-12", 20000, 10000)
		captured(t, st, "s14", "purchase-14", 20000, 0)
		src := &ledger{}
		guideDay(src)
		mm := &mismatches{}
		f := newFollower(t, st, src, "a", mm, nil)
		if err := f.Sync(t.Context(), "m1"); err != nil {
			t.Fatal(err)
		}
		checkGuideDay(t, st, f)
		// A second round reads nothing new and counts nothing twice.
		if err := f.Sync(t.Context(), "m1"); err != nil {
			t.Fatal(err)
		}
		checkGuideDay(t, st, f)
		if len(mm.kinds) != 0 {
			t.Errorf("mismatches: %v", mm.kinds)
		}
		if _, err := f.Report(t.Context(), "m1", "2022-10-02"); !errors.Is(err, settlement.ErrNoReport) {
			t.Errorf("report of a day without entries: %v, want ErrNoReport", err)
		}
	})
}

// TestTwoInstancesOneFeed: two followers (two kasse instances) on one store follow the feed at the same
// time; the lease lets one read it, and nothing is counted twice.
func TestTwoInstancesOneFeed(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		captured(t, st, "s12", "purchase-12", 20000, 10000)
		captured(t, st, "s14", "purchase-14", 20000, 0)
		src := &ledger{}
		guideDay(src)
		a := newFollower(t, st, src, "a", nil, nil)
		b := newFollower(t, st, src, "b", nil, nil)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 4 {
			for _, f := range []*settlement.Follower{a, b} {
				wg.Go(func() { errs <- f.Sync(t.Context(), "m1") })
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		// Whichever instance holds the lease finishes the feed.
		for _, f := range []*settlement.Follower{a, b} {
			if err := f.Sync(t.Context(), "m1"); err != nil {
				t.Fatal(err)
			}
		}
		checkGuideDay(t, st, a)
		checkGuideDay(t, st, b)
	})
}

// crashingStore records `pass` pages and then fails RecordLedger once, after the page was already applied
// to the sessions: a kasse that dies in the middle of a feed page.
type crashingStore struct {
	store.Store
	store.Settlements
	pass atomic.Int32
}

func (c *crashingStore) RecordLedger(ctx context.Context, ledger, feed, old, next string, recs []store.LedgerRecord) (bool, error) {
	if c.pass.Add(-1) == -1 {
		return false, errors.New("crash")
	}
	return c.Settlements.RecordLedger(ctx, ledger, feed, old, next, recs)
}

func TestRestartInTheMiddleOfAPage(t *testing.T) {
	// The funds feed has three pages and the fees feed two: crash in each of them.
	for crashAt := range 5 {
		t.Run("page"+strconv.Itoa(crashAt+1), func(t *testing.T) {
			stores(t, func(t *testing.T, st store.Store) {
				captured(t, st, "s12", "purchase-12", 20000, 10000)
				captured(t, st, "s14", "purchase-14", 20000, 0)
				src := &ledger{}
				guideDay(src)
				cs := &crashingStore{Store: st, Settlements: st.(store.Settlements)}
				cs.pass.Store(int32(crashAt))
				if err := newFollower(t, cs, src, "dies", nil, nil).Sync(t.Context(), "m1"); err == nil {
					t.Fatal("the crashing follower did not fail")
				}
				// The dead instance's lease runs out; here it is released so the test need not wait.
				if err := st.(store.Settlements).ReleaseLease(t.Context(), "settlement:m1", "dies"); err != nil {
					t.Fatal(err)
				}
				f := newFollower(t, st, src, "resumes", nil, nil)
				if err := f.Sync(t.Context(), "m1"); err != nil {
					t.Fatal(err)
				}
				checkGuideDay(t, st, f)
			})
		})
	}
}

func TestMismatches(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		captured(t, st, "s12", "purchase-12", 20000, 10000)
		// kasse captured 15000 of purchase-14; the ledger says 20000.
		captured(t, st, "s14", "purchase-14", 15000, 0)
		// kasse captured purchase-16; the ledger never shows it.
		captured(t, st, "s16", "purchase-16", 5000, 0)
		src := &ledger{}
		guideDay(src)
		// A capture on the ledger that kasse knows nothing of (a later day, so the guide's day stays balanced).
		src.add(abi.TopicFunds, abi.LedgerEntry{EntryType: "capture", Amount: 700, Currency: "NOK",
			Reference: "purchase-99", PSPReference: "99", Time: "2022-10-02T08:00:00Z", LedgerDate: "2022-10-02",
			BalanceBefore: 0, BalanceAfter: 700})
		now := time.Date(2022, 10, 1, 12, 0, 0, 0, time.UTC)
		var clock atomic.Int64
		clock.Store(now.UnixNano())
		mm := &mismatches{}
		f := newFollower(t, st, src, "a", mm, func() time.Time { return time.Unix(0, clock.Load()).UTC() })
		if err := f.Sync(ctx, "m1"); err != nil {
			t.Fatal(err)
		}
		if mm.get(settlement.MismatchUnknownReference) != 1 || mm.get(settlement.MismatchMissing) != 0 ||
			mm.get(settlement.MismatchAmount) != 1 {
			t.Errorf("mismatches after the first round: %v", mm.kinds)
		}
		s14, _ := st.Get(ctx, "s14")
		if s14.Settlement == nil || s14.Settlement.Mismatch == "" {
			t.Errorf("s14 settlement does not say the amounts differ: %+v", s14.Settlement)
		}
		r, err := f.Report(ctx, "m1", "2022-10-02")
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Mismatches) != 1 || r.Mismatches[0].Kind != settlement.MismatchUnknownReference || r.Mismatches[0].Reference != "purchase-99" {
			t.Errorf("2022-10-02 mismatches: %+v", r.Mismatches)
		}
		// Past the payout delay s16 is missing from the ledger.
		clock.Store(now.Add(49 * time.Hour).UnixNano())
		if err := f.Sync(ctx, "m1"); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(ctx, "m1"); err != nil { // a later round does not count it again
			t.Fatal(err)
		}
		if mm.get(settlement.MismatchMissing) != 1 {
			t.Errorf("missing-from-ledger reported %d times, want 1", mm.get(settlement.MismatchMissing))
		}
		r, err = f.Report(ctx, "m1", "2022-10-01")
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]string{}
		for _, m := range r.Mismatches {
			kinds[m.Kind] = m.CheckoutID
		}
		if kinds[settlement.MismatchAmount] != "s14" || kinds[settlement.MismatchMissing] != "s16" || !r.Balanced {
			t.Errorf("2022-10-01 mismatches %+v, balanced %v", r.Mismatches, r.Balanced)
		}
	})
}

func TestUnbalancedDaySaysSo(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		captured(t, st, "s12", "purchase-12", 20000, 10000)
		captured(t, st, "s14", "purchase-14", 20000, 0)
		src := &ledger{}
		guideDay(src)
		src.mu.Lock()
		src.entries[abi.TopicFunds][5].Amount = -28000 // the payout is 8.00 short
		src.mu.Unlock()
		f := newFollower(t, st, src, "a", nil, nil)
		if err := f.Sync(t.Context(), "m1"); err != nil {
			t.Fatal(err)
		}
		r, err := f.Report(t.Context(), "m1", "2022-10-01")
		if err != nil {
			t.Fatal(err)
		}
		if r.Balanced || len(r.Problems) == 0 || r.Mismatches[len(r.Mismatches)-1].Kind != settlement.MismatchUnbalanced {
			t.Errorf("an unbalanced day: balanced %v, problems %q, mismatches %+v", r.Balanced, r.Problems, r.Mismatches)
		}
	})
}

// TestPayoutTellsTheShop: a session of a merchant with a platform gets one settled notice, written with
// the payout and handed to Relay; reading the feed again writes no second one.
func TestPayoutTellsTheShop(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		captured(t, st, "s12", "purchase-12", 20000, 10000)
		captured(t, st, "s14", "purchase-14", 20000, 0)
		src := &ledger{}
		guideDay(src)
		var mu sync.Mutex
		relayed := map[string][]payment.Notice{}
		f, err := settlement.New(settlement.Config{Store: st, Source: src, Merchants: []settlement.Merchant{{ID: "m1"}},
			Notify: func(string) bool { return true },
			Relay: func(_ context.Context, s *payment.Session) *payment.Session {
				mu.Lock()
				defer mu.Unlock()
				relayed[s.ID] = append(relayed[s.ID], s.Outbox...)
				return s
			}})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := f.Sync(t.Context(), "m1"); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []string{"s12", "s14"} {
			ns := relayed[id]
			if len(ns) != 1 || ns[0].Status != payment.NoticeSettled || ns[0].Settlement == nil ||
				ns[0].Settlement.PayoutReference != "Vipps utbet. 2000023 Vippsnr 57860" || len(ns[0].Settlement.Entries) != 0 {
				t.Errorf("%s: relayed %+v", id, ns)
			}
			s, err := st.Get(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Outbox) != 1 || s.NextCheckAt.IsZero() {
				t.Errorf("%s: outbox %d, nextCheckAt %v: a notice the relay kept must bring the reconciler back", id, len(s.Outbox), s.NextCheckAt)
			}
		}
	})
}

// TestSharedLedger: two merchants (sales units) settle on one ledger; each follower records its own
// sessions, and neither calls the other's captures unknown.
func TestSharedLedger(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		captured(t, st, "s12", "purchase-12", 20000, 10000)
		captured(t, st, "s14", "purchase-14", 20000, 0)
		if _, err := st.Update(t.Context(), "s14", func(s *payment.Session) (bool, error) {
			s.Merchant = "m2"
			return true, nil
		}); err != nil {
			t.Fatal(err)
		}
		src := &ledger{}
		guideDay(src)
		mm := &mismatches{}
		f, err := settlement.New(settlement.Config{Store: st, Source: src, OnMismatch: mm.add,
			Merchants: []settlement.Merchant{{ID: "m1"}, {ID: "m2"}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"m1", "m2"} {
			if err := f.Sync(t.Context(), m); err != nil {
				t.Fatal(err)
			}
		}
		for id, want := range map[string]int64{"s12": 9200, "s14": 19600} {
			s, err := st.Get(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if s.Settlement == nil || s.Settlement.Net != want || s.Settlement.PayoutReference == "" {
				t.Errorf("%s (merchant %s): settlement %+v, want net %d and the payout", id, s.Merchant, s.Settlement, want)
			}
		}
		r, err := f.Report(t.Context(), "m1", "2022-10-01")
		if err != nil {
			t.Fatal(err)
		}
		if len(mm.kinds) != 0 || len(r.Mismatches) != 0 || !r.Balanced {
			t.Errorf("mismatches %v, report %+v", mm.kinds, r.Mismatches)
		}
	})
}

// TestFromSkipsHistory: entries of ledger dates before From (before kasse took over) are kept for the
// report but matched to nothing and reported as nothing.
func TestFromSkipsHistory(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		src := &ledger{}
		guideDay(src) // no sessions: every capture would be unknown
		mm := &mismatches{}
		f, err := settlement.New(settlement.Config{Store: st, Source: src, OnMismatch: mm.add, From: "2022-10-02",
			Merchants: []settlement.Merchant{{ID: "m1"}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(t.Context(), "m1"); err != nil {
			t.Fatal(err)
		}
		r, err := f.Report(t.Context(), "m1", "2022-10-01")
		if err != nil {
			t.Fatal(err)
		}
		if len(mm.kinds) != 0 || len(r.Mismatches) != 0 || r.NetPayout != 28800 || !r.Balanced {
			t.Errorf("mismatches %v, report %+v", mm.kinds, r)
		}
	})
}

// TestCaptureExpectedWithoutAHook: the capture's own write is all it takes for a capture to be expected
// on the ledger. The process that wrote it "dies" right after (nothing else runs: no hook, no second
// write); a follower in a new process, with a new store client, reports it missing from the ledger once
// the payout delay has passed, and not if the ledger shows it. Memory and Redis.
func TestCaptureExpectedWithoutAHook(t *testing.T) {
	at := time.Date(2022, 10, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name        string
		onLedger    bool
		wantMissing int
	}{
		{"not on the ledger", false, 1},
		{"on the ledger", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			restartable(t, func(t *testing.T, st store.Store, restart func() store.Store) {
				ctx := t.Context()
				s := &payment.Session{ID: "s16", Merchant: "m1", Reference: "order-s16", State: payment.StateAuthorized,
					Amount: 5000, Currency: "NOK", Plugin: "vipps-ecom", ProviderReference: "purchase-16",
					AuthorizedAmount: 5000, CreatedAt: at.Add(-time.Hour), UpdatedAt: at.Add(-time.Hour)}
				if err := st.Create(ctx, s, 0); err != nil {
					t.Fatal(err)
				}
				// The capture's write, as the checkout service makes it; then the process is gone.
				if _, err := st.Update(ctx, "s16", func(s *payment.Session) (bool, error) {
					return s.Apply(payment.Observation{State: payment.StateCaptured, AuthorizedAmount: 5000,
						CapturedAmount: 5000, RefundedAmount: -1, CancelledAmount: -1}, "capture", at), nil
				}); err != nil {
					t.Fatal(err)
				}
				st = restart()

				src := &ledger{}
				guideDay(src) // a day for the report; its references are no checkouts of this test
				if tc.onLedger {
					src.add(abi.TopicFunds, abi.LedgerEntry{EntryType: "capture", Amount: 5000, Currency: "NOK",
						Reference: "purchase-16", PSPReference: "16", Time: "2022-10-02T08:00:00Z", LedgerDate: "2022-10-02",
						BalanceBefore: 0, BalanceAfter: 5000})
				}
				var clock atomic.Int64
				clock.Store(at.Add(time.Hour).UnixNano())
				mm := &mismatches{}
				f := newFollower(t, st, src, "new-process", mm, func() time.Time { return time.Unix(0, clock.Load()).UTC() })
				if err := f.Sync(ctx, "m1"); err != nil {
					t.Fatal(err)
				}
				if n := mm.get(settlement.MismatchMissing); n != 0 {
					t.Fatalf("missing-from-ledger reported %d times before the payout delay", n)
				}
				clock.Store(at.Add(48*time.Hour + time.Minute).UnixNano())
				for range 2 { // a later round does not count it again
					if err := f.Sync(ctx, "m1"); err != nil {
						t.Fatal(err)
					}
				}
				if n := mm.get(settlement.MismatchMissing); n != tc.wantMissing {
					t.Errorf("missing-from-ledger reported %d times, want %d", n, tc.wantMissing)
				}
				r, err := f.Report(ctx, "m1", "2022-10-01")
				if err != nil {
					t.Fatal(err)
				}
				var missing []string
				for _, m := range r.Mismatches {
					if m.Kind == settlement.MismatchMissing {
						missing = append(missing, m.CheckoutID)
					}
				}
				if len(missing) != tc.wantMissing || (tc.wantMissing == 1 && missing[0] != "s16") {
					t.Errorf("report's missing-from-ledger checkouts %q, want %d (s16)", missing, tc.wantMissing)
				}
			})
		})
	}
}

// restartable runs a test on the in-process store and on a real Redis; restart stands for a new
// process: on Redis a new store client on the same keys (the old one closed), in memory the same store
// (it lives only as long as its process, so only a lost hook, not a lost process, can be shown there).
func restartable(t *testing.T, run func(t *testing.T, st store.Store, restart func() store.Store)) {
	t.Run("memory", func(t *testing.T) {
		st := store.NewMemory()
		t.Cleanup(func() { _ = st.Close() })
		run(t, st, func() store.Store { return st })
	})
	t.Run("redis", func(t *testing.T) {
		prefix := newPrefix()
		open := func() store.Store { return openRedis(t, prefix, true) }
		first := open()
		run(t, first, func() store.Store { _ = first.Close(); return open() })
	})
}

// TestFollowerNeedsTheIndex: a store whose session writes do not keep the index of sessions awaiting the
// ledger would leave every missing capture unreported, so the follower refuses it.
func TestFollowerNeedsTheIndex(t *testing.T) {
	st := openRedis(t, newPrefix(), false)
	if _, err := settlement.New(settlement.Config{Store: st, Source: &ledger{}}); err == nil {
		t.Fatal("settlement.New accepted a store that does not index the sessions awaiting the ledger")
	}
}

// TestLegacyExpectationsAdopted: captures an older kasse version expected in its own per-ledger set (and
// that its writes did not index) are reported like any other after an upgrade; a settled one is not.
func TestLegacyExpectationsAdopted(t *testing.T) {
	ctx := t.Context()
	prefix := newPrefix()
	// The older version's writes: captured sessions, not indexed.
	old := openRedis(t, prefix, false)
	captured(t, old, "s16", "purchase-16", 5000, 0)
	captured(t, old, "s17", "purchase-17", 7000, 0)
	ledgerShows(t, old, "s17", 7000)
	at := time.Date(2022, 10, 1, 12, 0, 0, 0, time.UTC) // captured's time
	legacy := prefix + "{g}:expect:m1/57860"
	for _, id := range []string{"s16", "s17"} {
		if err := old.Client().ZAdd(ctx, legacy, redis.Z{Score: float64(at.Add(48 * time.Hour).UnixMicro()), Member: id}).Err(); err != nil {
			t.Fatal(err)
		}
	}

	st := openRedis(t, prefix, true)
	src := &ledger{}
	guideDay(src)
	mm := &mismatches{}
	f := newFollower(t, st, src, "a", mm, func() time.Time { return at.Add(49 * time.Hour) })
	if err := f.Sync(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	if n := mm.get(settlement.MismatchMissing); n != 1 {
		t.Errorf("missing-from-ledger reported %d times, want 1 (s16)", n)
	}
	if ids, err := st.AwaitingSettlement(ctx, "m1", at); err != nil || !slices.Equal(ids, []string{"s16"}) {
		t.Errorf("awaiting the ledger after adoption: %q, %v; want [s16]", ids, err)
	}
	if n, err := st.Client().Exists(ctx, legacy).Result(); err != nil || n != 0 {
		t.Errorf("the legacy set is still there (%d, %v)", n, err)
	}
}

// TestStaleEntryDropped: an entry whose session no longer awaits the ledger, left by a write that did not
// keep the index (an older version's, during an upgrade), is not reported and is dropped by the follower;
// a session that still awaits it stays.
func TestStaleEntryDropped(t *testing.T) {
	ctx := t.Context()
	prefix := newPrefix()
	st := openRedis(t, prefix, true)
	old := openRedis(t, prefix, false)
	captured(t, st, "s16", "purchase-16", 5000, 0)
	captured(t, st, "s17", "purchase-17", 7000, 0)
	// The older version records the ledger's capture of s17 without touching the index.
	ledgerShows(t, old, "s17", 7000)
	at := time.Date(2022, 10, 1, 12, 0, 0, 0, time.UTC) // captured's time
	if ids, err := st.AwaitingSettlement(ctx, "m1", at); err != nil || !slices.Equal(ids, []string{"s16", "s17"}) {
		t.Fatalf("awaiting the ledger before the round: %q, %v; want [s16 s17]", ids, err)
	}
	src := &ledger{}
	guideDay(src)
	mm := &mismatches{}
	f := newFollower(t, st, src, "a", mm, func() time.Time { return at.Add(49 * time.Hour) })
	if err := f.Sync(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	if n := mm.get(settlement.MismatchMissing); n != 1 {
		t.Errorf("missing-from-ledger reported %d times, want 1 (s16)", n)
	}
	if ids, err := st.AwaitingSettlement(ctx, "m1", at); err != nil || !slices.Equal(ids, []string{"s16"}) {
		t.Errorf("awaiting the ledger after the round: %q, %v; want [s16]", ids, err)
	}
}
