// Package store owns where checkout sessions live between requests: the sessions themselves, the index
// from a provider's payment reference to its session, idempotency keys, the reconciler's poll
// schedule, and the settlement follower's shared state (Settlements: lease, feed cursors, ledger entries,
// captures awaiting the ledger). It has two implementations behind one interface: Memory, the in-process default used when no
// Redis is configured, and Redis, which lets several kasse instances share one state.
//
// The store knows nothing about payment rules: it persists payment.Session values and applies the caller's
// update function atomically. It must not import the checkout service, the plugin runtime or the HTTP API.
//
// Both implementations pass the same conformance suite, host/store/storetest.
package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kassehq/kasse/host/payment"
)

// ErrNotFound is returned (wrapped) when a session, or a provider reference, does not exist or has expired.
var ErrNotFound = errors.New("session not found")

// ErrExists is returned (wrapped) by Create when the session ID, or the (Merchant, ProviderReference) pair,
// is already taken, and by Update when it would give a session a provider reference another session holds.
var ErrExists = errors.New("session already exists")

// ErrConflict is returned (wrapped) by an Update that lost the race against concurrent writers of the same
// session more times than the store allows. Nothing was written by the failed call; retrying later is safe.
var ErrConflict = errors.New("too many concurrent modifications")

// Store persists checkout sessions and the small pieces of shared state around them. All methods are safe
// for concurrent use. Sessions going in and out are copies: mutating a session after passing it in, or
// after getting it back, never changes what is stored.
//
// Time values come back in UTC, without a monotonic clock reading.
type Store interface {
	// Create stores a new session with Revision set to 1 (s.Revision is set to 1 on success too). It
	// returns ErrExists if the ID is taken, or if ProviderReference is not empty and another session of
	// the same Merchant holds it. With ttl > 0 the session and its reference index disappear after ttl;
	// with ttl <= 0 they are kept until deleted by hand. A session with a non-zero NextCheckAt is put on
	// the poll schedule, due then, in the same atomic step.
	Create(ctx context.Context, s *payment.Session, ttl time.Duration) error

	// Get returns the session with the given ID, or ErrNotFound.
	Get(ctx context.Context, id string) (*payment.Session, error)

	// GetByProviderReference returns the session of merchant whose ProviderReference is ref, or
	// ErrNotFound.
	GetByProviderReference(ctx context.Context, merchant, ref string) (*payment.Session, error)

	// Update atomically applies fn to the current session and returns the session as stored after the
	// call.
	//
	// fn gets a private copy. If it returns (false, nil) nothing is written. If it returns an error,
	// nothing is written and the error is returned, wrapped. Otherwise the copy is stored with Revision
	// incremented, keeping the session's remaining TTL. fn may change ProviderReference (or Merchant): the
	// reference index follows, and ErrExists is returned, with nothing written, if another session holds
	// the new reference. fn must not change ID.
	//
	// The poll schedule follows NextCheckAt in the same atomic step: when fn changes it, the session is
	// scheduled at the new time, or taken off the schedule when it became zero. So "this session needs
	// the reconciler" is written together with the change that makes it so, and a crash cannot lose it.
	//
	// If the session is modified concurrently, Update reads it again and calls fn again, so fn must be a
	// pure function of the session it is given, and it must not call the Store. Two concurrent Updates that
	// apply the same idempotent change result in exactly one write of that change.
	//
	// Errors: ErrNotFound if the session does not exist, ErrExists as above, ErrConflict if concurrent
	// writers kept winning (Redis only).
	Update(ctx context.Context, id string, fn func(s *payment.Session) (changed bool, err error)) (*payment.Session, error)

	// ClaimIdempotencyKey stores value under (scope, key) for ttl if nothing is stored there and returns
	// "". If a value is stored there it returns that value and changes nothing. value must not be empty
	// and ttl must be positive.
	ClaimIdempotencyKey(ctx context.Context, scope, key, value string, ttl time.Duration) (existing string, err error)

	// ReleaseIdempotencyKey deletes (scope, key) if it still holds value, so that a claim whose operation
	// failed before doing anything can be retried. A key that holds another value, or none, is left alone.
	ReleaseIdempotencyKey(ctx context.Context, scope, key, value string) error

	// SwapIdempotencyKey stores value under (scope, key) for ttl if the key still holds old, e.g. to
	// replace "in progress" with the request's recorded answer. It reports whether it swapped.
	SwapIdempotencyKey(ctx context.Context, scope, key, old, value string, ttl time.Duration) (bool, error)

	// IndexReference points the shop's order reference (merchant, reference) at session id, replacing
	// any session it pointed at before: the newest checkout for a shop order wins. ttl > 0.
	IndexReference(ctx context.Context, merchant, reference, id string, ttl time.Duration) error
	// GetByReference returns the session the shop's order reference points at; ErrNotFound (wrapped)
	// if none does.
	GetByReference(ctx context.Context, merchant, reference string) (*payment.Session, error)

	// SchedulePoll makes the session id due for a reconciler poll at at, replacing any earlier schedule.
	SchedulePoll(ctx context.Context, id string, at time.Time) error

	// CancelPoll removes the session id from the poll schedule, unless the stored session has a
	// non-zero NextCheckAt (a concurrent write asked for a check; the id then stays scheduled). An id
	// without a session is removed. Cancelling an id that is not scheduled is not an error.
	CancelPoll(ctx context.Context, id string) error

	// ClaimDuePolls atomically takes up to limit ids due at or before now, earliest due first (ties in id
	// order), and moves each one's due time to now+lease. Across every client of one store (many kasse
	// instances sharing one Redis) each due id goes to exactly one caller per lease. A caller that handles
	// an id reschedules or cancels it; one that dies loses the lease, and the id is due again at now+lease.
	// limit <= 0 claims nothing; lease must be positive.
	ClaimDuePolls(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]string, error)

	// Ping reports whether the store can serve requests.
	Ping(ctx context.Context) error

	// Close releases the store's resources. It is safe to call more than once.
	Close() error
}

