package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/kassehq/kasse/host/payment"
)

// errClosed is returned (wrapped) by a Memory store after Close.
var errClosed = errors.New("store is closed")

// DefaultJanitorInterval is how often a Memory store sweeps expired sessions and idempotency keys unless
// WithJanitorInterval says otherwise.
const DefaultJanitorInterval = time.Minute

// MemoryOption configures NewMemory.
type MemoryOption func(*memoryConfig)

type memoryConfig struct {
	now     func() time.Time
	janitor time.Duration
}

// WithNow makes the store read the time from now instead of time.Now, for TTLs. Tests pass a manual clock.
func WithNow(now func() time.Time) MemoryOption {
	return func(c *memoryConfig) { c.now = now }
}

// WithJanitorInterval sets how often expired entries are swept (default DefaultJanitorInterval).
// Expiry is also checked on every read, so the janitor only bounds memory use. d <= 0 turns it off.
func WithJanitorInterval(d time.Duration) MemoryOption {
	return func(c *memoryConfig) { c.janitor = d }
}

// Memory is the in-process Store: one mutex over plain maps, with deep copies in and out. It is the
// embedded default when no Redis is configured, and is only shared by the goroutines of one process.
//
// Update holds the mutex while fn runs, so fn is called exactly once per Update here; fn must not call
// the store (it would deadlock), which the Store contract forbids anyway.
type Memory struct {
	now func() time.Time

	mu       sync.Mutex
	closed   bool
	sessions map[string]memSession
	refs     map[string]string // refIndexKey -> session id
	idem     map[string]memIdem
	shopRefs map[string]memIdem // refIndexKey of the shop reference -> session id
	polls    map[string]time.Time
	// users is the UserIndex: refIndexKey(merchant, userID) -> session id -> expiry. Created on first use.
	users map[string]map[string]time.Time
	// settle is the Settlements state. Created on first use.
	settle *memSettlements
	// awaiting is the index of sessions awaiting the ledger (Settlements.AwaitingSettlement), kept by
	// the session writes: merchant -> session id -> since.
	awaiting map[string]map[string]time.Time

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type memSession struct {
	s       *payment.Session
	expires time.Time // zero: never
}

type memIdem struct {
	value   string
	expires time.Time
}

var (
	_ Store           = (*Memory)(nil)
	_ IndexingCreator = (*Memory)(nil)
)

// NewMemory returns an empty in-process store. Unless WithJanitorInterval(0) is given it starts one
// goroutine that sweeps expired entries; Close stops it and waits for it.
func NewMemory(opts ...MemoryOption) *Memory {
	cfg := memoryConfig{now: time.Now, janitor: DefaultJanitorInterval}
	for _, o := range opts {
		o(&cfg)
	}
	m := &Memory{
		now:      cfg.now,
		sessions: map[string]memSession{},
		refs:     map[string]string{},
		idem:     map[string]memIdem{},
		shopRefs: map[string]memIdem{},
		polls:    map[string]time.Time{},
		awaiting: map[string]map[string]time.Time{},
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if cfg.janitor > 0 {
		go m.janitor(cfg.janitor)
	} else {
		close(m.done)
	}
	return m
}

func (m *Memory) janitor(every time.Duration) {
	defer close(m.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.sweep()
		}
	}
}

// sweep drops every expired session, reference and idempotency key.
func (m *Memory) sweep() {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for id, e := range m.sessions {
		if expired(e.expires, now) {
			m.dropLocked(id, e.s)
		}
	}
	for k, v := range m.idem {
		if expired(v.expires, now) {
			delete(m.idem, k)
		}
	}
	for k, v := range m.shopRefs {
		if expired(v.expires, now) {
			delete(m.shopRefs, k)
		}
	}
}

// toMicros truncates t to whole microseconds, the resolution of the Redis poll schedule, so that both
// stores order and compare due times the same way.
func toMicros(t time.Time) time.Time { return time.UnixMicro(t.UnixMicro()) }

func expired(expires, now time.Time) bool {
	return !expires.IsZero() && !now.Before(expires)
}

// dropLocked deletes session id, its reference index entry and its entry in the index of sessions
// awaiting the ledger.
func (m *Memory) dropLocked(id string, s *payment.Session) {
	delete(m.sessions, id)
	delete(m.awaiting[s.Merchant], id)
	if k := refIndexKey(s.Merchant, s.ProviderReference); k != "" && m.refs[k] == id {
		delete(m.refs, k)
	}
}

// liveLocked returns session id unless it is missing or expired; an expired one is dropped.
func (m *Memory) liveLocked(id string) (memSession, bool) {
	e, ok := m.sessions[id]
	if !ok {
		return memSession{}, false
	}
	if expired(e.expires, m.now()) {
		m.dropLocked(id, e.s)
		return memSession{}, false
	}
	return e, true
}

// refOwnerLocked returns the live session holding reference index key k.
func (m *Memory) refOwnerLocked(k string) (string, bool) {
	id, ok := m.refs[k]
	if !ok {
		return "", false
	}
	if _, live := m.liveLocked(id); !live {
		delete(m.refs, k)
		return "", false
	}
	return id, true
}

// Create implements Store.Create.
func (m *Memory) Create(ctx context.Context, s *payment.Session, ttl time.Duration) error {
	_, sp := span(ctx, "create", "memory")
	defer sp.End()
	_, err := m.create(s, ttl, nil, false)
	return err
}

// CreateIndexed implements IndexingCreator: the claim, the session and its shop reference under one lock.
func (m *Memory) CreateIndexed(ctx context.Context, s *payment.Session, ttl time.Duration, claim *Claim) (string, error) {
	_, sp := span(ctx, "create", "memory")
	defer sp.End()
	if claim != nil {
		if err := checkClaim(claim.Scope, claim.Key, claim.Value, claim.TTL); err != nil {
			return "", err
		}
	}
	return m.create(s, ttl, claim, true)
}

// create is Create, and with index CreateIndexed: as the Redis create script, a claim that is already
// held is answered first, then a taken id or reference, and only then is anything written.
func (m *Memory) create(s *payment.Session, ttl time.Duration, claim *Claim, index bool) (string, error) {
	if err := validateNew(s); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", fmt.Errorf("store: create session[%s]: %w", s.ID, errClosed)
	}
	now := m.now()
	var idem string
	if claim != nil {
		idem = idemIndexKey(claim.Scope, claim.Key)
		if v, ok := m.idem[idem]; ok && !expired(v.expires, now) {
			return v.value, nil
		}
	}
	if _, ok := m.liveLocked(s.ID); ok {
		return "", fmt.Errorf("store: create session[%s]: %w", s.ID, ErrExists)
	}
	k := refIndexKey(s.Merchant, s.ProviderReference)
	if k != "" {
		if _, taken := m.refOwnerLocked(k); taken {
			return "", fmt.Errorf("store: create session[%s]: provider reference %q of merchant %q is taken: %w",
				s.ID, s.ProviderReference, s.Merchant, ErrExists)
		}
	}
	if claim != nil {
		m.idem[idem] = memIdem{value: claim.Value, expires: now.Add(claim.TTL)}
	}
	c := clone(s)
	c.Revision = 1
	e := memSession{s: c}
	if ttl > 0 {
		e.expires = now.Add(ttl)
	}
	m.sessions[s.ID] = e
	if k != "" {
		m.refs[k] = s.ID
	}
	if !c.NextCheckAt.IsZero() {
		m.polls[s.ID] = toMicros(c.NextCheckAt)
	}
	if index && s.Reference != "" {
		m.shopRefs[refIndexKey(s.Merchant, s.Reference)] = memIdem{value: s.ID, expires: e.expires}
	}
	m.awaitLocked(nil, c)
	s.Revision = 1
	return "", nil
}

