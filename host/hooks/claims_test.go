package hooks_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/outbound"
	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/host/store/storetest"
)

// errDead is what a dead kasse process's store calls "return": nothing it does reaches the store.
var errDead = errors.New("test: this kasse process is dead")

// dyingProcess is a kasse instance's hold on the shared store and inbox, cut at a chosen moment as
// kill -9 would cut it: from then on none of its writes lands (renewing, marking done, freeing a claim,
// storing in the inbox).
type dyingProcess struct {
	store store.Store
	inbox outbound.Storage
	// afterClaim kills the process as soon as its claim is made; otherwise it dies when it ends its
	// claim (marks the delivery done or frees it), after the work itself.
	afterClaim bool
	dead       atomic.Bool
}

func (p *dyingProcess) ClaimIdempotencyKey(ctx context.Context, scope, key, value string, ttl time.Duration) (string, error) {
	if p.dead.Load() {
		return "", errDead
	}
	v, err := p.store.ClaimIdempotencyKey(ctx, scope, key, value, ttl)
	if p.afterClaim {
		p.dead.Store(true)
	}
	return v, err
}

func (p *dyingProcess) ReleaseIdempotencyKey(context.Context, string, string, string) error {
	p.dead.Store(true)
	return errDead
}

func (p *dyingProcess) SwapIdempotencyKey(context.Context, string, string, string, string, time.Duration) (bool, error) {
	p.dead.Store(true)
	return false, errDead
}

// dyingInbox is the process's view of the shared inbox.
type dyingInbox struct {
	outbound.Storage
	p *dyingProcess
}

func (i dyingInbox) Add(ctx context.Context, job outbound.Job, due time.Time) (bool, error) {
	if i.p.dead.Load() {
		return false, errDead
	}
	return i.Storage.Add(ctx, job, due)
}

// TestRedeliveryAfterADeadAttemptIsProcessed: a kasse process that dies while it holds a delivery id
// (after claiming it, before marking it done) must not make the platform's redeliveries duplicates:
// while the dead attempt's claim lives, a redelivery is "in progress" (409, retry), and once it lapsed
// (pendingClaimTtl) the redelivery is processed, and the order gets exactly one checkout.
func TestRedeliveryAfterADeadAttemptIsProcessed(t *testing.T) {
	const pendingTTL = time.Minute
	order := []byte(`{"id":820982911946154508,"name":"#1","financial_status":"pending","cancelled_at":null,` +
		`"presentment_currency":"NOK","payment_gateway_names":["Vipps"],"order_status_url":"https://jsmith.myshopify.com/s",` +
		`"total_price_set":{"shop_money":{"amount":"41.94","currency_code":"NOK"},"presentment_money":{"amount":"41.94","currency_code":"NOK"}}}`)
	checkout := []byte(`{"type":"checkout","checkout":{"reference":"2001","amount":4194,"currency":"NOK","description":"Order 2001",` +
		`"returnUrl":"https://custom.example/thanks"}}`)
	for _, tc := range []struct {
		name string
		// afterClaim: the process dies right after its claim (Shopify: before the delivery reached the
		// inbox); otherwise after the work, before the delivery is marked done (generic, synchronous:
		// the checkout exists).
		afterClaim bool
		path       string
		header     http.Header
		body       []byte
		// done is the redelivery's result once the dead attempt's claim lapsed (before, it is 409
		// idempotency-in-progress, where it used to be dropped as a duplicate for 72 hours).
		done string
		// create is the one call the checkout service must have seen.
		create string
	}{
		{name: "shopify, dead before the inbox", afterClaim: true, path: "/hooks/shopify/shopi",
			header: shopifyHeader("orders/create", "dead-1", order), body: order, done: "accepted",
			create: "create shopi 820982911946154508 4194 NOK key=shopify:order:820982911946154508:after:first"},
		{name: "generic, dead after the checkout", path: "/hooks/generic/custom",
			header: genericHeader(now, checkout), body: checkout, done: "checkout",
			create: "create custom 2001 4194 NOK key=generic:order:2001:after:first"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := storetest.NewClock(now)
			shared := store.NewMemory(store.WithNow(clock.Now))
			t.Cleanup(func() { _ = shared.Close() })
			inbox, fake := outbound.NewMemoryStorage(), newFake()
			dying := &dyingProcess{store: shared, afterClaim: tc.afterClaim}
			dead := setupWith(t, envOptions{fake: fake, store: shared, claims: dying, inbox: dyingInbox{inbox, dying},
				pendingTTL: pendingTTL})
			live := setupWith(t, envOptions{fake: fake, store: shared, inbox: inbox, pendingTTL: pendingTTL})

			// The first attempt: its process dies on the way (the platform sees no answer it can use).
			resp, _ := dead.post(t, tc.path, tc.header, tc.body)
			if resp.StatusCode == http.StatusOK && tc.afterClaim {
				t.Fatalf("the dead attempt answered 200")
			}
			if !dying.dead.Load() {
				t.Fatal("the first attempt's process did not die")
			}

			// The platform redelivers while the dead attempt's claim still lives: not a duplicate.
			resp, body := live.post(t, tc.path, tc.header, tc.body)
			p := wantProblem(t, resp, body, http.StatusConflict, "idempotency-in-progress")
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("in progress without Retry-After: %+v", p)
			}

			// Once the claim has lapsed, the redelivery is processed.
			clock.Advance(pendingTTL + time.Second)
			resp, body = live.post(t, tc.path, tc.header, tc.body)
			if r := result(t, resp, body); r.Status != tc.done || (!tc.afterClaim && r.SessionID != "ks1") {
				// Synchronous: answered with the session the dead attempt created, not a second one.
				t.Fatalf("redelivery after the claim lapsed: %+v, want %s", r, tc.done)
			}
			if _, err := live.hooks.RunInboxOnce(context.Background(), 10); err != nil {
				t.Fatal(err)
			}
			// And it is done now: the next redelivery is a duplicate, and the order has one checkout.
			resp, body = live.post(t, tc.path, tc.header, tc.body)
			if tc.afterClaim {
				if r := result(t, resp, body); r.Status != "duplicate" {
					t.Errorf("redelivery after it was processed: %+v", r)
				}
			} else {
				wantProblem(t, resp, body, http.StatusConflict, "replayed-delivery")
			}
			if calls := fake.log(); len(calls) != 1 || calls[0] != tc.create {
				t.Errorf("checkout service calls %q, want one: %s", calls, tc.create)
			}
		})
	}
}