// validateNew checks a session handed to Create.
func validateNew(s *payment.Session) error {
	if s == nil {
		return errors.New("store: create session: nil session")
	}
	if s.ID == "" {
		return errors.New("store: create session: empty id")
	}
	return nil
}

// checkClaim checks the arguments of ClaimIdempotencyKey.
func checkClaim(scope, key, value string, ttl time.Duration) error {
	if value == "" {
		return fmt.Errorf("store: claim idempotency key[%s/%s]: empty value", scope, key)
	}
	if ttl <= 0 {
		return fmt.Errorf("store: claim idempotency key[%s/%s]: ttl %s is not positive", scope, key, ttl)
	}
	return nil
}

// checkLease checks the lease of ClaimDuePolls.
func checkLease(lease time.Duration) error {
	if lease <= 0 {
		return fmt.Errorf("store: claim due polls: lease %s is not positive", lease)
	}
	return nil
}

// SnapshotUpdater is implemented by stores for which reading a session costs a round trip (Redis). Its
// UpdateFrom is Store.Update for the session snap, which the caller read from the same store (Get,
// GetByProviderReference, or the result of an Update); the first attempt gives fn a copy of snap instead
// of reading the session, and writes only if the stored session is still exactly snap, otherwise it
// reads and tries again as Update does. If fn changes nothing on snap, UpdateFrom returns snap's copy
// without reading: the answer is what Update would have given at the time snap was read. Everything else
// is as Update says.
type SnapshotUpdater interface {
	UpdateFrom(ctx context.Context, snap *payment.Session, fn func(s *payment.Session) (changed bool, err error)) (*payment.Session, error)
}

// Claim is an idempotency key claimed together with a session's creation (see IndexingCreator): Scope, Key,
// Value and TTL as ClaimIdempotencyKey takes them.
type Claim struct {
	Scope, Key, Value string
	TTL               time.Duration
	// Pending, if positive, is the claim's TTL until the session it names exists, where the claim is a
	// write of its own: a claimer that dies before creating the session then holds the key for Pending,
	// not for TTL (a retry would otherwise wait TTL for a session that never comes). Zero: TTL.
	Pending time.Duration
}