// Get implements Store.Get.
func (m *Memory) Get(ctx context.Context, id string) (*payment.Session, error) {
	_, sp := span(ctx, "get", "memory")
	defer sp.End()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("store: get session[%s]: %w", id, errClosed)
	}
	e, ok := m.liveLocked(id)
	if !ok {
		return nil, fmt.Errorf("store: get session[%s]: %w", id, ErrNotFound)
	}
	return clone(e.s), nil
}

// GetByProviderReference implements Store.GetByProviderReference.
func (m *Memory) GetByProviderReference(ctx context.Context, merchant, ref string) (*payment.Session, error) {
	_, sp := span(ctx, "get_by_provider_reference", "memory")
	defer sp.End()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("store: get session by reference[%s/%s]: %w", merchant, ref, errClosed)
	}
	k := refIndexKey(merchant, ref)
	if k == "" {
		return nil, fmt.Errorf("store: get session by reference[%s/%s]: %w", merchant, ref, ErrNotFound)
	}
	id, ok := m.refOwnerLocked(k)
	if !ok {
		return nil, fmt.Errorf("store: get session by reference[%s/%s]: %w", merchant, ref, ErrNotFound)
	}
	return clone(m.sessions[id].s), nil
}

// Update implements Store.Update. fn runs under the store's mutex, exactly once.
func (m *Memory) Update(ctx context.Context, id string, fn func(s *payment.Session) (bool, error)) (*payment.Session, error) {
	_, sp := span(ctx, "update", "memory")
	defer sp.End()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("store: update session[%s]: %w", id, errClosed)
	}
	e, ok := m.liveLocked(id)
	if !ok {
		return nil, fmt.Errorf("store: update session[%s]: %w", id, ErrNotFound)
	}
	next := clone(e.s)
	changed, err := fn(next)
	if err != nil {
		return nil, fmt.Errorf("store: update session[%s]: %w", id, err)
	}
	if !changed {
		return clone(e.s), nil
	}
	if next.ID != id {
		return nil, fmt.Errorf("store: update session[%s]: the update changed the id to %q", id, next.ID)
	}
	oldK := refIndexKey(e.s.Merchant, e.s.ProviderReference)
	newK := refIndexKey(next.Merchant, next.ProviderReference)
	if newK != oldK && newK != "" {
		if owner, taken := m.refOwnerLocked(newK); taken && owner != id {
			return nil, fmt.Errorf("store: update session[%s]: provider reference %q of merchant %q is taken: %w",
				id, next.ProviderReference, next.Merchant, ErrExists)
		}
	}
	next = clone(next) // fn may still hold its copy
	next.Revision = e.s.Revision + 1
	if newK != oldK {
		if oldK != "" && m.refs[oldK] == id {
			delete(m.refs, oldK)
		}
		if newK != "" {
			m.refs[newK] = id
		}
	}
	m.sessions[id] = memSession{s: next, expires: e.expires}
	switch {
	case next.NextCheckAt.Equal(e.s.NextCheckAt):
	case next.NextCheckAt.IsZero():
		delete(m.polls, id)
	default:
		m.polls[id] = toMicros(next.NextCheckAt)
	}
	m.awaitLocked(e.s, next)
	return clone(next), nil
}

