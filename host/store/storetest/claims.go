package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/store"
)

// claimTTL is the TTL of the claims the pending-claim tests make: short with a manual clock, and long
// enough without one that a renewal every third of it cannot be late on a busy machine.
func claimTTL(cfg *config) time.Duration {
	if cfg.clock != nil {
		return time.Second
	}
	return 2 * time.Second
}

// wait lets d of the store's time pass: the manual clock is moved, or real time is slept.
func wait(cfg *config, d time.Duration) {
	if cfg.clock != nil {
		cfg.clock.Advance(d)
		return
	}
	time.Sleep(d)
}

// holds reports what (scope, key) holds, "" if nothing; it claims a free key with a short-lived probe
// and frees it again, so it changes nothing.
func holds(t *testing.T, st store.Store, scope, key string) string {
	t.Helper()
	ctx := context.Background()
	v, err := st.ClaimIdempotencyKey(ctx, scope, key, "probe", time.Minute)
	if err != nil {
		t.Fatalf("ClaimIdempotencyKey(%s, %s): %v", scope, key, err)
	}
	if v == "" {
		if err := st.ReleaseIdempotencyKey(ctx, scope, key, "probe"); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

// countingRenewer counts the swaps that found their value.
type countingRenewer struct {
	st store.Store
	n  atomic.Int64
}

func (c *countingRenewer) SwapIdempotencyKey(ctx context.Context, scope, key, old, value string, ttl time.Duration) (bool, error) {
	ok, err := c.st.SwapIdempotencyKey(ctx, scope, key, old, value, ttl)
	if ok {
		c.n.Add(1)
	}
	return ok, err
}

// await waits (real time, generously) until the renewer has renewed more than n times.
func (c *countingRenewer) await(t *testing.T, n int64) int64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for c.n.Load() <= n {
		if time.Now().After(deadline) {
			t.Fatalf("no renewal after %d in 30s", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return c.n.Load()
}

// testPendingClaims: a claim for work in progress is short and renewed (store.KeepClaimed): it outlives
// its TTL while renewed, is free a TTL after the renewals stop (the claimer died), and a swap for the
// work's answer gives it the answer's TTL. A renewal that finds another value stops and says so.
func testPendingClaims(t *testing.T, st store.Store, cfg *config) {
	ctx := t.Context()
	ttl := claimTTL(cfg)

	if v, err := st.ClaimIdempotencyKey(ctx, "pending", "kept", "p|1", ttl); err != nil || v != "" {
		t.Fatalf("claim: %q, %v", v, err)
	}
	renewer := &countingRenewer{st: st}
	var lost atomic.Int64
	stop := store.KeepClaimed(ctx, renewer, "pending", "kept", "p|1", ttl, func(err error) {
		t.Errorf("renewal failed: %v", err)
		lost.Add(1)
	})
	// Across two TTLs: each step lets two thirds of a TTL pass after a renewal, so only renewals keep it.
	start, n := time.Now(), int64(0)
	for i := 0; i < 3 || (cfg.clock == nil && time.Since(start) < 2*ttl); i++ {
		n = renewer.await(t, n)
		if cfg.clock != nil {
			cfg.clock.Advance(ttl * 2 / 3)
		}
	}
	if v := holds(t, st, "pending", "kept"); v != "p|1" {
		t.Fatalf("a renewed claim holds %q after two TTLs, want p|1", v)
	}
	stop()
	after := renewer.n.Load()
	// The work's answer replaces the claim with its own, long TTL.
	if v, err := st.ClaimIdempotencyKey(ctx, "pending", "done", "p|2", ttl); err != nil || v != "" {
		t.Fatalf("claim: %q, %v", v, err)
	}
	if ok, err := st.SwapIdempotencyKey(ctx, "pending", "done", "p|2", "r|answer", time.Hour); err != nil || !ok {
		t.Fatalf("swap for the answer: %v, %v", ok, err)
	}
	wait(cfg, ttl+ttl/10)
	if cfg.clock == nil {
		deadline := time.Now().Add(10 * time.Second)
		for holds(t, st, "pending", "kept") != "" && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if v := holds(t, st, "pending", "kept"); v != "" {
		t.Fatalf("a claim no longer renewed still holds %q after its TTL", v)
	}
	if renewer.n.Load() != after {
		t.Errorf("renewed after stop")
	}

	if v := holds(t, st, "pending", "done"); v != "r|answer" {
		t.Fatalf("the answer holds %q after the pending TTL, want r|answer", v)
	}

	// A renewal that finds another value reports ErrClaimLost and stops.
	var mu sync.Mutex
	var errs []error
	got := make(chan struct{}, 1)
	stop = store.KeepClaimed(ctx, st, "pending", "done", "p|2", ttl, func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
		select {
		case got <- struct{}{}:
		default:
		}
	})
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("no renewal reported the lost claim")
	}
	stop()
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 1 || !errors.Is(errs[0], store.ErrClaimLost) {
		t.Errorf("renewal errors %v, want one ErrClaimLost", errs)
	}
	if v := holds(t, st, "pending", "done"); v != "r|answer" {
		t.Errorf("a lost claim's renewal changed the key to %q", v)
	}
	if lost.Load() != 0 {
		t.Errorf("%d renewals failed", lost.Load())
	}
}

// stepsOnly hides a store's IndexingCreator, so that store.CreateIndexed makes the claim, the session
// and the index as separate writes, as it does on a Redis Cluster.
type stepsOnly struct{ store.Store }

// lostCreate is stepsOnly whose Create fails as a store that did not answer: the session may or may not
// have been written.
type lostCreate struct{ store.Store }

func (lostCreate) Create(context.Context, *payment.Session, time.Duration) error {
	return fmt.Errorf("test: no answer: %w", store.ErrUnavailable)
}

// testCreateIndexedPendingClaim: where the claim is a write of its own, it has claim.Pending until the
// session exists and claim.TTL after; a claim whose create got no answer (or whose claimer died before
// its create) is free after Pending, not after TTL.
func testCreateIndexedPendingClaim(t *testing.T, st store.Store, cfg *config) {
	ctx := t.Context()
	ttl := claimTTL(cfg)
	claim := func(id string) *store.Claim {
		return &store.Claim{Scope: "checkout:acme", Key: "key-" + id, Value: id + "|fp", TTL: time.Hour, Pending: ttl}
	}
	for _, tc := range []struct {
		id string
		s  store.Store
	}{{"pc-steps", stepsOnly{st}}, {"pc-native", st}} {
		sess := Sample(tc.id, "vipps-"+tc.id)
		if existing, err := store.CreateIndexed(ctx, tc.s, sess, time.Hour, claim(tc.id)); err != nil || existing != "" {
			t.Fatalf("CreateIndexed(%s) = %q, %v", tc.id, existing, err)
		}
	}
	_, err := store.CreateIndexed(ctx, lostCreate{st}, Sample("pc-lost", "vipps-pc-lost"), time.Hour, claim("pc-lost"))
	wantErr(t, "CreateIndexed with a lost create", err, store.ErrUnavailable)
	if v := holds(t, st, "checkout:acme", "key-pc-lost"); v != "pc-lost|fp" {
		t.Fatalf("a create without an answer left its claim holding %q, want pc-lost|fp (the session may exist)", v)
	}

	wait(cfg, ttl+ttl/10)
	for _, id := range []string{"pc-steps", "pc-native"} {
		if v := holds(t, st, "checkout:acme", "key-"+id); v != id+"|fp" {
			t.Errorf("the claim of created session %s holds %q after Pending, want %s|fp", id, v, id)
		}
		if got, err := st.GetByReference(ctx, "acme", "order-"+id); err != nil || got.ID != id {
			t.Errorf("GetByReference(order-%s) = %v, %v", id, got, err)
		}
	}
	if v := holds(t, st, "checkout:acme", "key-pc-lost"); v != "" {
		t.Errorf("the claim of a create without an answer still holds %q after Pending", v)
	}
}
