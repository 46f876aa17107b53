// Package settlement owns step 6 of the flow, "money in the bank": it follows each merchant's settlement
// ledger at the provider (the Vipps Report API funds and fees feeds), keeps the entries in the store by
// ledger date, records on every session what the ledger settled for it (payment.Settlement), and builds
// the per-day settlement report with its mismatches.
//
// It reads the ledger through a Source (the checkout service, which runs the plugin's report operations
// and sends their requests); it never calls the provider itself and never changes a session's payment
// state or amounts. Its shared state (the follower lease, the feed cursors, the entries) lives in the
// store (store.Settlements), so several kasse instances share one follower per merchant and a restart
// resumes where the last page was recorded.
//
// Which captures it expects on the ledger it does not write itself: the store indexes every session
// that awaits the ledger (payment.Session.AwaitsSettlement) in the same atomic write as the capture that
// makes it so, and takes it out with the write that records the ledger's captures. A capture therefore
// cannot be recorded without being expected, whatever happens to the process after the write; the
// follower reads the index (store.Settlements.AwaitingSettlement) and reports what is still awaited
// PayoutDelay after its capture.
package settlement

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/plugin/abi"
)

// Source reads a merchant's ledger at the payment provider; the checkout service implements it with the
// merchant's plugin (its report operations) and the provider client.
type Source interface {
	// FindLedger returns the id of the ledger that settles the merchant's sales unit.
	FindLedger(ctx context.Context, merchant string) (string, error)
	// FeedPage returns the page of the ledger account topic's feed that follows cursor ("" = the start).
	FeedPage(ctx context.Context, merchant string, q abi.ReportQuery) (*abi.ReportPage, error)
}

// Merchant is a merchant whose ledger the follower follows.
type Merchant struct {
	ID string
	// LedgerID, if set, is the merchant's ledger; empty asks the Source to find it.
	LedgerID string
}

// Mismatch kinds, as the report, the log and the metrics name them.
const (
	// MismatchUnknownReference: a capture or refund on the ledger with no kasse session.
	MismatchUnknownReference = "unknown-reference"
	// MismatchAmount: the ledger's captured or refunded amount for a session differs from kasse's.
	MismatchAmount = "amount-differs"
	// MismatchMissing: a session kasse captured is not on the ledger after its expected date.
	MismatchMissing = "missing-from-ledger"
	// MismatchUnbalanced: a day's entries do not add up to its balances and payout.
	MismatchUnbalanced = "unbalanced"
)

// Config holds the follower's settings and collaborators.
type Config struct {
	// Store must implement store.Settlements (Memory and Redis do).
	Store  store.Store
	Source Source
	// Merchants are the merchants to follow.
	Merchants []Merchant
	// CurrentMerchants, if set, is asked for the merchants to follow instead of Merchants, each round and
	// each lookup, so that a config reload that adds, removes or changes a merchant takes effect.
	CurrentMerchants func() []Merchant
	// PollInterval is how often each ledger's feeds are read. Default 1 minute.
	PollInterval time.Duration
	// PayoutDelay is how long after a capture the money is expected on the ledger and paid out (the
	// merchant's agreement, e.g. T+2). A captured session not on the ledger by then is a mismatch.
	// Default 48h.
	PayoutDelay time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger gets one line per mismatch and per failed round. Default slog.Default().
	Logger *slog.Logger
	// OnMismatch, if set, is called once per mismatch found while reading the feed (for /metrics).
	OnMismatch func(merchant, kind string)
	// OnSettled, if set, is called after a session's settlement changed.
	OnSettled func(ctx context.Context, sess *payment.Session)
	// Notify, if set, says whether the merchant's shop platform hears about its sessions. The payout of a
	// session's money is then written to its outbox as a payment.NoticeSettled notice, in the same store
	// write that records the payout, and handed to Relay.
	Notify func(merchant string) bool
	// Relay hands a session's outbox to the platform delivery queue (checkout.Service.RelayNotices). A
	// notice it could not hand over stays in the outbox, and the session's NextCheckAt (set with it)
	// brings the reconciler back to relay it.
	Relay func(ctx context.Context, sess *payment.Session) *payment.Session
	// RelayRetry is how soon the reconciler relays a notice not relayed at once. Default 10s.
	RelayRetry time.Duration
	// From, if set (YYYY-MM-DD), is the first ledger date kasse settles: entries of earlier dates are kept
	// for the reports but not matched to sessions nor reported as mismatches. The feed starts at the
	// ledger's beginning, so a merchant who used Vipps before kasse sets it to the day kasse took over.
	From string
	// Holder names this instance in the lease; default a random id.
	Holder string
}

