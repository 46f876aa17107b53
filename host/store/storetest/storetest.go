// Package storetest is the conformance suite for store.Store implementations, in the spirit of
// testing/fstest.TestFS: every store (the in-process one, Redis, a Redis Cluster) runs the same Run, so
// they keep one behaviour. It owns only tests; nothing in production imports it.
package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/store"
)

// Clock is a manual clock for stores that read the time through a function (store.WithNow), so that the
// TTL tests move time forward instead of sleeping. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock that reads start until it is advanced.
func NewClock(start time.Time) *Clock { return &Clock{t: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Option adjusts Run.
type Option func(*config)

type config struct {
	clock   *Clock
	newPair func(t *testing.T) (a, b store.Store)
}

// WithClock says that every store newStore returns reads its time from c. The TTL test then advances c
// instead of waiting for a real one-second TTL to run out.
func WithClock(c *Clock) Option { return func(cfg *config) { cfg.clock = c } }

// WithShared gives the suite two handles on one shared state (two Redis clients with the same prefix),
// to check that they behave as one store. Without it the shared tests use one store twice. Run closes
// both handles.
func WithShared(newPair func(t *testing.T) (a, b store.Store)) Option {
	return func(cfg *config) { cfg.newPair = newPair }
}

// Run runs the conformance suite, one subtest per behaviour. newStore must return a new, empty store
// each time it is called; Run closes it when the subtest ends. Subtests run one after another.
func Run(t *testing.T, newStore func(t *testing.T) store.Store, opts ...Option) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	open := func(t *testing.T) store.Store {
		s := newStore(t)
		t.Cleanup(func() { closeStore(t, s) })
		return s
	}
	single := []struct {
		name string
		run  func(t *testing.T, st store.Store, cfg *config)
	}{
		{"CreateGetRoundTrip", testRoundTrip},
		{"CreateRejectsDuplicates", testDuplicates},
		{"CreateValidates", testCreateValidates},
		{"NotFound", testNotFound},
		{"GetByProviderReference", testGetByProviderReference},
		{"ShopReferenceIndex", testShopReference},
		{"CreateIndexed", testCreateIndexed},
		{"UpdateWrites", testUpdateWrites},
		{"UpdateNoOpWritesNothing", testUpdateNoOp},
		{"UpdateErrorWritesNothing", testUpdateError},
		{"UpdateMovesProviderReference", testUpdateReference},
		{"UpdateKeepsID", testUpdateKeepsID},
		{"CopiesDoNotAlias", testNoAliasing},
		{"TTL", testTTL},
		{"IdempotencyKeys", testIdempotency},
		{"PendingClaims", testPendingClaims},
		{"CreateIndexedPendingClaim", testCreateIndexedPendingClaim},
		{"PollSchedule", testPolls},
		{"PollScheduleFollowsNextCheckAt", testNextCheckAt},
		{"HammerIdempotentApply", testHammerApply},
		{"HammerAppends", testHammerAppends},
		{"ConcurrentCreate", testConcurrentCreate},
		{"Ping", testPing},
		{"UserIndex", testUserIndex},
		{"ListSessions", testList},
		{"Settlements", testSettlements},
	}
	for _, tc := range single {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t), &cfg) })
	}
	pair := func(t *testing.T) (a, b store.Store) {
		if cfg.newPair == nil {
			s := open(t)
			return s, s
		}
		a, b = cfg.newPair(t)
		t.Cleanup(func() { closeStore(t, a); closeStore(t, b) })
		return a, b
	}
	shared := []struct {
		name string
		run  func(t *testing.T, a, b store.Store)
	}{
		{"SharedSessions", testSharedSessions},
		{"SharedHammer", testSharedHammer},
		{"SharedIdempotencyKeys", testSharedIdempotency},
		{"SharedClaimDuePolls", testSharedPolls},
	}
	for _, tc := range shared {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pair(t)
			tc.run(t, a, b)
		})
	}
}