// ClaimIdempotencyKey implements Store.ClaimIdempotencyKey.
func (m *Memory) ClaimIdempotencyKey(_ context.Context, scope, key, value string, ttl time.Duration) (string, error) {
	if err := checkClaim(scope, key, value, ttl); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", fmt.Errorf("store: claim idempotency key[%s/%s]: %w", scope, key, errClosed)
	}
	k := idemIndexKey(scope, key)
	now := m.now()
	if v, ok := m.idem[k]; ok && !expired(v.expires, now) {
		return v.value, nil
	}
	m.idem[k] = memIdem{value: value, expires: now.Add(ttl)}
	return "", nil
}

// ReleaseIdempotencyKey implements Store.ReleaseIdempotencyKey.
func (m *Memory) ReleaseIdempotencyKey(_ context.Context, scope, key, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("store: release idempotency key[%s/%s]: %w", scope, key, errClosed)
	}
	k := idemIndexKey(scope, key)
	if v, ok := m.idem[k]; ok && v.value == value {
		delete(m.idem, k)
	}
	return nil
}

// SwapIdempotencyKey implements Store.SwapIdempotencyKey.
func (m *Memory) SwapIdempotencyKey(_ context.Context, scope, key, old, value string, ttl time.Duration) (bool, error) {
	if err := checkClaim(scope, key, value, ttl); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false, fmt.Errorf("store: swap idempotency key[%s/%s]: %w", scope, key, errClosed)
	}
	k := idemIndexKey(scope, key)
	now := m.now()
	if v, ok := m.idem[k]; !ok || expired(v.expires, now) || v.value != old {
		return false, nil
	}
	m.idem[k] = memIdem{value: value, expires: now.Add(ttl)}
	return true, nil
}

// SchedulePoll implements Store.SchedulePoll.
func (m *Memory) SchedulePoll(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("store: schedule poll[%s]: %w", id, errClosed)
	}
	m.polls[id] = toMicros(at)
	return nil
}

// CancelPoll implements Store.CancelPoll.
func (m *Memory) CancelPoll(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("store: cancel poll[%s]: %w", id, errClosed)
	}
	if e, ok := m.liveLocked(id); ok && !e.s.NextCheckAt.IsZero() {
		return nil
	}
	delete(m.polls, id)
	return nil
}