// IndexingCreator is a Store that can claim an idempotency key, create a session and point its shop order
// reference at it together. Made one by one (ClaimIdempotencyKey, Create, IndexReference) they cost a Redis
// deployment three round trips for every new checkout; a standalone Redis does all three in the create
// script. Memory and Redis implement it.
type IndexingCreator interface {
	// CreateIndexed claims claim (if not nil) as ClaimIdempotencyKey does: if the key already holds a value
	// it creates nothing and returns that value. Otherwise it is Create and then, when s.Reference is set,
	// IndexReference(s.Merchant, s.Reference, s.ID, ttl) (with ttl <= 0 the reference does not expire,
	// like the session). Where everything goes in one write, nothing happens without the rest, and the
	// claim has claim.TTL from the start. Where it cannot (on a Redis Cluster the keys live in different
	// slots), the claim is made with claim.Pending as its TTL and given claim.TTL once the session exists;
	// a create that fails frees the claim unless the store is unavailable (the create may have landed,
	// and the claim then stays for claim.Pending), a claim that cannot be given its TTL fails the call
	// (ErrUnavailable if it had lapsed: the session exists, pending, and must not be acted on), and a
	// session that was created but could not be indexed gives an *IndexError: the session exists, only
	// lookups by the shop's reference do not find it.
	CreateIndexed(ctx context.Context, s *payment.Session, ttl time.Duration, claim *Claim) (existing string, err error)
}

// IndexError is CreateIndexed's error when the session was created but its shop reference could not be
// pointed at it.
type IndexError struct {
	Err error
}

func (e *IndexError) Error() string { return e.Err.Error() }

// Unwrap returns the indexing error.
func (e *IndexError) Unwrap() error { return e.Err }

// CreateIndexed is s.CreateIndexed(ctx, sess, ttl, claim) if s is an IndexingCreator, else the same made of
// s's ClaimIdempotencyKey, Create and IndexReference one after another.
func CreateIndexed(ctx context.Context, s Store, sess *payment.Session, ttl time.Duration, claim *Claim) (string, error) {
	if ic, ok := s.(IndexingCreator); ok {
		return ic.CreateIndexed(ctx, sess, ttl, claim)
	}
	return createInSteps(ctx, s, sess, ttl, claim, func(ctx context.Context) error { return s.Create(ctx, sess, ttl) })
}

// createInSteps is CreateIndexed made of three writes: claim, create (by create) and index.
func createInSteps(ctx context.Context, s Store, sess *payment.Session, ttl time.Duration, claim *Claim, create func(context.Context) error) (string, error) {
	if claim != nil {
		ttl := claim.TTL
		if claim.Pending > 0 {
			ttl = claim.Pending
		}
		existing, err := s.ClaimIdempotencyKey(ctx, claim.Scope, claim.Key, claim.Value, ttl)
		if err != nil {
			// The claim may have reached the store; nothing else is written yet, so it is freed: left
			// there, it would name a session that never existed and every retry would wait on it.
			_ = s.ReleaseIdempotencyKey(context.WithoutCancel(ctx), claim.Scope, claim.Key, claim.Value)
			return "", err
		}
		if existing != "" {
			return existing, nil
		}
	}
	if err := create(ctx); err != nil {
		if claim != nil && !errors.Is(err, ErrUnavailable) {
			// Nothing was stored, so a retry with the same key may go ahead. (A create the store may have
			// taken keeps its claim: the session it names may exist.)
			_ = s.ReleaseIdempotencyKey(context.WithoutCancel(ctx), claim.Scope, claim.Key, claim.Value)
		}
		return "", err
	}
	var indexErr error
	if sess.Reference != "" {
		if ttl <= 0 {
			ttl = 100 * 365 * 24 * time.Hour // IndexReference needs a TTL; the session has none
		}
		if err := s.IndexReference(ctx, sess.Merchant, sess.Reference, sess.ID, ttl); err != nil {
			indexErr = &IndexError{Err: err}
		}
	}
	if claim != nil && claim.Pending > 0 {
		// The session exists: the key now names it for as long as a retry may come. After the index, so
		// that a claimer dying in between leaves a session its order's next delivery can find.
		ok, err := s.SwapIdempotencyKey(ctx, claim.Scope, claim.Key, claim.Value, claim.Value, claim.TTL)
		if err == nil && !ok {
			err = fmt.Errorf("%w: the claim lapsed before its session was created", ErrUnavailable)
		}
		if err != nil {
			return "", fmt.Errorf("store: create session[%s]: keep idempotency key[%s/%s]: %w", sess.ID, claim.Scope, claim.Key, err)
		}
	}
	return "", indexErr
}