func closeStore(t *testing.T, s store.Store) {
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

// Sample returns a pending session with every field of a real one set, for merchant "acme". ref may be "".
func Sample(id, ref string) *payment.Session {
	cet := time.FixedZone("CET", 3600)
	created := t0.In(cet)
	return &payment.Session{
		ID: id, Merchant: "acme", Reference: "order-" + id, State: payment.StatePending,
		Amount: 49900, Currency: "NOK",
		Description: "Två koppar ☕ & <kake> \"deluxe\"",
		ReturnURL:   "https://shop.example/return?order=" + id + "&x=1",
		Customer:    &payment.Customer{PhoneNumber: "91234567"},
		Lines: []payment.Line{
			{SKU: "cup", Name: "Kopp", Quantity: 2, UnitPrice: 19950},
			{Name: "Frakt", Quantity: 1, UnitPrice: 10000},
		},
		Plugin: "vipps-ecom", PluginVersion: "1.2.3",
		ProviderReference: ref,
		RedirectURL:       "https://landing.example/?token=abc",
		CallbackToken:     "cb-" + id,
		CreatedAt:         created,
		UpdatedAt:         created,
		ExpiresAt:         created.Add(15 * time.Minute),
		History: []payment.Event{
			{At: created, To: payment.StatePending, Cause: "checkout created", Amount: 49900},
		},
	}
}

// authorized is a provider observation of a reserved amount of 49900.
var authorized = payment.Observation{State: payment.StateAuthorized, AuthorizedAmount: 49900,
	CapturedAmount: -1, RefundedAmount: -1, CancelledAmount: -1}

// utcCopy is the session a store must return for in: a deep copy with every time in UTC.
func utcCopy(in *payment.Session) *payment.Session {
	var out payment.Session
	b, err := json.Marshal(in)
	if err != nil {
		panic(err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	out.CreatedAt, out.UpdatedAt, out.ExpiresAt = out.CreatedAt.UTC(), out.UpdatedAt.UTC(), out.ExpiresAt.UTC()
	for i := range out.History {
		out.History[i].At = out.History[i].At.UTC()
	}
	return &out
}

func mustEqual(t *testing.T, what string, got, want *payment.Session) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	g, _ := json.MarshalIndent(got, "", "  ")
	w, _ := json.MarshalIndent(want, "", "  ")
	t.Fatalf("%s: session differs\n got: %s\nwant: %s\n(got locations: %v)", what, g, w, locations(got))
}

func locations(s *payment.Session) []string {
	if s == nil {
		return nil
	}
	l := []string{s.CreatedAt.Location().String(), s.UpdatedAt.Location().String(), s.ExpiresAt.Location().String()}
	for _, e := range s.History {
		l = append(l, e.At.Location().String())
	}
	return l
}

func mustCreate(t *testing.T, st store.Store, s *payment.Session, ttl time.Duration) {
	t.Helper()
	if err := st.Create(t.Context(), s, ttl); err != nil {
		t.Fatalf("Create(%s): %v", s.ID, err)
	}
}

func mustGet(t *testing.T, st store.Store, id string) *payment.Session {
	t.Helper()
	s, err := st.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return s
}

func mustUpdate(t *testing.T, st store.Store, id string, fn func(*payment.Session) (bool, error)) *payment.Session {
	t.Helper()
	s, err := st.Update(t.Context(), id, fn)
	if err != nil {
		t.Fatalf("Update(%s): %v", id, err)
	}
	return s
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func testRoundTrip(t *testing.T, st store.Store, _ *config) {
	in := Sample("rt-1", "vipps-rt-1")
	in.State = payment.StateCaptured
	in.AuthorizedAmount, in.CapturedAmount, in.RefundedAmount, in.CancelledAmount = 49900, 30000, 1000, 19900
	in.Reason = "partly shipped"
	in.UpdatedAt = time.Now() // local zone with a monotonic reading
	in.History = append(in.History,
		payment.Event{At: t0.Add(time.Minute), From: payment.StatePending, To: payment.StateAuthorized,
			Cause: "callback", Amount: 49900},
		payment.Event{At: t0.Add(2 * time.Minute).In(time.FixedZone("X", -7*3600)), From: payment.StateAuthorized,
			To: payment.StateCaptured, Cause: "capture", Amount: 30000, Detail: "order shipped"})
	in.Revision = 42 // ignored: Create sets 1
	want := utcCopy(in)
	want.Revision = 1

	mustCreate(t, st, in, time.Hour)
	if in.Revision != 1 {
		t.Errorf("Create left s.Revision = %d, want 1", in.Revision)
	}
	mustEqual(t, "Get", mustGet(t, st, "rt-1"), want)
	byRef, err := st.GetByProviderReference(t.Context(), "acme", "vipps-rt-1")
	if err != nil {
		t.Fatalf("GetByProviderReference: %v", err)
	}
	mustEqual(t, "GetByProviderReference", byRef, want)

	// Empty optional parts come back empty.
	bare := &payment.Session{ID: "rt-bare", Merchant: "acme", State: payment.StatePending}
	mustCreate(t, st, bare, 0)
	got := mustGet(t, st, "rt-bare")
	if got.Customer != nil || len(got.Lines) != 0 || len(got.History) != 0 || !got.CreatedAt.IsZero() ||
		got.Revision != 1 {
		t.Fatalf("bare session came back as %+v", got)
	}
}

func testDuplicates(t *testing.T, st store.Store, _ *config) {
	ctx := t.Context()
	mustCreate(t, st, Sample("dup-1", "ref-1"), 0)

	other := Sample("dup-1", "ref-other")
	other.Amount = 1
	err := st.Create(ctx, other, 0)
	wantErr(t, "Create with a taken id", err, store.ErrExists)
	if !strings.Contains(err.Error(), "dup-1") {
		t.Errorf("error %q does not name the session", err)
	}
	if other.Revision != 0 {
		t.Errorf("failed Create set Revision %d", other.Revision)
	}
	if got := mustGet(t, st, "dup-1"); got.Amount != 49900 {
		t.Fatalf("failed Create overwrote the session: amount %d", got.Amount)
	}
	wantErr(t, "Create with a taken reference", st.Create(ctx, Sample("dup-2", "ref-1"), 0), store.ErrExists)
	_, err = st.Get(ctx, "dup-2")
	wantErr(t, "Get after a refused Create", err, store.ErrNotFound)
	// The refused id is still free.
	mustCreate(t, st, Sample("dup-2", "ref-2"), 0)

	// References are per merchant.
	s := Sample("dup-3", "ref-1")
	s.Merchant = "globex"
	mustCreate(t, st, s, 0)
	// Sessions without a reference never clash on it.
	mustCreate(t, st, Sample("dup-4", ""), 0)
	mustCreate(t, st, Sample("dup-5", ""), 0)
	// A separator in the merchant cannot make two pairs collide.
	x, y := Sample("dup-6", "c"), Sample("dup-7", "b:c")
	x.Merchant, y.Merchant = "a:b", "a"
	mustCreate(t, st, x, 0)
	mustCreate(t, st, y, 0)
	for _, c := range []struct{ merchant, ref, id string }{{"a:b", "c", "dup-6"}, {"a", "b:c", "dup-7"}} {
		got, err := st.GetByProviderReference(ctx, c.merchant, c.ref)
		if err != nil || got.ID != c.id {
			t.Fatalf("GetByProviderReference(%q, %q) = %v, %v; want %s", c.merchant, c.ref, got, err, c.id)
		}
	}
}

func testCreateValidates(t *testing.T, st store.Store, _ *config) {
	ctx := t.Context()
	for _, c := range []struct {
		name string
		s    *payment.Session
	}{{"nil", nil}, {"empty id", &payment.Session{Merchant: "acme"}}} {
		err := st.Create(ctx, c.s, 0)
		if err == nil || errors.Is(err, store.ErrExists) {
			t.Errorf("Create(%s) = %v, want a validation error", c.name, err)
		}
	}
	if _, err := st.ClaimIdempotencyKey(ctx, "s", "k", "", time.Minute); err == nil {
		t.Error("ClaimIdempotencyKey with an empty value succeeded")
	}
	if _, err := st.ClaimIdempotencyKey(ctx, "s", "k", "v", 0); err == nil {
		t.Error("ClaimIdempotencyKey with ttl 0 succeeded")
	}
	if _, err := st.ClaimDuePolls(ctx, t0, 10, 0); err == nil {
		t.Error("ClaimDuePolls with lease 0 succeeded")
	}
}

func testNotFound(t *testing.T, st store.Store, _ *config) {
	ctx := t.Context()
	_, err := st.Get(ctx, "nope")
	wantErr(t, "Get", err, store.ErrNotFound)
	_, err = st.GetByProviderReference(ctx, "acme", "nope")
	wantErr(t, "GetByProviderReference", err, store.ErrNotFound)
	_, err = st.GetByProviderReference(ctx, "acme", "")
	wantErr(t, "GetByProviderReference with an empty reference", err, store.ErrNotFound)
	called := false
	_, err = st.Update(ctx, "nope", func(*payment.Session) (bool, error) { called = true; return true, nil })
	wantErr(t, "Update", err, store.ErrNotFound)
	if want := "store: update session[nope]: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Update error %q does not start with %q", err, want)
	}
	if called {
		t.Error("Update called fn for a missing session")
	}
	if _, err := st.Get(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Update created the session: %v", err)
	}
}

func testGetByProviderReference(t *testing.T, st store.Store, _ *config) {
	ctx := t.Context()
	mustCreate(t, st, Sample("gbr-1", "vipps-1"), 0)
	mustCreate(t, st, Sample("gbr-2", "vipps-2"), 0)
	got, err := st.GetByProviderReference(ctx, "acme", "vipps-2")
	if err != nil || got.ID != "gbr-2" {
		t.Fatalf("GetByProviderReference(acme, vipps-2) = %v, %v", got, err)
	}
	_, err = st.GetByProviderReference(ctx, "globex", "vipps-2")
	wantErr(t, "GetByProviderReference for another merchant", err, store.ErrNotFound)
}

func testShopReference(t *testing.T, st store.Store, _ *config) {
	ctx := t.Context()
	mustCreate(t, st, Sample("shop-1", "vipps-shop-1"), 0)
	mustCreate(t, st, Sample("shop-2", "vipps-shop-2"), 0)
	_, err := st.GetByReference(ctx, "acme", "order-7")
	wantErr(t, "GetByReference before IndexReference", err, store.ErrNotFound)
	for _, id := range []string{"shop-1", "shop-2"} {
		if err := st.IndexReference(ctx, "acme", "order-7", id, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.GetByReference(ctx, "acme", "order-7")
	if err != nil || got.ID != "shop-2" {
		t.Fatalf("GetByReference(acme, order-7) = %v, %v; want the newest, shop-2", got, err)
	}
	_, err = st.GetByReference(ctx, "globex", "order-7")
	wantErr(t, "GetByReference for another merchant", err, store.ErrNotFound)
	if err := st.IndexReference(ctx, "acme", "", "shop-1", time.Hour); err == nil {
		t.Fatal("IndexReference accepted an empty reference")
	}
}

// testCreateIndexed: store.CreateIndexed creates the session and points its shop reference at it; a
// newer session for the same order takes the reference over; a create that fails indexes nothing; a
// session without a reference is created and indexes nothing. With a claim: a free key is claimed with the
// session; a held key is answered with its value and nothing is written; a create that fails because the
// id is taken leaves the key free.
func testCreateIndexed(t *testing.T, st store.Store, _ *config) {
	ctx := t.Context()
	create := func(s *payment.Session, ttl time.Duration, claim *store.Claim) (string, error) {
		return store.CreateIndexed(ctx, st, s, ttl, claim)
	}
	first := Sample("ci-1", "vipps-ci-1")
	first.Reference = "order-ci"
	if existing, err := create(first, time.Hour, nil); err != nil || existing != "" {
		t.Fatalf("CreateIndexed(ci-1) = %q, %v", existing, err)
	}
	if first.Revision != 1 {
		t.Errorf("CreateIndexed left revision %d, want 1", first.Revision)
	}
	if got, err := st.GetByReference(ctx, "acme", "order-ci"); err != nil || got.ID != "ci-1" {
		t.Fatalf("GetByReference(acme, order-ci) after the first = %v, %v; want ci-1", got, err)
	}
	second := Sample("ci-2", "vipps-ci-2")
	second.Reference = "order-ci"
	if _, err := create(second, 0, nil); err != nil {
		t.Fatalf("CreateIndexed(ci-2): %v", err)
	}
	if got, err := st.GetByReference(ctx, "acme", "order-ci"); err != nil || got.ID != "ci-2" {
		t.Fatalf("GetByReference(acme, order-ci) after the second = %v, %v; want the newest, ci-2", got, err)
	}
	// The id is taken: nothing is written, the reference keeps pointing at ci-2, a claim stays free.
	again := Sample("ci-1", "vipps-ci-3")
	again.Reference = "order-ci"
	taken := &store.Claim{Scope: "checkout:acme", Key: "key-taken", Value: "ci-1|x", TTL: time.Hour}
	_, err := create(again, time.Hour, taken)
	wantErr(t, "CreateIndexed with a taken id", err, store.ErrExists)
	if got, err := st.GetByReference(ctx, "acme", "order-ci"); err != nil || got.ID != "ci-2" {
		t.Fatalf("GetByReference(acme, order-ci) after a failed create = %v, %v; want ci-2", got, err)
	}
	if _, err := st.GetByProviderReference(ctx, "acme", "vipps-ci-3"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a failed CreateIndexed took the provider reference: %v", err)
	}
	if v, err := st.ClaimIdempotencyKey(ctx, "checkout:acme", "key-taken", "probe", time.Hour); err != nil || v != "" {
		t.Errorf("a failed CreateIndexed left its claim: %q, %v", v, err)
	}
	bare := Sample("ci-4", "vipps-ci-4")
	bare.Reference = ""
	if _, err := create(bare, time.Hour, nil); err != nil {
		t.Fatalf("CreateIndexed without a reference: %v", err)
	}
	if got, err := st.Get(ctx, "ci-4"); err != nil || got.Reference != "" {
		t.Fatalf("Get(ci-4) = %v, %v", got, err)
	}

	// Claims: the first request claims the key with its session, a second one gets the first's value.
	claimed := Sample("ci-5", "vipps-ci-5")
	claim := &store.Claim{Scope: "checkout:acme", Key: "key-5", Value: "ci-5|fp", TTL: time.Hour}
	if existing, err := create(claimed, time.Hour, claim); err != nil || existing != "" {
		t.Fatalf("CreateIndexed(ci-5) with a free claim = %q, %v", existing, err)
	}
	if v, err := st.ClaimIdempotencyKey(ctx, "checkout:acme", "key-5", "other", time.Hour); err != nil || v != "ci-5|fp" {
		t.Fatalf("the claim after CreateIndexed holds %q, %v; want ci-5|fp", v, err)
	}
	retry := Sample("ci-6", "vipps-ci-6")
	retry.Reference = "order-ci-6"
	existing, err := create(retry, time.Hour, &store.Claim{Scope: "checkout:acme", Key: "key-5", Value: "ci-6|fp", TTL: time.Hour})
	if err != nil || existing != "ci-5|fp" {
		t.Fatalf("CreateIndexed with a held claim = %q, %v; want ci-5|fp", existing, err)
	}
	if _, err := st.Get(ctx, "ci-6"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CreateIndexed with a held claim created the session: %v", err)
	}
	if _, err := st.GetByReference(ctx, "acme", "order-ci-6"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CreateIndexed with a held claim indexed the reference: %v", err)
	}
	if _, err := create(Sample("ci-7", "vipps-ci-7"), time.Hour, &store.Claim{Scope: "checkout:acme", Key: "key-7", Value: "", TTL: time.Hour}); err == nil {
		t.Error("CreateIndexed accepted a claim without a value")
	}
}

func testUpdateWrites(t *testing.T, st store.Store, _ *config) {
	mustCreate(t, st, Sample("up-1", "ref-up-1"), time.Hour)
	at := t0.Add(time.Minute)
	got := mustUpdate(t, st, "up-1", func(s *payment.Session) (bool, error) {
		return s.Apply(authorized, "callback", at), nil
	})
	if got.Revision != 2 || got.State != payment.StateAuthorized || got.AuthorizedAmount != 49900 ||
		len(got.History) != 2 || !got.UpdatedAt.Equal(at) {
		t.Fatalf("Update returned %+v", got)
	}
	mustEqual(t, "Get after Update", mustGet(t, st, "up-1"), got)
	got = mustUpdate(t, st, "up-1", func(s *payment.Session) (bool, error) {
		s.RedirectURL = "https://landing.example/2"
		s.Revision = 1000 // the store owns Revision
		return true, nil
	})
	if got.Revision != 3 {
		t.Fatalf("Revision after a second write = %d, want 3", got.Revision)
	}
	mustEqual(t, "Get after the second Update", mustGet(t, st, "up-1"), got)
}

func testUpdateNoOp(t *testing.T, st store.Store, _ *config) {
	mustCreate(t, st, Sample("noop-1", ""), 0)
	before := mustGet(t, st, "noop-1")
	got := mustUpdate(t, st, "noop-1", func(s *payment.Session) (bool, error) {
		s.Amount = 1 // changed the copy but reports no change: nothing may be written
		s.History = nil
		return false, nil
	})
	mustEqual(t, "Update's result after a no-op", got, before)
	mustEqual(t, "Get after a no-op", mustGet(t, st, "noop-1"), before)

	// Apply of an observation that says nothing new is a no-op too.
	mustUpdate(t, st, "noop-1", func(s *payment.Session) (bool, error) { return s.Apply(authorized, "cb", t0), nil })
	after := mustUpdate(t, st, "noop-1", func(s *payment.Session) (bool, error) { return s.Apply(authorized, "cb", t0), nil })
	if after.Revision != 2 || len(after.History) != 2 {
		t.Fatalf("repeated Apply: revision %d, %d events; want 2, 2", after.Revision, len(after.History))
	}
}

func testUpdateError(t *testing.T, st store.Store, _ *config) {
	mustCreate(t, st, Sample("err-1", "ref-err-1"), 0)
	before := mustGet(t, st, "err-1")
	boom := errors.New("boom")
	got, err := st.Update(t.Context(), "err-1", func(s *payment.Session) (bool, error) {
		s.State = payment.StateFailed
		s.ProviderReference = "ref-err-2"
		return true, boom
	})
	if !errors.Is(err, boom) || got != nil {
		t.Fatalf("Update = %v, %v; want nil, an error wrapping boom", got, err)
	}
	if want := "store: update session[err-1]: boom"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	mustEqual(t, "Get after a failed Update", mustGet(t, st, "err-1"), before)
	_, err = st.GetByProviderReference(t.Context(), "acme", "ref-err-2")
	wantErr(t, "reference of a failed Update", err, store.ErrNotFound)
}

func testUpdateReference(t *testing.T, st store.Store, _ *config) {
	ctx := t.Context()
	mustCreate(t, st, Sample("ref-a", ""), 0)
	mustCreate(t, st, Sample("ref-b", "held-by-b"), 0)
	setRef := func(ref string) func(*payment.Session) (bool, error) {
		return func(s *payment.Session) (bool, error) { s.ProviderReference = ref; return true, nil }
	}
	lookup := func(ref string) (string, error) {
		s, err := st.GetByProviderReference(ctx, "acme", ref)
		if err != nil {
			return "", err
		}
		return s.ID, nil
	}

	mustUpdate(t, st, "ref-a", setRef("r1"))
	if id, err := lookup("r1"); err != nil || id != "ref-a" {
		t.Fatalf("after setting r1: lookup = %q, %v", id, err)
	}
	mustUpdate(t, st, "ref-a", setRef("r2"))
	if _, err := lookup("r1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old reference r1 still resolves: %v", err)
	}
	if id, err := lookup("r2"); err != nil || id != "ref-a" {
		t.Fatalf("after moving to r2: lookup = %q, %v", id, err)
	}

	before := mustGet(t, st, "ref-a")
	_, err := st.Update(ctx, "ref-a", setRef("held-by-b"))
	wantErr(t, "Update to a reference another session holds", err, store.ErrExists)
	mustEqual(t, "session after a refused reference", mustGet(t, st, "ref-a"), before)
	if id, err := lookup("held-by-b"); err != nil || id != "ref-b" {
		t.Fatalf("refused Update moved the reference: %q, %v", id, err)
	}
	if id, err := lookup("r2"); err != nil || id != "ref-a" {
		t.Fatalf("refused Update dropped the old reference: %q, %v", id, err)
	}

	wantErr(t, "Create with a reference set by Update", st.Create(ctx, Sample("ref-c", "r2"), 0), store.ErrExists)
	mustCreate(t, st, Sample("ref-c", "r1"), 0) // freed by the move

	// Moving to another merchant moves the index too; clearing the reference drops it.
	mustUpdate(t, st, "ref-a", func(s *payment.Session) (bool, error) { s.Merchant = "globex"; return true, nil })
	if _, err := lookup("r2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("reference still resolves for the old merchant: %v", err)
	}
	if s, err := st.GetByProviderReference(ctx, "globex", "r2"); err != nil || s.ID != "ref-a" {
		t.Fatalf("reference for the new merchant: %v, %v", s, err)
	}
	mustUpdate(t, st, "ref-a", setRef(""))
	if _, err := st.GetByProviderReference(ctx, "globex", "r2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cleared reference still resolves: %v", err)
	}
	// An update that keeps the reference keeps the index.
	mustUpdate(t, st, "ref-b", func(s *payment.Session) (bool, error) { s.Reason = "x"; return true, nil })
	if id, err := lookup("held-by-b"); err != nil || id != "ref-b" {
		t.Fatalf("unrelated Update lost the reference: %q, %v", id, err)
	}
}

func testUpdateKeepsID(t *testing.T, st store.Store, _ *config) {
	mustCreate(t, st, Sample("id-1", ""), 0)
	_, err := st.Update(t.Context(), "id-1", func(s *payment.Session) (bool, error) { s.ID = "id-2"; return true, nil })
	if err == nil {
		t.Fatal("Update that changed the id succeeded")
	}
	if got := mustGet(t, st, "id-1"); got.Revision != 1 {
		t.Fatalf("refused Update wrote: revision %d", got.Revision)
	}
	if _, err := st.Get(t.Context(), "id-2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused Update created id-2: %v", err)
	}
}