// ClaimDuePolls implements Store.ClaimDuePolls. It scans every scheduled id, which is fine for the number
// of open payments one process holds.
func (m *Memory) ClaimDuePolls(_ context.Context, now time.Time, limit int, lease time.Duration) ([]string, error) {
	if err := checkLease(lease); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("store: claim due polls: %w", errClosed)
	}
	type due struct {
		id string
		at time.Time
	}
	var ready []due
	now = toMicros(now)
	for id, at := range m.polls {
		if !at.After(now) {
			ready = append(ready, due{id, at})
		}
	}
	slices.SortFunc(ready, func(a, b due) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	ready = ready[:min(limit, len(ready))]
	ids := make([]string, len(ready))
	until := toMicros(now.Add(lease))
	for i, d := range ready {
		ids[i] = d.id
		m.polls[d.id] = until
	}
	return ids, nil
}

// Ping implements Store.Ping: it fails only after Close.
func (m *Memory) Ping(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("store: ping: %w", errClosed)
	}
	return nil
}

// Close stops the janitor, waits for it to return, and makes every later call fail.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
		close(m.stop)
	})
	<-m.done
	return nil
}

// IndexReference implements Store.IndexReference.
func (m *Memory) IndexReference(_ context.Context, merchant, reference, id string, ttl time.Duration) error {
	if reference == "" || id == "" || ttl <= 0 {
		return fmt.Errorf("store: index reference[%s/%s]: reference, id and a positive ttl are required", merchant, reference)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("store: index reference[%s/%s]: %w", merchant, reference, errClosed)
	}
	m.shopRefs[refIndexKey(merchant, reference)] = memIdem{value: id, expires: m.now().Add(ttl)}
	return nil
}

// GetByReference implements Store.GetByReference.
func (m *Memory) GetByReference(ctx context.Context, merchant, reference string) (*payment.Session, error) {
	ctx, sp := span(ctx, "get_by_reference", "memory")
	defer sp.End()
	m.mu.Lock()
	v, ok := m.shopRefs[refIndexKey(merchant, reference)]
	if ok && expired(v.expires, m.now()) {
		ok = false
	}
	m.mu.Unlock()
	if !ok || reference == "" {
		return nil, fmt.Errorf("store: get session by shop reference[%s/%s]: %w", merchant, reference, ErrNotFound)
	}
	return m.Get(ctx, v.value)
}

// IndexUser implements UserIndex.IndexUser.
func (m *Memory) IndexUser(_ context.Context, merchant, userID, id string, ttl time.Duration) error {
	if userID == "" || id == "" || ttl <= 0 {
		return fmt.Errorf("store: index user of session[%s]: user id, id and a positive ttl are required", id)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("store: index user of session[%s]: %w", id, errClosed)
	}
	if m.users == nil {
		m.users = map[string]map[string]time.Time{}
	}
	k := refIndexKey(merchant, userID)
	if m.users[k] == nil {
		m.users[k] = map[string]time.Time{}
	}
	m.users[k][id] = m.now().Add(ttl)
	return nil
}

// SessionsOfUser implements UserIndex.SessionsOfUser.
func (m *Memory) SessionsOfUser(_ context.Context, merchant, userID string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("store: sessions of a user of merchant %s: %w", merchant, errClosed)
	}
	now := m.now()
	var ids []string
	for id, exp := range m.users[refIndexKey(merchant, userID)] {
		if !expired(exp, now) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// ForgetUser implements UserIndex.ForgetUser.
func (m *Memory) ForgetUser(_ context.Context, merchant, userID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("store: forget a user of merchant %s: %w", merchant, errClosed)
	}
	delete(m.users, refIndexKey(merchant, userID))
	return nil
}

// memSettlements is the Memory store's part of Settlements; created on first use, guarded by Memory.mu.
type memSettlements struct {
	leases  map[string]memIdem
	cursors map[string]string
	// ledgers: ledger -> date -> id -> record.
	ledgers map[string]map[string]map[string]LedgerRecord
}

// settlementsLocked returns the settlement state, creating it on first use.
func (m *Memory) settlementsLocked() *memSettlements {
	if m.settle == nil {
		m.settle = &memSettlements{leases: map[string]memIdem{}, cursors: map[string]string{},
			ledgers: map[string]map[string]map[string]LedgerRecord{}}
	}
	return m.settle
}

// AcquireLease implements Settlements.AcquireLease.
func (m *Memory) AcquireLease(_ context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if err := checkLeaseArgs(name, holder, ttl); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false, fmt.Errorf("store: acquire lease[%s]: %w", name, errClosed)
	}
	st := m.settlementsLocked()
	now := m.now()
	if l, ok := st.leases[name]; ok && !expired(l.expires, now) && l.value != holder {
		return false, nil
	}
	st.leases[name] = memIdem{value: holder, expires: now.Add(ttl)}
	return true, nil
}

