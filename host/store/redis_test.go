package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kassehq/kasse/host/internal/testredis"
	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/host/store/storetest"
	"strconv"
)

// redisURL is one redis-server for the whole test binary; tests keep apart by key prefix.
var redisURL string

func TestMain(m *testing.M) { os.Exit(testredis.Main(m, &redisURL)) }

var prefixes atomic.Int64

// newPrefix returns a key prefix no other test uses.
func newPrefix() string { return fmt.Sprintf("kasse:test%d:", prefixes.Add(1)) }

func newRedis(t testing.TB, prefix string) *store.Redis {
	return newRedisWith(t, store.RedisOptions{KeyPrefix: prefix, AwaitingSettlement: true})
}

func newRedisWith(t testing.TB, opts store.RedisOptions) *store.Redis {
	t.Helper()
	r, err := store.NewRedis(t.Context(), redisURL, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func rawClient(t testing.TB) *redis.Client {
	t.Helper()
	o, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRedisConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return newRedis(t, newPrefix()) },
		storetest.WithShared(func(t *testing.T) (a, b store.Store) {
			p := newPrefix()
			return newRedis(t, p), newRedis(t, p)
		}))
}

// TestRedisSeparateReadsConformance runs the conformance suite with every session read sent on its own
// (RedisOptions.SeparateReads), the path the other runs replace with the pipeliner.
func TestRedisSeparateReadsConformance(t *testing.T) {
	separate := func(p string) *store.Redis {
		return newRedisWith(t, store.RedisOptions{KeyPrefix: p, AwaitingSettlement: true, SeparateReads: true})
	}
	storetest.Run(t, func(t *testing.T) store.Store { return separate(newPrefix()) },
		storetest.WithShared(func(t *testing.T) (a, b store.Store) {
			p := newPrefix()
			return separate(p), separate(p)
		}))
}

// TestRedisClusterConformance runs the conformance suite on a cluster of three primaries with a replica
// each, with the prefix left untagged so that the store's keys spread over the partitions' slots.
func TestRedisClusterConformance(t *testing.T) {
	cl := testredis.StartReplicatedCluster(t)
	client := func(t *testing.T) redis.UniversalClient {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	open := func(t *testing.T, c redis.UniversalClient, prefix string) store.Store {
		// WAIT returns as soon as the replica has the write; the generous bound keeps a replica that
		// lags past the 500ms default on a loaded 2-core machine (a CI run once saw it) from failing
		// a suite about the store's semantics. TestRedisWaitsForReplicas tests the wait itself.
		r, err := store.NewRedisFromClient(c, store.RedisOptions{KeyPrefix: prefix, WaitReplicas: 1,
			WaitTimeout: 10 * time.Second, AwaitingSettlement: true})
		if err != nil {
			t.Fatal(err)
		}
		if r.KeyPrefix() != prefix {
			t.Fatalf("cluster key prefix %q, want %q", r.KeyPrefix(), prefix)
		}
		return r
	}
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, client(t), newPrefix()) },
		storetest.WithShared(func(t *testing.T) (a, b store.Store) {
			p := newPrefix()
			return open(t, client(t), p), open(t, client(t), p)
		}))
}