// scribble changes every part of s that could share memory with a stored copy.
func scribble(s *payment.Session) {
	s.Amount = -1
	s.Customer.PhoneNumber = "00000000"
	s.Lines[0].Name = "scribbled"
	s.Lines = append(s.Lines, payment.Line{Name: "extra"})
	s.History[0].Cause = "scribbled"
	s.History = append(s.History, payment.Event{Cause: "extra"})
}

func testNoAliasing(t *testing.T, st store.Store, _ *config) {
	in := Sample("alias-1", "")
	want := utcCopy(in)
	want.Revision = 1
	mustCreate(t, st, in, 0)
	scribble(in)
	mustEqual(t, "after changing the session passed to Create", mustGet(t, st, "alias-1"), want)

	got := mustGet(t, st, "alias-1")
	scribble(got)
	mustEqual(t, "after changing a session returned by Get", mustGet(t, st, "alias-1"), want)

	var held *payment.Session
	res := mustUpdate(t, st, "alias-1", func(s *payment.Session) (bool, error) {
		held = s
		s.Reason = "updated"
		return true, nil
	})
	want = utcCopy(res)
	scribble(held)
	mustEqual(t, "Update's result after changing fn's copy", res, want)
	scribble(res)
	mustEqual(t, "after changing fn's copy and Update's result", mustGet(t, st, "alias-1"), want)

	res = mustUpdate(t, st, "alias-1", func(s *payment.Session) (bool, error) { return false, nil })
	scribble(res)
	mustEqual(t, "after changing a no-op Update's result", mustGet(t, st, "alias-1"), want)
}