// ReleaseLease implements Settlements.ReleaseLease.
func (m *Memory) ReleaseLease(_ context.Context, name, holder string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("store: release lease[%s]: %w", name, errClosed)
	}
	st := m.settlementsLocked()
	if l, ok := st.leases[name]; ok && l.value == holder {
		delete(st.leases, name)
	}
	return nil
}

// FeedCursor implements Settlements.FeedCursor.
func (m *Memory) FeedCursor(_ context.Context, feed string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", fmt.Errorf("store: feed cursor[%s]: %w", feed, errClosed)
	}
	return m.settlementsLocked().cursors[feed], nil
}

// RecordLedger implements Settlements.RecordLedger.
func (m *Memory) RecordLedger(_ context.Context, ledger, feed, old, next string, recs []LedgerRecord) (bool, error) {
	if err := checkRecords(ledger, feed, recs); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false, fmt.Errorf("store: record ledger[%s]: %w", ledger, errClosed)
	}
	st := m.settlementsLocked()
	if st.cursors[feed] != old {
		return false, nil
	}
	if st.ledgers[ledger] == nil {
		st.ledgers[ledger] = map[string]map[string]LedgerRecord{}
	}
	for _, r := range recs {
		day := st.ledgers[ledger][r.Date]
		if day == nil {
			day = map[string]LedgerRecord{}
			st.ledgers[ledger][r.Date] = day
		}
		if _, ok := day[r.ID]; !ok {
			day[r.ID] = LedgerRecord{ID: r.ID, Date: r.Date, Data: slices.Clone(r.Data)}
		}
	}
	st.cursors[feed] = next
	return true, nil
}

// LedgerEntries implements Settlements.LedgerEntries.
func (m *Memory) LedgerEntries(_ context.Context, ledger, date string) ([]LedgerRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("store: ledger entries[%s/%s]: %w", ledger, date, errClosed)
	}
	day := m.settlementsLocked().ledgers[ledger][date]
	out := make([]LedgerRecord, 0, len(day))
	for _, r := range day {
		out = append(out, LedgerRecord{ID: r.ID, Date: r.Date, Data: slices.Clone(r.Data)})
	}
	slices.SortFunc(out, func(a, b LedgerRecord) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// LedgerDates implements Settlements.LedgerDates.
func (m *Memory) LedgerDates(_ context.Context, ledger string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("store: ledger dates[%s]: %w", ledger, errClosed)
	}
	var dates []string
	for d := range m.settlementsLocked().ledgers[ledger] {
		dates = append(dates, d)
	}
	slices.Sort(dates)
	return dates, nil
}

// awaitLocked keeps the index of sessions awaiting the ledger in step with a write of a session from
// cur (nil for a create) to next, as the Redis scripts do.
func (m *Memory) awaitLocked(cur, next *payment.Session) {
	if cur != nil && cur.AwaitsSettlement() && (!next.AwaitsSettlement() || cur.Merchant != next.Merchant) {
		delete(m.awaiting[cur.Merchant], cur.ID)
	}
	if !next.AwaitsSettlement() {
		return
	}
	idx := m.awaiting[next.Merchant]
	if idx == nil {
		idx = map[string]time.Time{}
		m.awaiting[next.Merchant] = idx
	}
	if _, ok := idx[next.ID]; !ok {
		idx[next.ID] = awaitingSince(next)
	}
}

// AwaitingSettlement implements Settlements.AwaitingSettlement.
func (m *Memory) AwaitingSettlement(_ context.Context, merchant string, since time.Time) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("store: sessions awaiting settlement[%s]: %w", merchant, errClosed)
	}
	var ids []string
	for id, t := range m.awaiting[merchant] {
		if !t.After(toMicros(since)) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// DropAwaitingSettlement implements Settlements.DropAwaitingSettlement.
func (m *Memory) DropAwaitingSettlement(_ context.Context, merchant, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("store: drop awaiting settlement[%s]: %w", id, errClosed)
	}
	if e, live := m.liveLocked(id); !live || e.s.Merchant != merchant || !e.s.AwaitsSettlement() {
		delete(m.awaiting[merchant], id)
	}
	return nil
}

// IndexesAwaitingSettlement implements Settlements: a Memory store always keeps the index (its entries
// go with their sessions).
func (m *Memory) IndexesAwaitingSettlement() bool { return true }