// TestRedisClusterSpread: the sessions of 10,000 checkouts (with their reference keys and poll entries)
// spread over the three primaries of a cluster within 10% of even, counted in each primary's keyspace.
func TestRedisClusterSpread(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: creates 10,000 sessions on a six-node cluster; make test and make test-race run it")
	}
	cl := testredis.StartReplicatedCluster(t)
	ctx := t.Context()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
	t.Cleanup(func() { _ = c.Close() })
	r, err := store.NewRedisFromClient(c, store.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 10_000
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				// Ids as kasse makes them, used as the provider reference as kasse does.
				id := fmt.Sprintf("k%025d", i)
				s := storetest.Sample(id, id)
				s.NextCheckAt = time.Now().Add(time.Hour).UTC()
				if err := r.Create(ctx, s, time.Hour); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	primaries, err := cl.Primaries()
	if err != nil || len(primaries) != 3 {
		t.Fatalf("primaries %q, %v", primaries, err)
	}
	total := 0
	counts := make([]int, len(primaries))
	for i, addr := range primaries {
		node := redis.NewClient(&redis.Options{Addr: addr})
		var cursor uint64
		for {
			keys, next, err := node.Scan(ctx, cursor, "kasse:*:session:*", 1000).Result()
			if err != nil {
				t.Fatal(err)
			}
			counts[i] += len(keys)
			if cursor = next; cursor == 0 {
				break
			}
		}
		_ = node.Close()
		total += counts[i]
	}
	if total != n {
		t.Fatalf("found %d session keys on the primaries %v, want %d", total, counts, n)
	}
	even := float64(n) / float64(len(primaries))
	for i, got := range counts {
		if dev := (float64(got) - even) / even; dev > 0.10 || dev < -0.10 {
			t.Errorf("primary %s holds %d sessions, %.1f%% off an even %.0f", primaries[i], got, 100*dev, even)
		}
	}
	t.Logf("sessions per primary: %v (even: %.0f)", counts, even)
	// Every session is due for a poll in an hour: one claim finds them in all partitions.
	ids, err := r.ClaimDuePolls(ctx, time.Now().Add(2*time.Hour), n, time.Minute)
	if err != nil || len(ids) != n {
		t.Fatalf("claimed %d due polls, %v; want %d", len(ids), err, n)
	}
}