func testTTL(t *testing.T, st store.Store, cfg *config) {
	ctx := t.Context()
	const ttl = time.Second
	mustCreate(t, st, Sample("ttl-a", "ttl-ref-a"), ttl)
	mustCreate(t, st, Sample("ttl-b", ""), ttl)
	mustCreate(t, st, Sample("ttl-keep", "ttl-ref-keep"), 0)
	// Updates keep the TTL, and a reference set by Update expires with its session.
	mustUpdate(t, st, "ttl-a", func(s *payment.Session) (bool, error) { return s.Apply(authorized, "cb", t0), nil })
	mustUpdate(t, st, "ttl-b", func(s *payment.Session) (bool, error) { s.ProviderReference = "ttl-ref-b"; return true, nil })
	if v, err := st.ClaimIdempotencyKey(ctx, "ttl", "k", "v1", ttl); err != nil || v != "" {
		t.Fatalf("ClaimIdempotencyKey = %q, %v", v, err)
	}
	claimed := time.Now()

	gone := func(id string) bool {
		_, err := st.Get(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get(%s): %v", id, err)
		}
		return err != nil
	}
	if cfg.clock != nil {
		cfg.clock.Advance(ttl - time.Millisecond)
		for _, id := range []string{"ttl-a", "ttl-b"} {
			if gone(id) {
				t.Fatalf("%s expired before its TTL", id)
			}
		}
		if v, _ := st.ClaimIdempotencyKey(ctx, "ttl", "k", "v2", time.Minute); v != "v1" {
			t.Fatalf("idempotency key before its TTL: %q, want v1", v)
		}
		cfg.clock.Advance(2 * time.Millisecond)
	} else {
		deadline := time.Now().Add(10 * time.Second)
		for !gone("ttl-a") || !gone("ttl-b") {
			if time.Now().After(deadline) {
				t.Fatal("sessions with a 1 s TTL still there after 10 s")
			}
			time.Sleep(25 * time.Millisecond)
		}
		// The idempotency key was claimed after the sessions were created, so it may outlive them by
		// the time between the two calls: wait out its own TTL too.
		time.Sleep(time.Until(claimed.Add(ttl + 20*time.Millisecond)))
	}
	for _, id := range []string{"ttl-a", "ttl-b"} {
		if !gone(id) {
			t.Fatalf("%s outlived its TTL", id)
		}
	}
	for _, ref := range []string{"ttl-ref-a", "ttl-ref-b"} {
		_, err := st.GetByProviderReference(ctx, "acme", ref)
		wantErr(t, "reference "+ref+" after its session expired", err, store.ErrNotFound)
	}
	_, err := st.Update(ctx, "ttl-a", func(*payment.Session) (bool, error) { return true, nil })
	wantErr(t, "Update of an expired session", err, store.ErrNotFound)
	if v, err := st.ClaimIdempotencyKey(ctx, "ttl", "k", "v2", time.Minute); err != nil || v != "" {
		t.Fatalf("ClaimIdempotencyKey after its TTL = %q, %v; want it free", v, err)
	}
	mustGet(t, st, "ttl-keep")
	// Expired ids and references are free again.
	mustCreate(t, st, Sample("ttl-a", "ttl-ref-a"), 0)
	mustCreate(t, st, Sample("ttl-c", "ttl-ref-b"), 0)
}