// UpdateFrom is s.UpdateFrom(ctx, snap, fn) if s is a SnapshotUpdater and snap is not nil, else
// s.Update(ctx, id, fn).
func UpdateFrom(ctx context.Context, s Store, id string, snap *payment.Session, fn func(s *payment.Session) (changed bool, err error)) (*payment.Session, error) {
	if su, ok := s.(SnapshotUpdater); ok && snap != nil && snap.ID == id {
		return su.UpdateFrom(ctx, snap, fn)
	}
	return s.Update(ctx, id, fn)
}

// clone returns a deep copy of s with every time value in UTC and without a monotonic clock reading,
// the same shape a session has after a JSON round trip through Redis. TestCloneCoversReferenceFields
// fails when payment.Session gains a field that shares memory and clone does not copy it.
func clone(s *payment.Session) *payment.Session {
	c := *s
	if s.Customer != nil {
		cu := *s.Customer
		c.Customer = &cu
	}
	c.Lines = slices.Clone(s.Lines)
	c.History = slices.Clone(s.History)
	c.Operations = slices.Clone(s.Operations)
	c.Outbox = slices.Clone(s.Outbox)
	c.Applied = slices.Clone(s.Applied)
	for i := range c.Outbox {
		c.Outbox[i].Settlement = c.Outbox[i].Settlement.Clone()
	}
	c.Settlement = s.Settlement.Clone()
	normalizeTimes(&c)
	return &c
}

// normalizeTimes puts every time value of s in UTC, which also drops monotonic clock readings.
func normalizeTimes(s *payment.Session) {
	s.CreatedAt = s.CreatedAt.UTC()
	s.UpdatedAt = s.UpdatedAt.UTC()
	s.ExpiresAt = s.ExpiresAt.UTC()
	if !s.NextCheckAt.IsZero() {
		s.NextCheckAt = s.NextCheckAt.UTC().Truncate(time.Microsecond)
	}
	for i := range s.Operations {
		s.Operations[i].At = s.Operations[i].At.UTC()
		if !s.Operations[i].SettledAt.IsZero() {
			s.Operations[i].SettledAt = s.Operations[i].SettledAt.UTC()
		}
	}
	for i := range s.Outbox {
		s.Outbox[i].At = s.Outbox[i].At.UTC()
	}
	for i := range s.History {
		s.History[i].At = s.History[i].At.UTC()
	}
}

// keyEscaper escapes the separator in key parts that are followed by another part, so that
// ("a:b", "c") and ("a", "b:c") never share a key. It is immutable and safe for concurrent use.
var keyEscaper = strings.NewReplacer("%", "%25", ":", "%3A")

// refIndexKey is the in-process and Redis key part of a (merchant, ref) pair: "<merchant>:<ref>" with the
// merchant escaped. It is "" when ref is empty: sessions without a provider reference are not indexed.
func refIndexKey(merchant, ref string) string {
	if ref == "" {
		return ""
	}
	return keyEscaper.Replace(merchant) + ":" + ref
}

// idemIndexKey is the key part of an idempotency (scope, key) pair: "<scope>:<key>", scope escaped.
func idemIndexKey(scope, key string) string {
	return keyEscaper.Replace(scope) + ":" + key
}