func TestRedisKeyLayout(t *testing.T) {
	ctx := t.Context()
	r, err := store.NewRedis(ctx, redisURL, store.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.KeyPrefix() != store.DefaultKeyPrefix {
		t.Fatalf("default prefix %q", r.KeyPrefix())
	}
	s := storetest.Sample("layout-1", "layout-ref")
	s.Merchant = "shop:1"
	if err := r.Create(ctx, s, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ClaimIdempotencyKey(ctx, "checkout:shop:1", "k", "v", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := r.SchedulePoll(ctx, "layout-1", time.UnixMicro(1_700_000_000_000_001)); err != nil {
		t.Fatal(err)
	}
	c := rawClient(t)
	session, ref := store.LayoutKey(r, "session", "layout-1"), store.LayoutKey(r, "ref", "shop:1", "layout-ref")
	raw, err := c.Get(ctx, session).Result()
	if err != nil || !strings.Contains(raw, `"id":"layout-1"`) || !strings.Contains(raw, `"revision":1`) {
		t.Fatalf("session key: %q, %v", raw, err)
	}
	if id, err := c.Get(ctx, ref).Result(); err != nil || id != "layout-1" {
		t.Fatalf("reference key: %q, %v", id, err)
	}
	if v, err := c.Get(ctx, store.LayoutKey(r, "idem", "checkout:shop:1", "k")).Result(); err != nil || v != "v" {
		t.Fatalf("idempotency key: %q, %v", v, err)
	}
	if score, err := c.ZScore(ctx, store.LayoutKey(r, "polls", "layout-1"), "layout-1").Result(); err != nil || score != 1_700_000_000_000_001 {
		t.Fatalf("poll score: %v, %v", score, err)
	}
	for _, k := range []string{session, ref} {
		if ttl, err := c.PTTL(ctx, k).Result(); err != nil || ttl <= 59*time.Minute || ttl > time.Hour {
			t.Fatalf("PTTL %s = %s, %v; want about 1h", k, ttl, err)
		}
	}
	for _, k := range []string{store.LayoutKey(r, "list", "layout-1", "shop:1", ""), store.LayoutKey(r, "list", "layout-1", "shop:1", "pending")} {
		if !strings.Contains(k, "}:list:shop%3A1") || !store.SameSlot(k, session) {
			t.Fatalf("list index key %q is not in the session's slot (%q)", k, session)
		}
		if score, err := c.ZScore(ctx, k, "layout-1").Result(); err != nil || int64(score) != s.CreatedAt.UnixMicro() {
			t.Fatalf("list index %s: score %v, %v; want the creation time", k, score, err)
		}
	}
	// Update keeps the TTL of the session, and a moved reference gets the same.
	if _, err := r.Update(ctx, "layout-1", func(s *payment.Session) (bool, error) {
		s.ProviderReference = "layout-ref-2"
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{session, store.LayoutKey(r, "ref", "shop:1", "layout-ref-2")} {
		if ttl, err := c.PTTL(ctx, k).Result(); err != nil || ttl <= 59*time.Minute || ttl > time.Hour {
			t.Fatalf("PTTL %s after Update = %s, %v; want about 1h", k, ttl, err)
		}
	}
	if n, err := c.Exists(ctx, ref).Result(); err != nil || n != 0 {
		t.Fatalf("old reference key: exists %d, %v", n, err)
	}
}

func TestRedisUpdateRetriesThenGivesUp(t *testing.T) {
	ctx := t.Context()
	p := newPrefix()
	other := newRedis(t, p)
	defer other.Close()
	if err := other.Create(ctx, storetest.Sample("race-1", ""), 0); err != nil {
		t.Fatal(err)
	}
	// interfere writes through another client while fn runs, as a concurrent instance would.
	interfere := func(t *testing.T) {
		if _, err := other.Update(ctx, "race-1", func(s *payment.Session) (bool, error) {
			s.Reason += "x"
			return true, nil
		}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("retry", func(t *testing.T) {
		r, err := store.NewRedis(ctx, redisURL, store.RedisOptions{KeyPrefix: p, MaxUpdateAttempts: 3})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		calls := 0
		got, err := r.Update(ctx, "race-1", func(s *payment.Session) (bool, error) {
			calls++
			if calls == 1 {
				interfere(t)
			}
			s.Description = "mine"
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if calls != 2 || got.Reason != "x" || got.Description != "mine" || got.Revision != 3 {
			t.Fatalf("fn called %d times; result reason %q, description %q, revision %d; want 2, x, mine, 3",
				calls, got.Reason, got.Description, got.Revision)
		}
	})

	t.Run("give up", func(t *testing.T) {
		r, err := store.NewRedis(ctx, redisURL, store.RedisOptions{KeyPrefix: p, MaxUpdateAttempts: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		calls := 0
		_, err = r.Update(ctx, "race-1", func(s *payment.Session) (bool, error) {
			calls++
			interfere(t)
			s.Description = "lost"
			return true, nil
		})
		if !errors.Is(err, store.ErrConflict) || calls != 2 {
			t.Fatalf("Update = %v after %d calls; want ErrConflict after 2", err, calls)
		}
		if want := "store: update session[race-1]: gave up after 2 attempts"; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("error %q does not start with %q", err, want)
		}
		if got, _ := r.Get(ctx, "race-1"); got.Description == "lost" {
			t.Fatal("a given-up Update was written")
		}
	})

	t.Run("context", func(t *testing.T) {
		r := newRedis(t, p)
		defer r.Close()
		cctx, cancel := context.WithCancel(ctx)
		_, err := r.Update(cctx, "race-1", func(s *payment.Session) (bool, error) {
			interfere(t)
			cancel()
			return true, nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Update = %v; want context.Canceled", err)
		}
	})
}

func TestNewRedisErrorsHidePasswords(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for _, u := range []string{
		"redis://user:s3cret@127.0.0.1:1/0", // nothing listens on port 1
		"redis://user:s3cret@127.0.0.1:%zz/0",
		"http://user:s3cret@127.0.0.1:6379/0",
	} {
		r, err := store.NewRedis(ctx, u, store.RedisOptions{})
		if err == nil {
			r.Close()
			t.Fatalf("NewRedis(%s) succeeded", u)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows the password: %v", err)
		}
		if !strings.HasPrefix(err.Error(), "store: ") {
			t.Errorf("error %q has no store: prefix", err)
		}
	}
}

func TestNewRedisFromClientLeavesTheClientOpen(t *testing.T) {
	c := rawClient(t)
	r, err := store.NewRedisFromClient(c, store.RedisOptions{KeyPrefix: newPrefix()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("client closed by the store: %v", err)
	}
	if _, err := store.NewRedisFromClient(nil, store.RedisOptions{}); err == nil {
		t.Fatal("NewRedisFromClient(nil) succeeded")
	}
}

func TestRedisCloseClosesItsOwnClient(t *testing.T) {
	r := newRedis(t, newPrefix())
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := r.Ping(t.Context()); err == nil {
		t.Fatal("Ping after Close succeeded")
	}
}

func BenchmarkRedisUpdate(b *testing.B) {
	r := newRedis(b, newPrefix())
	defer r.Close()
	benchUpdate(b, r)
}

// BenchmarkRedisCaptureWrite: the write of a capture (a session's captured amount grows), with the index
// of sessions awaiting the ledger kept in the same script (awaiting=on) and without it (off): the index
// costs a ZADD inside the script, no round trip.
func BenchmarkRedisCaptureWrite(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("awaiting=%v", on), func(b *testing.B) {
			r, err := store.NewRedis(b.Context(), redisURL, store.RedisOptions{KeyPrefix: newPrefix(), AwaitingSettlement: on})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			ctx := b.Context()
			if err := r.Create(ctx, storetest.Sample("bench", "bench"), time.Hour); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if _, err := r.Update(ctx, "bench", func(s *payment.Session) (bool, error) {
					s.CapturedAmount++
					return true, nil
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRedisUpdateParallel(b *testing.B) {
	r := newRedis(b, newPrefix())
	defer r.Close()
	benchUpdateParallel(b, r)
}

// TestRedisListForgetsExpiredSessions: the list index outlives an expired session until a count or a
// listing finds it gone and removes it.
func TestRedisListForgetsExpiredSessions(t *testing.T) {
	ctx := t.Context()
	prefix := newPrefix()
	r := newRedis(t, prefix)
	defer r.Close()
	s := storetest.Sample("short-1", "")
	if err := r.Create(ctx, s, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := r.Get(ctx, "short-1"); errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the session did not expire")
		}
		time.Sleep(10 * time.Millisecond)
	}
	counts, err := r.CountSessions(ctx, s.Merchant, time.Time{}, time.Time{})
	if err != nil || len(counts) != 0 {
		t.Fatalf("counts after expiry: %v, %v", counts, err)
	}
	c := rawClient(t)
	for _, k := range []string{prefix + "list:acme", prefix + "list:acme:pending"} {
		if n, err := c.ZCard(ctx, k).Result(); err != nil || n != 0 {
			t.Fatalf("%s still holds %d entries (%v)", k, n, err)
		}
	}
}

// TestRedisWaitsForReplicas: with WaitReplicas, writes wait for the replicas of the primary that owns the
// keys (Redis Cluster with a replica per primary). A write fewer replicas acknowledged in time fails with
// ErrNotReplicated, which is also ErrUnavailable (the caller must not act on it), and is counted; it is
// on the primary all the same, as a write whose answer was lost may be.
func TestRedisWaitsForReplicas(t *testing.T) {
	cl := testredis.StartReplicatedCluster(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name         string
		replicas     int
		wait         time.Duration // WAIT ends early when the replicas have it: generous where they will
		unreplicated bool
	}{
		{"one replica, as there is", 1, 10 * time.Second, false},
		{"two replicas, one short", 2, 100 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
			t.Cleanup(func() { _ = c.Close() })
			r, err := store.NewRedisFromClient(c, store.RedisOptions{KeyPrefix: newPrefix(), WaitReplicas: tc.replicas,
				WaitTimeout: tc.wait})
			if err != nil {
				t.Fatal(err)
			}
			s := &payment.Session{ID: "wait-" + strconv.Itoa(tc.replicas), Merchant: "m", Reference: "r", Amount: 100,
				Currency: "NOK", State: payment.StatePending}
			checkWrite := func(what string, err error) {
				t.Helper()
				switch {
				case !tc.unreplicated && err != nil:
					t.Fatalf("%s: %v", what, err)
				case tc.unreplicated && (!errors.Is(err, store.ErrNotReplicated) || !errors.Is(err, store.ErrUnavailable)):
					t.Fatalf("%s: %v, want ErrNotReplicated and ErrUnavailable", what, err)
				}
			}
			checkWrite("create", r.Create(ctx, s, time.Hour))
			_, err = r.Update(ctx, s.ID, func(s *payment.Session) (bool, error) {
				s.State = payment.StateAuthorized
				return true, nil
			})
			checkWrite("update", err)
			got, err := r.Get(ctx, s.ID)
			if err != nil || got.State != payment.StateAuthorized {
				t.Fatalf("after the writes: %+v, %v (the primary has them either way)", got, err)
			}
			if n := r.UnreplicatedWrites(); (n > 0) != tc.unreplicated {
				t.Errorf("unreplicated writes %d, want some: %t", n, tc.unreplicated)
			}
		})
	}
}

// commandCounter counts the commands a client sends (a pipeline counts each of its commands).
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}
func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.n.Add(int64(len(cmds))); return next(ctx, cmds) }
}

// TestRedisUpdateFrom: an update from a snapshot writes in one round trip when the snapshot is current,
// reads and retries when another write came between, and changes nothing (and sends nothing) when fn
// has nothing to do.
func TestRedisUpdateFrom(t *testing.T) {
	ctx := t.Context()
	setAmount := func(v int64) func(*payment.Session) (bool, error) {
		return func(s *payment.Session) (bool, error) {
			if s.CapturedAmount == v {
				return false, nil
			}
			s.CapturedAmount = v
			return true, nil
		}
	}
	for _, tc := range []struct {
		name string
		// between runs after the snapshot is read and before UpdateFrom, with a second store.
		between     func(t *testing.T, other *store.Redis, id string)
		fn          func(*payment.Session) (bool, error)
		wantCmds    int64
		wantErr     error
		wantCapture int64
		wantRev     int64
		wantRefund  int64
	}{
		{name: "current snapshot: one round trip", fn: setAmount(100), wantCmds: 1, wantCapture: 100, wantRev: 2},
		{name: "nothing to change: no round trip", fn: setAmount(0), wantCmds: 0, wantCapture: 0, wantRev: 1},
		{name: "stale snapshot: read again, both changes kept",
			between: func(t *testing.T, other *store.Redis, id string) {
				if _, err := other.Update(ctx, id, func(s *payment.Session) (bool, error) { s.RefundedAmount = 7; return true, nil }); err != nil {
					t.Fatal(err)
				}
			},
			fn: setAmount(100), wantCmds: 3, wantCapture: 100, wantRefund: 7, wantRev: 3},
		{name: "stale snapshot, fresh session needs nothing",
			between: func(t *testing.T, other *store.Redis, id string) {
				if _, err := other.Update(ctx, id, setAmount(100)); err != nil {
					t.Fatal(err)
				}
			},
			fn: setAmount(100), wantCmds: 2, wantCapture: 100, wantRev: 2},
		{name: "session gone", wantErr: store.ErrNotFound,
			between: func(t *testing.T, o *store.Redis, id string) {
				if err := rawClient(t).Del(ctx, store.LayoutKey(o, "session", id)).Err(); err != nil {
					t.Fatal(err)
				}
			},
			fn: setAmount(100), wantCmds: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := "kasse:" + t.Name() + ":"
			o, err := redis.ParseURL(redisURL)
			if err != nil {
				t.Fatal(err)
			}
			client := redis.NewClient(o)
			defer client.Close()
			counter := &commandCounter{}
			client.AddHook(counter)
			r, err := store.NewRedisFromClient(client, store.RedisOptions{KeyPrefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			other := newRedis(t, prefix)
			defer other.Close()
			id := "s-1"
			if err := r.Create(ctx, storetest.Sample(id, "ref-1"), time.Hour); err != nil {
				t.Fatal(err)
			}
			// Load the update script, so that the count below has no NOSCRIPT retry in it.
			if _, err := r.Update(ctx, "missing", setAmount(1)); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("warm-up: %v", err)
			}
			if _, err := r.Update(ctx, id, func(*payment.Session) (bool, error) { return true, nil }); err != nil {
				t.Fatal(err)
			}
			snap, err := r.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			base := snap.Revision
			if tc.between != nil {
				tc.between(t, other, id)
			}
			counter.n.Store(0)
			got, err := r.UpdateFrom(ctx, snap, tc.fn)
			if n := counter.n.Load(); n != tc.wantCmds {
				t.Errorf("%d commands, want %d", n, tc.wantCmds)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			stored, err := r.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []*payment.Session{got, stored} {
				if s.CapturedAmount != tc.wantCapture || s.RefundedAmount != tc.wantRefund || s.Revision != base-1+tc.wantRev {
					t.Fatalf("captured %d refunded %d revision %d; want %d, %d, %d", s.CapturedAmount, s.RefundedAmount,
						s.Revision, tc.wantCapture, tc.wantRefund, base-1+tc.wantRev)
				}
			}
		})
	}
}

// TestRedisCheckLayout: a new store gets the layout marker; a store holding keys of layout 1 (no marker,
// a session or poll set under the bare or tagged prefix) is refused with ErrOldLayout, which names a key.
func TestRedisCheckLayout(t *testing.T) {
	ctx := t.Context()
	c := rawClient(t)
	for _, tc := range []struct {
		name, oldKey string
		wantErr      bool
	}{
		{"new store", "", false},
		{"old session", "session:s-1", true},
		{"old poll set", "polls", true},
		{"old session on a cluster", "{tagged}session:s-1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := newPrefix()
			r := newRedis(t, prefix)
			if tc.oldKey != "" {
				k := prefix + tc.oldKey
				if strings.HasPrefix(tc.oldKey, "{tagged}") {
					k = "{" + strings.TrimSuffix(prefix, ":") + "}:" + strings.TrimPrefix(tc.oldKey, "{tagged}")
				}
				if err := c.Set(ctx, k, "x", time.Hour).Err(); err != nil {
					t.Fatal(err)
				}
			}
			err := r.CheckLayout(ctx)
			if tc.wantErr {
				if !errors.Is(err, store.ErrOldLayout) || !strings.Contains(err.Error(), "kasse store migrate") {
					t.Fatalf("CheckLayout = %v, want ErrOldLayout saying how to migrate", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := r.CheckLayout(ctx); err != nil {
				t.Fatalf("second CheckLayout: %v", err)
			}
		})
	}
}

// TestRedisMigrateLayout: keys written in layout 1 (a session with its reference, an idempotency key, a
// poll entry, a lease) are refused by CheckLayout, moved by MigrateLayout with their TTLs, and read
// through the store afterwards; a second migration has nothing to do.
func TestRedisMigrateLayout(t *testing.T) {
	ctx := t.Context()
	prefix := newPrefix()
	c := rawClient(t)
	s := storetest.Sample("mig-1", "mig-1")
	s.Merchant = "shop:1"
	s.Revision = 4
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	old := map[string]string{
		"session:mig-1":           string(raw),
		"ref:shop%3A1:mig-1":      "mig-1",
		"idem:checkout%3Ashop:k1": "v1",
		"lease:settle":            "instance-a",
		"unknown:thing":           "x",
	}
	for k, v := range old {
		if err := c.Set(ctx, prefix+k, v, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.ZAdd(ctx, prefix+"polls", redis.Z{Score: 1_700_000_000_000_000, Member: "mig-1"}).Err(); err != nil {
		t.Fatal(err)
	}
	r := newRedis(t, prefix)
	if err := r.CheckLayout(ctx); !errors.Is(err, store.ErrOldLayout) {
		t.Fatalf("CheckLayout before the migration = %v, want ErrOldLayout", err)
	}
	rep, err := r.MigrateLayout(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Keys != 5 || rep.Polls != 1 || len(rep.Skipped) != 1 || rep.Skipped[0] != prefix+"unknown:thing" {
		t.Fatalf("report %+v", rep)
	}
	if err := r.CheckLayout(ctx); err != nil {
		t.Fatalf("CheckLayout after the migration: %v", err)
	}
	got, err := r.GetByProviderReference(ctx, "shop:1", "mig-1")
	if err != nil || got.ID != "mig-1" || got.Revision != 4 {
		t.Fatalf("session after the migration: %+v, %v", got, err)
	}
	if ttl, err := c.PTTL(ctx, store.LayoutKey(r, "session", "mig-1")).Result(); err != nil || ttl <= 59*time.Minute {
		t.Fatalf("migrated session's TTL %s, %v", ttl, err)
	}
	if v, err := r.ClaimIdempotencyKey(ctx, "checkout:shop", "k1", "other", time.Minute); err != nil || v != "v1" {
		t.Fatalf("migrated idempotency key: %q, %v", v, err)
	}
	if ok, err := r.AcquireLease(ctx, "settle", "instance-b", time.Minute); err != nil || ok {
		t.Fatalf("migrated lease taken by another holder: %v, %v", ok, err)
	}
	if ids, err := r.ClaimDuePolls(ctx, time.UnixMicro(1_700_000_000_000_000), 10, time.Minute); err != nil || len(ids) != 1 || ids[0] != "mig-1" {
		t.Fatalf("migrated poll: %q, %v", ids, err)
	}
	for k := range old {
		if k == "unknown:thing" {
			continue
		}
		if n, err := c.Exists(ctx, prefix+k).Result(); err != nil || n != 0 {
			t.Errorf("old key %s still exists: %d, %v", k, n, err)
		}
	}
	if rep, err := r.MigrateLayout(ctx); err != nil || rep.Keys != 0 {
		t.Fatalf("second migration: %+v, %v", rep, err)
	}
}

// BenchmarkRedisStoreOps measures store operations per second on a cluster of one primary and on one of
// three primaries with a replica each: each iteration is a checkout's store traffic (Create, Get, two
// Updates), from many goroutines so that the store, not the client, is the bottleneck. It reports
// store-ops/s (four per iteration). What limits it on a small machine is the CPU the redis-server
// processes and the client share; see RATIONALE.md, "Why sessions are partitioned by id".
func BenchmarkRedisStoreOps(b *testing.B) {
	for _, tc := range []struct {
		name  string
		addrs func(b *testing.B) []string
	}{
		{"primaries=1", func(b *testing.B) []string { return []string{testredis.StartCluster(b)} }},
		{"primaries=3", func(b *testing.B) []string { return testredis.StartReplicatedCluster(b).Addrs() }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: tc.addrs(b), PoolSize: 64})
			b.Cleanup(func() { _ = c.Close() })
			r, err := store.NewRedisFromClient(c, store.RedisOptions{})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			var seq atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := fmt.Sprintf("bench-%d", seq.Add(1))
					if err := r.Create(ctx, storetest.Sample(id, id), time.Hour); err != nil {
						b.Error(err)
						return
					}
					if _, err := r.Get(ctx, id); err != nil {
						b.Error(err)
						return
					}
					for range 2 {
						if _, err := r.Update(ctx, id, func(s *payment.Session) (bool, error) {
							s.CapturedAmount++
							return true, nil
						}); err != nil {
							b.Error(err)
							return
						}
					}
				}
			})
			b.ReportMetric(float64(4*b.N)/b.Elapsed().Seconds(), "store-ops/s")
		})
	}
}