func testIdempotency(t *testing.T, st store.Store, _ *config) {
	ctx := t.Context()
	claim := func(scope, key, value, want string) {
		t.Helper()
		got, err := st.ClaimIdempotencyKey(ctx, scope, key, value, time.Minute)
		if err != nil || got != want {
			t.Fatalf("ClaimIdempotencyKey(%q, %q, %q) = %q, %v; want %q", scope, key, value, got, err, want)
		}
	}
	release := func(scope, key, value string) {
		t.Helper()
		if err := st.ReleaseIdempotencyKey(ctx, scope, key, value); err != nil {
			t.Fatalf("ReleaseIdempotencyKey(%q, %q, %q): %v", scope, key, value, err)
		}
	}
	claim("checkout:acme", "k1", "v1", "")
	claim("checkout:acme", "k1", "v2", "v1")
	claim("checkout:globex", "k1", "v3", "")
	claim("checkout:acme", "k2", "v4", "")
	// A separator in the scope cannot make two pairs collide.
	claim("a:b", "c", "x", "")
	claim("a", "b:c", "y", "")

	release("checkout:acme", "k1", "v2") // not the holder: no effect
	claim("checkout:acme", "k1", "v5", "v1")
	release("checkout:acme", "k1", "v1")
	claim("checkout:acme", "k1", "v6", "")
	release("checkout:acme", "never", "v") // absent: no error
	// Swap replaces only the value it expects.
	if ok, err := st.SwapIdempotencyKey(ctx, "swap", "k", "old", "new", time.Hour); err != nil || ok {
		t.Fatalf("SwapIdempotencyKey on an empty key = %v, %v; want false", ok, err)
	}
	if v, err := st.ClaimIdempotencyKey(ctx, "swap", "k", "old", time.Hour); err != nil || v != "" {
		t.Fatalf("claim: %q, %v", v, err)
	}
	if ok, err := st.SwapIdempotencyKey(ctx, "swap", "k", "other", "new", time.Hour); err != nil || ok {
		t.Fatalf("SwapIdempotencyKey with the wrong old value = %v, %v; want false", ok, err)
	}
	if ok, err := st.SwapIdempotencyKey(ctx, "swap", "k", "old", "new", time.Hour); err != nil || !ok {
		t.Fatalf("SwapIdempotencyKey = %v, %v; want true", ok, err)
	}
	if v, err := st.ClaimIdempotencyKey(ctx, "swap", "k", "again", time.Hour); err != nil || v != "new" {
		t.Fatalf("after the swap the key holds %q, %v; want new", v, err)
	}
}