// Follower follows the ledgers of the configured merchants. It is safe for concurrent use.
type Follower struct {
	cfg   Config
	st    store.Settlements
	now   func() time.Time
	log   *slog.Logger
	mu    sync.Mutex
	found map[string]string // merchant -> ledger id found by the Source
	// applied are the payouts (merchant/entry id) this process has recorded on all their sessions, and
	// the sessions ("missing/<id>") it has reported missing from the ledger.
	applied map[string]bool
}

// New returns a Follower, or an error naming what is missing.
func New(cfg Config) (*Follower, error) {
	if cfg.Store == nil || cfg.Source == nil {
		return nil, errors.New("settlement: config: Store and Source are required")
	}
	st, ok := cfg.Store.(store.Settlements)
	if !ok {
		return nil, fmt.Errorf("settlement: config: store %T does not keep settlements", cfg.Store)
	}
	if !st.IndexesAwaitingSettlement() {
		// Without the index no capture would ever be reported missing from the ledger, silently.
		return nil, fmt.Errorf("settlement: config: store %T does not index the sessions awaiting the ledger "+
			"(store.RedisOptions.AwaitingSettlement)", cfg.Store)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Minute
	}
	if cfg.PayoutDelay <= 0 {
		cfg.PayoutDelay = 48 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RelayRetry <= 0 {
		cfg.RelayRetry = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Holder == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		cfg.Holder = hex.EncodeToString(b)
	}
	f := &Follower{cfg: cfg, st: st, now: cfg.Now, log: cfg.Logger,
		found: map[string]string{}, applied: map[string]bool{}}
	return f, nil
}

// merchants returns the merchants to follow now.
func (f *Follower) merchants() []Merchant {
	if f.cfg.CurrentMerchants != nil {
		return f.cfg.CurrentMerchants()
	}
	return f.cfg.Merchants
}

// merchant returns the followed merchant id.
func (f *Follower) merchant(id string) (Merchant, bool) {
	for _, m := range f.merchants() {
		if m.ID == id {
			return m, true
		}
	}
	return Merchant{}, false
}

// Run follows every merchant's ledger each PollInterval until ctx ends. A failed round is logged and
// tried again at the next tick.
func (f *Follower) Run(ctx context.Context) {
	t := time.NewTicker(f.cfg.PollInterval)
	defer t.Stop()
	for {
		for _, m := range f.merchants() {
			if err := f.Sync(ctx, m.ID); err != nil && ctx.Err() == nil {
				f.log.Warn("settlement: follow ledger", "merchant", m.ID, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// lease is how long one round may hold a merchant's follower lease without renewing it.
func (f *Follower) lease() time.Duration { return max(3*f.cfg.PollInterval, 30*time.Second) }

// Sync reads what is new on the merchant's funds and fees feeds, if this instance holds (or gets) the
// merchant's follower lease, and checks for captured sessions overdue on the ledger. Without the lease
// it does nothing: another instance follows the merchant.
func (f *Follower) Sync(ctx context.Context, merchant string) error {
	lease := "settlement:" + merchant
	ok, err := f.st.AcquireLease(ctx, lease, f.cfg.Holder, f.lease())
	if err != nil || !ok {
		return err
	}
	ledger, err := f.Ledger(ctx, merchant)
	if err != nil {
		return err
	}
	// Funds first: a fee is matched to its session through the capture's pspReference.
	for _, topic := range []string{abi.TopicFunds, abi.TopicFees} {
		if err := f.follow(ctx, merchant, ledger, topic, lease); err != nil {
			return err
		}
	}
	if err := f.payouts(ctx, merchant, ledger); err != nil {
		return err
	}
	if ls, ok := f.cfg.Store.(store.LegacyExpectations); ok {
		// Captures an older kasse version expected in its own set are awaited like any other.
		if _, err := ls.AdoptLegacyExpectations(ctx, merchant, ledgerKey(merchant, ledger), f.cfg.PayoutDelay); err != nil {
			return err
		}
	}
	return f.checkOverdue(ctx, merchant)
}

// payoutDays is how many of the newest ledger dates each round checks for payouts not yet recorded on
// their sessions.
const payoutDays = 7

// payouts records each recent day's scheduled payout on the day's sessions, once the day's fees are in:
// a payout is the last entry of its day, but the fees account is a feed of its own and may trail, and the
// settled notice the shop gets must carry the fees. A day whose funds retained fees waits until the fees
// account shows them retained too. Recording is idempotent per session, so a payout recorded by a round
// that crashed half-way is finished by the next.
func (f *Follower) payouts(ctx context.Context, merchant, ledger string) error {
	dates, err := f.st.LedgerDates(ctx, ledgerKey(merchant, ledger))
	if err != nil {
		return err
	}
	if len(dates) > payoutDays {
		dates = dates[len(dates)-payoutDays:]
	}
	for _, d := range dates {
		if d < f.cfg.From {
			continue
		}
		es, err := f.entries(ctx, merchant, ledger, d)
		if err != nil {
			return err
		}
		var payout *Entry
		var retainedFunds, retainedFees bool
		for i, e := range es {
			switch {
			case e.Topic == abi.TopicFunds && e.EntryType == abi.EntryScheduledForPayout:
				payout = &es[i]
			case e.Topic == abi.TopicFunds && e.EntryType == abi.EntryFeesRetained:
				retainedFunds = true
			case e.Topic == abi.TopicFees && e.EntryType == abi.EntryFeesRetained:
				retainedFees = true
			}
		}
		if payout == nil || (retainedFunds && !retainedFees) {
			continue
		}
		f.mu.Lock()
		done := f.applied[merchant+"/"+payout.ID]
		f.mu.Unlock()
		if done {
			continue
		}
		if err := f.payout(ctx, merchant, ledger, *payout, nil); err != nil {
			return err
		}
		f.mu.Lock()
		f.applied[merchant+"/"+payout.ID] = true
		f.mu.Unlock()
	}
	return nil
}

// Ledger returns the merchant's ledger id: from the configuration, else found through the Source (once
// per process).
func (f *Follower) Ledger(ctx context.Context, merchant string) (string, error) {
	m, ok := f.merchant(merchant)
	if !ok {
		return "", fmt.Errorf("settlement: merchant %q is not followed", merchant)
	}
	if m.LedgerID != "" {
		return m.LedgerID, nil
	}
	f.mu.Lock()
	id := f.found[merchant]
	f.mu.Unlock()
	if id != "" {
		return id, nil
	}
	id, err := f.cfg.Source.FindLedger(ctx, merchant)
	if err != nil {
		return "", fmt.Errorf("settlement: find the ledger of merchant %s: %w", merchant, err)
	}
	if id == "" {
		return "", fmt.Errorf("settlement: merchant %s has no ledger", merchant)
	}
	f.mu.Lock()
	f.found[merchant] = id
	f.mu.Unlock()
	return id, nil
}

// ledgerKey names a merchant's ledger in the store.
func ledgerKey(merchant, ledger string) string { return merchant + "/" + ledger }

// follow reads topic's feed page by page until the provider says to try later. Each page is applied to
// the sessions first (idempotently, by entry id) and then recorded together with the cursor after it, so
// a crash between the two reads the page again and changes nothing twice.
func (f *Follower) follow(ctx context.Context, merchant, ledger, topic, lease string) error {
	feed := ledgerKey(merchant, ledger) + "/" + topic
	for range 10000 { // bounded: a provider that never says tryLater cannot keep a round forever
		cur, err := f.st.FeedCursor(ctx, feed)
		if err != nil {
			return err
		}
		page, err := f.cfg.Source.FeedPage(ctx, merchant, abi.ReportQuery{LedgerID: ledger, Topic: topic, Cursor: cur})
		if err != nil {
			return fmt.Errorf("settlement: read the %s feed of ledger %s: %w", topic, ledger, err)
		}
		entries := make([]Entry, 0, len(page.Entries))
		var current []Entry // on or after From
		for _, e := range page.Entries {
			ne := newEntry(topic, e)
			entries = append(entries, ne)
			if ne.LedgerDate >= f.cfg.From {
				current = append(current, ne)
			}
		}
		if err := f.apply(ctx, merchant, ledger, current); err != nil {
			return err
		}
		recs := make([]store.LedgerRecord, 0, len(entries))
		for _, e := range entries {
			data, err := json.Marshal(e)
			if err != nil {
				return fmt.Errorf("settlement: encode entry: %w", err)
			}
			recs = append(recs, store.LedgerRecord{ID: e.ID, Date: e.LedgerDate, Data: data})
		}
		next := page.Cursor
		if next == "" {
			next = cur
		}
		moved, err := f.st.RecordLedger(ctx, ledgerKey(merchant, ledger), feed, cur, next, recs)
		if err != nil {
			return err
		}
		if !moved {
			return nil // another instance recorded this page: it follows the feed now
		}
		for _, e := range current {
			if e.Topic == abi.TopicFunds && (e.EntryType == abi.EntryCapture || e.EntryType == abi.EntryRefund) {
				if _, err := f.sessionOf(ctx, merchant, e.Reference); errors.Is(err, store.ErrNotFound) &&
					!f.elsewhere(ctx, merchant, ledger, e.Reference) {
					f.mismatch(merchant, MismatchUnknownReference, "ledger "+e.EntryType+" "+
						strconv.FormatInt(e.Amount, 10)+" for reference "+e.Reference+" has no checkout", "")
				}
			}
		}
		if page.TryLater || len(page.Entries) == 0 || next == cur {
			return nil
		}
		if ok, err := f.st.AcquireLease(ctx, lease, f.cfg.Holder, f.lease()); err != nil || !ok {
			return err
		}
	}
	return nil
}

// mismatch logs and counts one mismatch.
func (f *Follower) mismatch(merchant, kind, detail, session string) {
	f.log.Warn("settlement: mismatch", "merchant", merchant, "kind", kind, "session", session, "detail", detail)
	if f.cfg.OnMismatch != nil {
		f.cfg.OnMismatch(merchant, kind)
	}
}

// elsewhere reports whether another followed merchant settled on the same ledger has a session with
// provider reference ref: several sales units may share one ledger (the guide's "Acme Central
// Clearing"), and each merchant's follower records its own sessions, so the entry is not a mismatch.
func (f *Follower) elsewhere(ctx context.Context, merchant, ledger, ref string) bool {
	for _, m := range f.merchants() {
		if m.ID == merchant {
			continue
		}
		if l, err := f.Ledger(ctx, m.ID); err != nil || l != ledger {
			continue
		}
		if _, err := f.sessionOf(ctx, m.ID, ref); err == nil {
			return true
		}
	}
	return false
}

// sessionOf returns the session of merchant whose provider reference is ref.
func (f *Follower) sessionOf(ctx context.Context, merchant, ref string) (*payment.Session, error) {
	if ref == "" {
		return nil, fmt.Errorf("settlement: empty reference: %w", store.ErrNotFound)
	}
	return f.cfg.Store.GetByProviderReference(ctx, merchant, ref)
}

// apply records the page's entries on their sessions.
func (f *Follower) apply(ctx context.Context, merchant, ledger string, entries []Entry) error {
	for i, e := range entries {
		var err error
		switch {
		case e.Topic == abi.TopicFunds && (e.EntryType == abi.EntryCapture || e.EntryType == abi.EntryRefund):
			err = f.settle(ctx, merchant, ledger, e.Reference, e)
		case e.Topic == abi.TopicFees && e.EntryType == abi.EntryCaptureFee:
			ref, ferr := f.feeReference(ctx, merchant, ledger, e, entries[:i])
			if ferr != nil {
				return ferr
			}
			if ref != "" {
				err = f.settle(ctx, merchant, ledger, ref, e)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// feeReference finds the payment a fee is for: the funds capture with the fee's pspReference (on the
// stored funds entries of the fee's date, or earlier on this page), else the fee's own reference.
func (f *Follower) feeReference(ctx context.Context, merchant, ledger string, fee Entry, page []Entry) (string, error) {
	if fee.PSPReference != "" {
		stored, err := f.entries(ctx, merchant, ledger, fee.LedgerDate)
		if err != nil {
			return "", err
		}
		for _, e := range append(stored, page...) {
			if e.Topic == abi.TopicFunds && e.EntryType == abi.EntryCapture && e.PSPReference == fee.PSPReference {
				return e.Reference, nil
			}
		}
	}
	return fee.Reference, nil
}

// entries returns the stored entries of a ledger date.
func (f *Follower) entries(ctx context.Context, merchant, ledger, date string) ([]Entry, error) {
	recs, err := f.st.LedgerEntries(ctx, ledgerKey(merchant, ledger), date)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(recs))
	for _, r := range recs {
		var e Entry
		if err := json.Unmarshal(r.Data, &e); err != nil {
			return nil, fmt.Errorf("settlement: stored entry %s: %w", r.ID, err)
		}
		out = append(out, e)
	}
	sortEntries(out)
	return out, nil
}

// settle counts entry e on the session of merchant with provider reference ref, once.
func (f *Follower) settle(ctx context.Context, merchant, ledger, ref string, e Entry) error {
	sess, err := f.sessionOf(ctx, merchant, ref)
	if errors.Is(err, store.ErrNotFound) {
		return nil // reported as a mismatch once the page is recorded, and in the report
	}
	if err != nil {
		return err
	}
	var changed, newMismatch bool
	after, err := f.cfg.Store.Update(ctx, sess.ID, func(s *payment.Session) (bool, error) {
		changed, newMismatch = false, false
		st := s.Settlement.Clone()
		if st == nil {
			st = &payment.Settlement{}
		}
		if st.Has(e.ID) {
			return false, nil
		}
		st.Entries = append(st.Entries, e.ID)
		switch e.EntryType {
		case abi.EntryCapture:
			st.Captured += e.Amount
		case abi.EntryRefund:
			st.Refunded -= e.Amount
		case abi.EntryCaptureFee:
			st.Fees -= e.Amount
		}
		if e.LedgerDate > st.LedgerDate {
			st.LedgerDate = e.LedgerDate
		}
		st.Net = st.Captured - st.Refunded - st.Fees
		before := st.Mismatch
		st.Mismatch = amountMismatch(s, st)
		newMismatch = before == "" && st.Mismatch != ""
		s.Settlement = st
		s.UpdatedAt = f.now().UTC()
		changed = true
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("settlement: record entry %s on session %s: %w", e.ID, sess.ID, err)
	}
	if newMismatch {
		f.mismatch(merchant, MismatchAmount, after.Settlement.Mismatch, after.ID)
	}
	// The write took the session off the index of sessions awaiting the ledger if its captures are all
	// there now (the store does that in the same step).
	if changed && f.cfg.OnSettled != nil {
		f.cfg.OnSettled(ctx, after)
	}
	return nil
}

// amountMismatch says how the ledger's amounts for s differ from kasse's, or "". The ledger may trail
// kasse (a capture made after the ledger day closed), so only a ledger amount above kasse's is a mismatch
// while reading; the report compares them exactly. The ledger may also lead kasse for a moment: Vipps
// books a capture when it carries it out, before kasse has recorded the answer, so while an operation on
// the session is still in doubt nothing is flagged (the reconciler settles it, and the report compares
// again).
func amountMismatch(s *payment.Session, st *payment.Settlement) string {
	if st == nil || s.InDoubt() != nil {
		return ""
	}
	switch {
	case st.Captured > s.CapturedAmount:
		return fmt.Sprintf("ledger captured %d, kasse captured %d", st.Captured, s.CapturedAmount)
	case st.Refunded > s.RefundedAmount:
		return fmt.Sprintf("ledger refunded %d, kasse refunded %d", st.Refunded, s.RefundedAmount)
	}
	return ""
}

// payout records the scheduled payout on every session with an entry on the payout's ledger date.
func (f *Follower) payout(ctx context.Context, merchant, ledger string, p Entry, page []Entry) error {
	stored, err := f.entries(ctx, merchant, ledger, p.LedgerDate)
	if err != nil {
		return err
	}
	payoutDate := p.LedgerDate
	if d, err := time.Parse(time.DateOnly, p.LedgerDate); err == nil {
		payoutDate = d.Add(f.cfg.PayoutDelay).Format(time.DateOnly)
	}
	notify := f.cfg.Notify != nil && f.cfg.Notify(merchant)
	seen := map[string]bool{}
	for _, e := range append(stored, page...) {
		if e.LedgerDate != p.LedgerDate || e.Topic != abi.TopicFunds ||
			(e.EntryType != abi.EntryCapture && e.EntryType != abi.EntryRefund) || seen[e.Reference] {
			continue
		}
		seen[e.Reference] = true
		sess, err := f.sessionOf(ctx, merchant, e.Reference)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		var changed bool
		after, err := f.cfg.Store.Update(ctx, sess.ID, func(s *payment.Session) (bool, error) {
			changed = false
			if s.Settlement == nil || s.Settlement.Has(p.ID) {
				return false, nil
			}
			st := s.Settlement.Clone()
			st.Entries = append(st.Entries, p.ID)
			st.PayoutReference = p.Reference
			st.PayoutDate = payoutDate
			s.Settlement = st
			now := f.now().UTC()
			s.UpdatedAt = now
			if notify {
				s.RecordSettledNotice(now)
				if retry := now.Add(f.cfg.RelayRetry); s.NextCheckAt.IsZero() || retry.Before(s.NextCheckAt) {
					s.NextCheckAt = retry
				}
			}
			changed = true
			return true, nil
		})
		if err != nil {
			return fmt.Errorf("settlement: record payout on session %s: %w", sess.ID, err)
		}
		if changed && notify && f.cfg.Relay != nil {
			after = f.cfg.Relay(ctx, after)
		}
		if changed && f.cfg.OnSettled != nil {
			f.cfg.OnSettled(ctx, after)
		}
	}
	return nil
}

// overdue returns the merchant's sessions that have awaited the ledger for PayoutDelay or longer, as
// stored now. An id whose session is gone (expired) or does not await the ledger is dropped from the index.
func (f *Follower) overdue(ctx context.Context, merchant string) ([]*payment.Session, error) {
	ids, err := f.st.AwaitingSettlement(ctx, merchant, f.now().Add(-f.cfg.PayoutDelay))
	if err != nil {
		return nil, err
	}
	var out []*payment.Session
	for _, id := range ids {
		s, err := f.cfg.Store.Get(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if err == nil && s.Merchant == merchant && s.AwaitsSettlement() {
			out = append(out, s)
			continue
		}
		// Expired, or settled since the index was read, or an entry an older version's write left behind:
		// the store removes it only if the stored session does not await the ledger.
		if err := f.st.DropAwaitingSettlement(ctx, merchant, id); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkOverdue reports the captured sessions that are not (fully) on the ledger PayoutDelay after their
// capture. Each stays awaited, and listed in the day's report, until the ledger catches up.
func (f *Follower) checkOverdue(ctx context.Context, merchant string) error {
	overdue, err := f.overdue(ctx, merchant)
	if err != nil {
		return err
	}
	for _, s := range overdue {
		id := s.ID
		// Logged and counted once per session and process; the report lists it for as long as it lasts.
		f.mu.Lock()
		seen := f.applied["missing/"+id]
		f.applied["missing/"+id] = true
		f.mu.Unlock()
		if !seen {
			f.mismatch(merchant, MismatchMissing, "captured "+strconv.FormatInt(s.CapturedAmount, 10)+
				" is not on the ledger after the expected payout delay", id)
		}
	}
	return nil
}