// countingClaims counts the renewals (swaps of a pending claim for itself) that found their claim.
type countingClaims struct {
	store.Store
	renewed atomic.Int64
}

func (c *countingClaims) SwapIdempotencyKey(ctx context.Context, scope, key, old, value string, ttl time.Duration) (bool, error) {
	ok, err := c.Store.SwapIdempotencyKey(ctx, scope, key, old, value, ttl)
	if ok && old == value {
		c.renewed.Add(1)
	}
	return ok, err
}

// blockingCheckouts holds every create until release is closed.
type blockingCheckouts struct {
	*fakeCheckouts
	entered chan struct{}
	release chan struct{}
}

func (b *blockingCheckouts) Create(ctx context.Context, co payment.Checkout, key string) (*payment.Session, bool, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.fakeCheckouts.Create(ctx, co, key)
}

// TestLiveAttemptKeepsItsClaim: a delivery processed for longer than pendingClaimTtl keeps its
// delivery id, renewed while it runs: a redelivery meanwhile is in progress, never a second run.
func TestLiveAttemptKeepsItsClaim(t *testing.T) {
	const pendingTTL = 30 * time.Millisecond // of the store's clock; renewals run on real time
	clock := storetest.NewClock(now)
	shared := store.NewMemory(store.WithNow(clock.Now))
	t.Cleanup(func() { _ = shared.Close() })
	claims := &countingClaims{Store: shared}
	fake := newFake()
	blocking := &blockingCheckouts{fakeCheckouts: fake, entered: make(chan struct{}, 1), release: make(chan struct{})}
	busy := setupWith(t, envOptions{fake: fake, checkouts: blocking, store: shared, claims: claims, pendingTTL: pendingTTL})
	other := setupWith(t, envOptions{fake: fake, store: shared, pendingTTL: pendingTTL})
	body := []byte(`{"type":"checkout","checkout":{"reference":"2002","amount":1000,"currency":"NOK","description":"x",` +
		`"returnUrl":"https://custom.example/thanks"}}`)
	h := genericHeader(now, body)
	first := make(chan []byte, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, busy.srv.URL+"/hooks/generic/custom", bytes.NewReader(body))
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- []byte(err.Error())
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		first <- b
	}()
	<-blocking.entered
	// Two TTLs pass while it works, in steps of two thirds of one after each renewal: only the renewals
	// keep the claim.
	for n := int64(0); clock.Now().Before(now.Add(2 * pendingTTL)); {
		deadline := time.Now().Add(30 * time.Second)
		for claims.renewed.Load() <= n {
			if time.Now().After(deadline) {
				t.Fatal("the claim was not renewed")
			}
			time.Sleep(time.Millisecond)
		}
		n = claims.renewed.Load()
		clock.Advance(pendingTTL * 2 / 3)
		resp, b := other.post(t, "/hooks/generic/custom", h, body)
		wantProblem(t, resp, b, http.StatusConflict, "idempotency-in-progress")
	}
	close(blocking.release)
	if b := <-first; !bytes.Contains(b, []byte(`"status":"checkout"`)) {
		t.Fatalf("the first attempt: %s", b)
	}
	if calls := fake.log(); len(calls) != 1 {
		t.Errorf("calls %q, want one create", calls)
	}
	// Done: kept for DedupeTTL, not the pending TTL.
	clock.Advance(time.Hour)
	resp, b := other.post(t, "/hooks/generic/custom", h, body)
	wantProblem(t, resp, b, http.StatusConflict, "replayed-delivery")
}