func testPolls(t *testing.T, st store.Store, _ *config) {
	ctx := t.Context()
	schedule := func(id string, at time.Duration) {
		t.Helper()
		if err := st.SchedulePoll(ctx, id, t0.Add(at)); err != nil {
			t.Fatalf("SchedulePoll(%s): %v", id, err)
		}
	}
	claim := func(now time.Duration, limit int, lease time.Duration, want ...string) {
		t.Helper()
		got, err := st.ClaimDuePolls(ctx, t0.Add(now), limit, lease)
		if err != nil {
			t.Fatalf("ClaimDuePolls(t0+%s): %v", now, err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("ClaimDuePolls(t0+%s, %d, %s) = %q, want %q", now, limit, lease, got, want)
		}
	}
	schedule("a", 3*time.Second)
	schedule("b", time.Second)
	schedule("c", 2*time.Second)
	schedule("d", 10*time.Second)
	schedule("e", time.Hour)

	claim(5*time.Second, 2, 30*time.Second, "b", "c") // earliest first, limit
	claim(5*time.Second, 10, 30*time.Second, "a")
	claim(5*time.Second, 10, 30*time.Second) // leased
	claim(9*time.Second, 10, 30*time.Second)
	claim(10*time.Second, 10, 30*time.Second, "d") // due exactly now
	// Leases: a, b, c until t0+35s; d until t0+40s; e at t0+1h.
	if err := st.CancelPoll(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if err := st.CancelPoll(ctx, "never-scheduled"); err != nil {
		t.Fatalf("CancelPoll of an unknown id: %v", err)
	}
	schedule("a", 20*time.Second)                           // upsert, even inside a lease
	claim(34*time.Second, 10, 30*time.Second, "a")          // a until t0+64s
	claim(35*time.Second, 10, 30*time.Second, "b")          // c was cancelled; b until t0+65s
	claim(2*time.Hour, 10, time.Minute, "d", "a", "b", "e") // all until t0+2h1m
	schedule("y", 3*time.Hour)
	schedule("w", 3*time.Hour)
	schedule("x", 3*time.Hour)
	claim(3*time.Hour, 10, time.Minute, "a", "b", "d", "e", "w", "x", "y")  // ties in id order
	claim(4*time.Hour, 0, time.Minute)                                      // limit 0 claims nothing...
	claim(4*time.Hour, 100, time.Minute, "a", "b", "d", "e", "w", "x", "y") // ...so all are still due
}

// testNextCheckAt: Create and Update keep the poll schedule in step with Session.NextCheckAt in the same
// atomic write, and CancelPoll leaves a session that still asks for a check on the schedule.
func testNextCheckAt(t *testing.T, st store.Store, _ *config) {
	ctx := t.Context()
	claim := func(now time.Duration, want ...string) {
		t.Helper()
		got, err := st.ClaimDuePolls(ctx, t0.Add(now), 10, time.Hour)
		if err != nil {
			t.Fatalf("ClaimDuePolls(t0+%s): %v", now, err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("ClaimDuePolls(t0+%s) = %q, want %q", now, got, want)
		}
	}
	set := func(id string, at time.Duration) {
		t.Helper()
		mustUpdate(t, st, id, func(s *payment.Session) (bool, error) {
			s.NextCheckAt = time.Time{}
			if at > 0 {
				s.NextCheckAt = t0.Add(at)
			}
			return true, nil
		})
	}
	touch := func(id string) {
		t.Helper()
		mustUpdate(t, st, id, func(s *payment.Session) (bool, error) { s.Description += "."; return true, nil })
	}
	cancel := func(id string) {
		t.Helper()
		if err := st.CancelPoll(ctx, id); err != nil {
			t.Fatalf("CancelPoll(%s): %v", id, err)
		}
	}
	due := Sample("due", "ref-due")
	due.NextCheckAt = t0.Add(5 * time.Second)
	mustCreate(t, st, due, 24*time.Hour)
	mustCreate(t, st, Sample("idle", "ref-idle"), 24*time.Hour)
	claim(4 * time.Second)
	claim(5*time.Second, "due") // leased for an hour

	set("due", 20*time.Second) // moving NextCheckAt reschedules, even inside a lease
	set("idle", 10*time.Second)
	claim(10*time.Second, "idle")
	claim(20*time.Second, "due")
	touch("due") // a write that leaves NextCheckAt alone leaves the schedule (and its lease) alone
	claim(20 * time.Second)

	cancel("due")                     // kept: NextCheckAt is set
	claim(2*time.Hour, "idle", "due") // earliest due first
	set("idle", 0)                    // clearing NextCheckAt takes the session off the schedule
	claim(4*time.Hour, "due")
	touch("due")
	cancel("due")
	claim(6*time.Hour, "due")
	set("due", 0)
	claim(8 * time.Hour)
	if got := mustGet(t, st, "due"); !got.NextCheckAt.IsZero() {
		t.Fatalf("NextCheckAt = %v after clearing it", got.NextCheckAt)
	}
	cancel("due") // a session without NextCheckAt is removed; so is an id without a session
	cancel("no-such-session")
}

// hammer runs n goroutines released at once, each calling f(i), and waits for them.
func hammer(n int, f func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

// hammerApply has n goroutines apply the same authorization to one session through stores[i%len].
func hammerApply(t *testing.T, id string, n int, stores ...store.Store) {
	mustCreate(t, stores[0], Sample(id, ""), time.Hour)
	at := t0.Add(time.Minute)
	hammer(n, func(i int) {
		got, err := stores[i%len(stores)].Update(t.Context(), id, func(s *payment.Session) (bool, error) {
			return s.Apply(authorized, "callback", at), nil
		})
		if err != nil {
			t.Errorf("goroutine %d: Update: %v", i, err)
			return
		}
		if got.Revision != 2 || got.State != payment.StateAuthorized || len(got.History) != 2 {
			t.Errorf("goroutine %d: Update returned revision %d, state %s, %d events", i, got.Revision, got.State,
				len(got.History))
		}
	})
	got := mustGet(t, stores[0], id)
	if got.Revision != 2 || len(got.History) != 2 || got.AuthorizedAmount != 49900 {
		t.Fatalf("after %d identical Applies: revision %d, %d events, authorized %d; want 2, 2, 49900",
			n, got.Revision, len(got.History), got.AuthorizedAmount)
	}
}

// hammerAppends has n goroutines each append their own event to one session through stores[i%len].
func hammerAppends(t *testing.T, id string, n int, stores ...store.Store) {
	mustCreate(t, stores[0], Sample(id, ""), time.Hour)
	hammer(n, func(i int) {
		cause := fmt.Sprintf("writer-%02d", i)
		got, err := stores[i%len(stores)].Update(t.Context(), id, func(s *payment.Session) (bool, error) {
			s.History = append(s.History, payment.Event{At: t0, From: s.State, To: s.State, Cause: cause})
			return true, nil
		})
		if err != nil {
			t.Errorf("goroutine %d: Update: %v", i, err)
			return
		}
		if !slices.ContainsFunc(got.History, func(e payment.Event) bool { return e.Cause == cause }) {
			t.Errorf("goroutine %d: its own event is missing from Update's result", i)
		}
	})
	got := mustGet(t, stores[0], id)
	if got.Revision != int64(n)+1 || len(got.History) != n+1 {
		t.Fatalf("after %d appends: revision %d, %d events; want %d, %d", n, got.Revision, len(got.History), n+1, n+1)
	}
	seen := map[string]int{}
	for _, e := range got.History[1:] {
		seen[e.Cause]++
	}
	for i := range n {
		if c := seen[fmt.Sprintf("writer-%02d", i)]; c != 1 {
			t.Errorf("writer-%02d's event landed %d times", i, c)
		}
	}
}

func testHammerApply(t *testing.T, st store.Store, _ *config) { hammerApply(t, "hammer-apply", 50, st) }

func testHammerAppends(t *testing.T, st store.Store, _ *config) {
	hammerAppends(t, "hammer-append", 20, st)
}

func testConcurrentCreate(t *testing.T, st store.Store, _ *config) {
	count := func(what string, n int, mk func(i int) *payment.Session) {
		var mu sync.Mutex
		won := 0
		hammer(n, func(i int) {
			err := st.Create(t.Context(), mk(i), 0)
			switch {
			case err == nil:
				mu.Lock()
				won++
				mu.Unlock()
			case !errors.Is(err, store.ErrExists):
				t.Errorf("%s: goroutine %d: %v", what, i, err)
			}
		})
		if won != 1 {
			t.Errorf("%s: %d of %d Creates succeeded, want 1", what, won, n)
		}
	}
	count("same id", 10, func(i int) *payment.Session { return Sample("cc-1", fmt.Sprintf("cc-ref-%d", i)) })
	count("same reference", 10, func(i int) *payment.Session { return Sample(fmt.Sprintf("cc-%d", i+10), "cc-ref") })
}

func testPing(t *testing.T, st store.Store, _ *config) {
	if err := st.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testSharedSessions(t *testing.T, a, b store.Store) {
	in := Sample("sh-1", "sh-ref-1")
	mustCreate(t, a, in, time.Hour)
	want := utcCopy(in)
	mustEqual(t, "Get through the other handle", mustGet(t, b, "sh-1"), want)
	wantErr(t, "Create of the same id through the other handle", b.Create(t.Context(), Sample("sh-1", ""), 0),
		store.ErrExists)
	got := mustUpdate(t, b, "sh-1", func(s *payment.Session) (bool, error) { return s.Apply(authorized, "cb", t0), nil })
	mustEqual(t, "Get after an Update through the other handle", mustGet(t, a, "sh-1"), got)
	byRef, err := a.GetByProviderReference(t.Context(), "acme", "sh-ref-1")
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "GetByProviderReference", byRef, got)
}

func testSharedHammer(t *testing.T, a, b store.Store) {
	hammerApply(t, "sh-apply", 50, a, b)
	hammerAppends(t, "sh-append", 20, a, b)
}

func testSharedIdempotency(t *testing.T, a, b store.Store) {
	stores := []store.Store{a, b}
	const n = 20
	got := make([]string, n)
	hammer(n, func(i int) {
		v, err := stores[i%2].ClaimIdempotencyKey(t.Context(), "shared", "k", fmt.Sprintf("v%02d", i), time.Minute)
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
		got[i] = v
	})
	winner := -1
	for i, v := range got {
		if v == "" {
			if winner >= 0 {
				t.Fatalf("goroutines %d and %d both claimed the key", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no goroutine claimed the key")
	}
	for i, v := range got {
		if i != winner && v != fmt.Sprintf("v%02d", winner) {
			t.Errorf("goroutine %d saw %q, want the winner's v%02d", i, v, winner)
		}
	}
}

func testSharedPolls(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	const ids = 60
	for i := range ids {
		if err := a.SchedulePoll(ctx, fmt.Sprintf("p%02d", i), t0.Add(time.Duration(i)*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	now := t0.Add(time.Minute)
	claimAll := func(now time.Time) map[string]int {
		var mu sync.Mutex
		seen := map[string]int{}
		stores := []store.Store{a, b}
		hammer(6, func(w int) {
			// Bounded: a store whose claims do not lease would otherwise hand out the same ids forever.
			for range ids {
				got, err := stores[w%2].ClaimDuePolls(ctx, now, 4, time.Minute)
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, id := range got {
					seen[id]++
				}
				mu.Unlock()
			}
			t.Errorf("worker %d: still claiming after %d calls", w, ids)
		})
		return seen
	}
	check := func(what string, seen map[string]int) {
		t.Helper()
		if len(seen) != ids {
			t.Errorf("%s: %d distinct ids claimed, want %d", what, len(seen), ids)
		}
		for id, c := range seen {
			if c != 1 {
				t.Errorf("%s: %s claimed %d times within one lease", what, id, c)
			}
		}
	}
	check("first round", claimAll(now))
	for _, s := range []store.Store{a, b} {
		if got, err := s.ClaimDuePolls(ctx, now.Add(time.Minute-time.Microsecond), 100, time.Minute); err != nil ||
			len(got) != 0 {
			t.Fatalf("claim within the lease = %q, %v; want nothing", got, err)
		}
	}
	check("after the lease", claimAll(now.Add(time.Minute)))
}

// testUserIndex checks the index consent removal uses: every session indexed for a user, per merchant,
// with user ids that contain the characters Vipps's do ("/", "=", "+", ":"), until ForgetUser.
func testUserIndex(t *testing.T, st store.Store, _ *config) {
	ui, ok := st.(store.UserIndex)
	if !ok {
		t.Fatalf("%T does not implement store.UserIndex", st)
	}
	ctx := t.Context()
	user := "uiJskNQ6/qNN1iw+N891:uob=="
	for _, id := range []string{"u-2", "u-1", "u-2"} {
		if err := ui.IndexUser(ctx, "m1", user, id, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := ui.IndexUser(ctx, "m2", user, "other-merchant", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := ui.IndexUser(ctx, "m1", "", "x", time.Hour); err == nil {
		t.Error("IndexUser accepted an empty user id")
	}
	ids, err := ui.SessionsOfUser(ctx, "m1", user)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []string{"u-1", "u-2"}) {
		t.Fatalf("SessionsOfUser = %q, want [u-1 u-2]", ids)
	}
	if ids, err := ui.SessionsOfUser(ctx, "m1", "nobody"); err != nil || len(ids) != 0 {
		t.Fatalf("SessionsOfUser(nobody) = %q, %v", ids, err)
	}
	if err := ui.ForgetUser(ctx, "m1", user); err != nil {
		t.Fatal(err)
	}
	if ids, err := ui.SessionsOfUser(ctx, "m1", user); err != nil || len(ids) != 0 {
		t.Fatalf("after ForgetUser: %q, %v", ids, err)
	}
	if ids, err := ui.SessionsOfUser(ctx, "m2", user); err != nil || !slices.Equal(ids, []string{"other-merchant"}) {
		t.Fatalf("other merchant's index: %q, %v", ids, err)
	}
}

// testSettlements checks what the settlement follower shares between instances: a lease only one holder
// gets, a feed cursor that moves only from the value the caller read, ledger entries stored once per id
// however often a page is recorded, and the expectations of captured sessions not yet on a ledger.
func testSettlements(t *testing.T, st store.Store, cfg *config) {
	ss, ok := st.(store.Settlements)
	if !ok {
		t.Fatalf("%T does not implement store.Settlements", st)
	}
	ctx := t.Context()

	// Lease: one holder at a time; the holder renews; release frees it for the other.
	for _, step := range []struct {
		holder string
		want   bool
	}{{"a", true}, {"b", false}, {"a", true}, {"b", false}} {
		got, err := ss.AcquireLease(ctx, "follow:m1", step.holder, time.Minute)
		if err != nil || got != step.want {
			t.Fatalf("AcquireLease(%s) = %v, %v; want %v", step.holder, got, err, step.want)
		}
	}
	if err := ss.ReleaseLease(ctx, "follow:m1", "b"); err != nil {
		t.Fatal(err)
	}
	if got, _ := ss.AcquireLease(ctx, "follow:m1", "b", time.Minute); got {
		t.Fatal("a release by a non-holder freed the lease")
	}
	if err := ss.ReleaseLease(ctx, "follow:m1", "a"); err != nil {
		t.Fatal(err)
	}
	if got, err := ss.AcquireLease(ctx, "follow:m1", "b", time.Minute); err != nil || !got {
		t.Fatalf("after release: AcquireLease(b) = %v, %v", got, err)
	}
	if _, err := ss.AcquireLease(ctx, "follow:m1", "b", 0); err == nil {
		t.Error("AcquireLease accepted a zero ttl")
	}

	// Cursor and entries.
	if c, err := ss.FeedCursor(ctx, "m1/funds"); err != nil || c != "" {
		t.Fatalf("FeedCursor of a new feed = %q, %v", c, err)
	}
	page := []store.LedgerRecord{
		{ID: "e2", Date: "2026-12-01", Data: []byte(`{"n":2}`)},
		{ID: "e1", Date: "2026-12-01", Data: []byte(`{"n":1}`)},
		{ID: "e3", Date: "2026-12-02", Data: []byte(`{"n":3}`)},
	}
	if ok, err := ss.RecordLedger(ctx, "L:1", "m1/funds", "", "c1", page); err != nil || !ok {
		t.Fatalf("RecordLedger = %v, %v", ok, err)
	}
	// A second follower that read the same page from the same cursor writes nothing.
	dup := []store.LedgerRecord{{ID: "e1", Date: "2026-12-01", Data: []byte(`{"n":"changed"}`)},
		{ID: "e9", Date: "2026-12-01", Data: []byte(`{}`)}}
	if ok, err := ss.RecordLedger(ctx, "L:1", "m1/funds", "", "c1", dup); err != nil || ok {
		t.Fatalf("RecordLedger from a stale cursor = %v, %v; want false", ok, err)
	}
	// A page read again (after a restart) keeps the first record of each id.
	if ok, err := ss.RecordLedger(ctx, "L:1", "m1/funds", "c1", "c2", dup[:1]); err != nil || !ok {
		t.Fatalf("RecordLedger again = %v, %v", ok, err)
	}
	if c, err := ss.FeedCursor(ctx, "m1/funds"); err != nil || c != "c2" {
		t.Fatalf("FeedCursor = %q, %v; want c2", c, err)
	}
	recs, err := ss.LedgerEntries(ctx, "L:1", "2026-12-01")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.ID+"="+string(r.Data)+"@"+r.Date)
	}
	if want := []string{`e1={"n":1}@2026-12-01`, `e2={"n":2}@2026-12-01`}; !slices.Equal(got, want) {
		t.Fatalf("LedgerEntries = %q, want %q", got, want)
	}
	if dates, err := ss.LedgerDates(ctx, "L:1"); err != nil || !slices.Equal(dates, []string{"2026-12-01", "2026-12-02"}) {
		t.Fatalf("LedgerDates = %q, %v", dates, err)
	}
	if recs, err := ss.LedgerEntries(ctx, "L:2", "2026-12-01"); err != nil || len(recs) != 0 {
		t.Fatalf("another ledger's entries = %v, %v", recs, err)
	}
	if _, err := ss.RecordLedger(ctx, "L:1", "m1/funds", "c2", "c3", []store.LedgerRecord{{ID: "x"}}); err == nil {
		t.Error("RecordLedger accepted a record without a date")
	}

	testAwaitingSettlement(t, st, ss, cfg)

}

// testAwaitingSettlement: the index of captured sessions awaiting the ledger is written by the session
// writes themselves, so a capture is expected by the write that records it and nothing else has to run.
func testAwaitingSettlement(t *testing.T, st store.Store, ss store.Settlements, cfg *config) {
	ctx := t.Context()
	if !ss.IndexesAwaitingSettlement() {
		t.Fatalf("%T does not keep the index of sessions awaiting settlement; the suite needs it on", st)
	}
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	// capture raises the captured amount by amount at hour h, as a capture's write does.
	capture := func(amount int64, h int) func(*payment.Session) (bool, error) {
		return func(s *payment.Session) (bool, error) {
			s.State, s.AuthorizedAmount, s.CapturedAmount = payment.StateCaptured, 49900, s.CapturedAmount+amount
			s.UpdatedAt = at(h)
			return true, nil
		}
	}
	ledger := func(captured int64) func(*payment.Session) (bool, error) {
		return func(s *payment.Session) (bool, error) {
			s.Settlement = &payment.Settlement{Captured: captured, Net: captured}
			return true, nil
		}
	}
	merchant := func(m string) func(*payment.Session) (bool, error) {
		return func(s *payment.Session) (bool, error) { s.Merchant = m; return true, nil }
	}
	capturedSample := func(id string, h int) *payment.Session {
		s := Sample(id, id)
		s.State, s.AuthorizedAmount, s.CapturedAmount, s.UpdatedAt = payment.StateCaptured, 49900, 49900, at(h)
		return s
	}
	mustCreate(t, st, Sample("aw-1", "aw-1"), 0)
	mustCreate(t, st, capturedSample("aw-2", 3), 0) // created captured: indexed by the create
	mustCreate(t, st, Sample("aw-3", "aw-3"), 0)
	steps := []struct {
		what  string
		id    string
		fn    func(*payment.Session) (bool, error)
		since map[string]time.Time // merchant -> time to ask with
		want  map[string][]string  // merchant -> ids
	}{
		{"a pending session does not await the ledger", "aw-1", func(*payment.Session) (bool, error) { return false, nil },
			map[string]time.Time{"acme": at(100)}, map[string][]string{"acme": {"aw-2"}}},
		{"a capture enters the index at its time", "aw-1", capture(10000, 1),
			map[string]time.Time{"acme": at(1)}, map[string][]string{"acme": {"aw-1"}}},
		{"not before its time", "aw-1", func(*payment.Session) (bool, error) { return false, nil },
			map[string]time.Time{"acme": at(1).Add(-time.Microsecond)}, map[string][]string{"acme": nil}},
		{"a further capture keeps the first time", "aw-1", capture(10000, 5),
			map[string]time.Time{"acme": at(1)}, map[string][]string{"acme": {"aw-1"}}},
		{"part of it on the ledger: still awaited", "aw-1", ledger(10000),
			map[string]time.Time{"acme": at(3)}, map[string][]string{"acme": {"aw-1", "aw-2"}}},
		{"all of it on the ledger: out", "aw-1", ledger(20000),
			map[string]time.Time{"acme": at(100)}, map[string][]string{"acme": {"aw-2"}}},
		{"a capture after the ledger caught up: in again, at its own time", "aw-1", capture(5000, 7),
			map[string]time.Time{"acme": at(6)}, map[string][]string{"acme": {"aw-2"}}},
		{"... listed from then", "aw-1", func(*payment.Session) (bool, error) { return false, nil },
			map[string]time.Time{"acme": at(7)}, map[string][]string{"acme": {"aw-1", "aw-2"}}},
		{"another merchant's capture is listed under it", "aw-3", func(s *payment.Session) (bool, error) {
			s.Merchant = "shop:b%" // escaped in keys
			return capture(700, 2)(s)
		}, map[string]time.Time{"acme": at(2), "shop:b%": at(2), "shop": at(2)},
			map[string][]string{"acme": nil, "shop:b%": {"aw-3"}, "shop": nil}},
		{"a session moved to another merchant moves in the index", "aw-3", merchant("acme"),
			map[string]time.Time{"acme": at(100), "shop:b%": at(100)},
			map[string][]string{"acme": {"aw-1", "aw-2", "aw-3"}, "shop:b%": nil}},
	}
	for _, step := range steps {
		mustUpdate(t, st, step.id, step.fn)
		for m, since := range step.since {
			ids, err := ss.AwaitingSettlement(ctx, m, since)
			if err != nil {
				t.Fatalf("%s: AwaitingSettlement(%s): %v", step.what, m, err)
			}
			if !slices.Equal(ids, step.want[m]) {
				t.Fatalf("%s: AwaitingSettlement(%s, %s) = %q, want %q", step.what, m, since, ids, step.want[m])
			}
		}
	}
	// Dropping an id whose session exists changes nothing; once the session has expired it goes.
	if err := ss.DropAwaitingSettlement(ctx, "acme", "aw-2"); err != nil {
		t.Fatal(err)
	}
	const ttl = time.Second
	mustCreate(t, st, capturedSample("aw-ttl", 3), ttl)
	if ids, err := ss.AwaitingSettlement(ctx, "acme", at(100)); err != nil || !slices.Equal(ids, []string{"aw-1", "aw-2", "aw-3", "aw-ttl"}) {
		t.Fatalf("AwaitingSettlement after a drop of a live session = %q, %v", ids, err)
	}
	if cfg.clock != nil {
		cfg.clock.Advance(ttl + time.Millisecond)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := st.Get(ctx, "aw-ttl")
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("a session with a 1 s TTL: Get = %v after 10 s", err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	if err := ss.DropAwaitingSettlement(ctx, "acme", "aw-ttl"); err != nil {
		t.Fatal(err)
	}
	if ids, err := ss.AwaitingSettlement(ctx, "acme", at(100)); err != nil || !slices.Equal(ids, []string{"aw-1", "aw-2", "aw-3"}) {
		t.Fatalf("AwaitingSettlement after the expired session was dropped = %q, %v", ids, err)
	}
}
