package store

import (
	"context"
	"errors"
	"sync"
	"time"
)

// DefaultPendingClaimTTL is how long a claim made for work still running (an Idempotency-Key, a hook
// delivery id, a create's key before its session exists) lives without being renewed, when the caller
// does not say otherwise: a retry after kasse died during the work waits at most this long.
const DefaultPendingClaimTTL = 30 * time.Second

// ErrClaimLost is reported by KeepClaimed when the claim no longer holds its value: it expired
// before it could be renewed (the store was unreachable, or the process stood still for longer than
// the claim's TTL) or was freed, so another request may now hold the key.
var ErrClaimLost = errors.New("idempotency claim lost")

// ClaimRenewer is the part of Store that KeepClaimed needs.
type ClaimRenewer interface {
	SwapIdempotencyKey(ctx context.Context, scope, key, old, value string, ttl time.Duration) (bool, error)
}

// KeepClaimed keeps a claim that (scope, key) holds value, made with ttl, alive while the work it
// guards runs: every ttl/3 it sets the key's TTL to ttl again if the key still holds value. So the
// claim only ever lasts ttl longer than the process that made it: a process that dies (kill -9, OOM,
// a lost node) stops renewing, and a retry finds the key free ttl later, instead of "in progress" for
// as long as a finished answer is kept. See RATIONALE.md, "Why a claim for work in progress is short
// and renewed".
//
// A renewal that fails is reported to onErr (if not nil) and tried again at the next tick; one that
// finds the key holding something else reports ErrClaimLost and stops. The caller calls stop when the
// work is done, before it swaps the claim for its result or frees it; stop waits for a renewal that
// is under way, so none runs after it returns. Renewals use ctx's values without its cancellation:
// the work, and so its claim, may outlive the caller's request.
func KeepClaimed(ctx context.Context, s ClaimRenewer, scope, key, value string, ttl time.Duration, onErr func(error)) (stop func()) {
	ctx = context.WithoutCancel(ctx)
	every := max(ttl/3, time.Millisecond)
	k := &keeper{}
	k.idle.L = &k.mu
	renew := func() {
		k.mu.Lock()
		if k.stopped {
			k.mu.Unlock()
			return
		}
		k.running = true
		k.mu.Unlock()

		ok, err := s.SwapIdempotencyKey(ctx, scope, key, value, value, ttl)
		if err == nil && !ok {
			err = ErrClaimLost
		}
		if err != nil && onErr != nil {
			onErr(err)
		}

		k.mu.Lock()
		k.running = false
		if !k.stopped && !errors.Is(err, ErrClaimLost) {
			k.timer.Reset(every)
		}
		k.idle.Broadcast()
		k.mu.Unlock()
	}
	k.mu.Lock()
	k.timer = time.AfterFunc(every, renew)
	k.mu.Unlock()
	return func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		k.stopped = true
		k.timer.Stop()
		for k.running {
			k.idle.Wait()
		}
	}
}

// keeper is KeepClaimed's state: a timer that re-arms itself after each renewal until stopped.
type keeper struct {
	mu      sync.Mutex
	idle    sync.Cond // signalled when a renewal ends
	timer   *time.Timer
	running bool
	stopped bool
}
