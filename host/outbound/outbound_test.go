package outbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kassehq/kasse/host/internal/testredis"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time               { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration)          { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func maxJitter(d time.Duration) time.Duration { return d - time.Millisecond }

// storages returns a fresh storage of each kind, and for Redis a function that opens a second storage on
// the same data, standing for another kasse process.
func storages(t *testing.T) map[string]func(t *testing.T) (Storage, func() Storage) {
	return map[string]func(t *testing.T) (Storage, func() Storage){
		"memory": func(t *testing.T) (Storage, func() Storage) {
			s := NewMemoryStorage()
			return s, func() Storage { return s }
		},
		"redis": func(t *testing.T) (Storage, func() Storage) {
			url := testredis.Start(t)
			open := func() Storage {
				opt, err := redis.ParseURL(url)
				if err != nil {
					t.Fatal(err)
				}
				c := redis.NewClient(opt)
				t.Cleanup(func() { _ = c.Close() })
				s, err := NewRedisStorage(c, "test:q:")
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			return open(), open
		},
		// Partitioned on a cluster, where a script touching two partitions would fail with CROSSSLOT.
		"redis-cluster-partitioned": func(t *testing.T) (Storage, func() Storage) {
			addr := testredis.StartCluster(t)
			open := func() Storage {
				c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}})
				t.Cleanup(func() { _ = c.Close() })
				s, err := NewPartitionedRedisStorage(c, "test:q:", []string{"a", "b", "c", "d", "e", "f", "g", "h"})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			return open(), open
		},
	}
}

type recorder struct {
	mu      sync.Mutex
	calls   []string
	giveUps []string
}

func (r *recorder) add(s string) { r.mu.Lock(); r.calls = append(r.calls, s); r.mu.Unlock() }

func newQueue(t *testing.T, s Storage, clk *clock, deliver func(context.Context, Job) error, rec *recorder, logs *bytes.Buffer) *Queue {
	t.Helper()
	q, err := New(Config{
		Storage: s, Deliver: deliver, MaxAttempts: 3, BaseDelay: time.Second, MaxDelay: 4 * time.Second,
		Now: clk.Now, Jitter: maxJitter, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		AttemptTimeout: time.Second, Lease: time.Minute,
		OnGiveUp: func(_ context.Context, j Job, err error) {
			rec.mu.Lock()
			rec.giveUps = append(rec.giveUps, j.ID+": "+err.Error())
			rec.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestQueue(t *testing.T) {
	for name, mk := range storages(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("deliver once, duplicates dropped", func(t *testing.T) {
				s, _ := mk(t)
				clk := &clock{t: time.Unix(1_700_000_000, 0)}
				rec := &recorder{}
				var logs bytes.Buffer
				q := newQueue(t, s, clk, func(_ context.Context, j Job) error {
					rec.add(j.ID + ":" + string(j.Payload))
					return nil
				}, rec, &logs)
				ctx := context.Background()
				for range 2 {
					if err := q.Enqueue(ctx, Job{ID: "a", Kind: "k", Payload: []byte(`{"x":1}`)}); err != nil {
						t.Fatal(err)
					}
				}
				if n, err := q.RunOnce(ctx, 10); err != nil || n != 1 {
					t.Fatalf("RunOnce = %d, %v", n, err)
				}
				if n, _ := q.RunOnce(ctx, 10); n != 0 {
					t.Fatalf("second RunOnce attempted %d jobs", n)
				}
				if fmt.Sprint(rec.calls) != `[a:{"x":1}]` {
					t.Errorf("calls %q", rec.calls)
				}
				st, err := q.Stats(ctx)
				if err != nil || st != (Stats{Enqueued: 1, Delivered: 1}) {
					t.Errorf("stats %+v, %v", st, err)
				}
			})

			t.Run("outage then recovery", func(t *testing.T) {
				s, _ := mk(t)
				clk := &clock{t: time.Unix(1_700_000_000, 0)}
				rec := &recorder{}
				var logs bytes.Buffer
				var fails atomic.Int32
				fails.Store(2)
				q := newQueue(t, s, clk, func(_ context.Context, j Job) error {
					rec.add(fmt.Sprintf("%s#%d", j.ID, j.Attempts))
					if fails.Add(-1) >= 0 {
						return errors.New("platform answered 503")
					}
					return nil
				}, rec, &logs)
				ctx := context.Background()
				if err := q.Enqueue(ctx, Job{ID: "b", Kind: "k", Payload: []byte(`{}`)}); err != nil {
					t.Fatal(err)
				}
				q.RunOnce(ctx, 10) // fails; due in 1s
				if n, _ := q.RunOnce(ctx, 10); n != 0 {
					t.Fatal("retried before its back-off")
				}
				clk.Add(time.Second)
				q.RunOnce(ctx, 10) // fails; due in 2s
				clk.Add(time.Second)
				if n, _ := q.RunOnce(ctx, 10); n != 0 {
					t.Fatal("second back-off did not double")
				}
				clk.Add(time.Second)
				if n, _ := q.RunOnce(ctx, 10); n != 1 {
					t.Fatal("not retried after its back-off")
				}
				if fmt.Sprint(rec.calls) != "[b#0 b#1 b#2]" {
					t.Errorf("calls %q", rec.calls)
				}
				st, _ := q.Stats(ctx)
				if st != (Stats{Enqueued: 1, Delivered: 1, Retried: 2}) {
					t.Errorf("stats %+v", st)
				}
				if !strings.Contains(logs.String(), "platform answered 503") {
					t.Errorf("retry not logged: %s", logs.String())
				}
			})

			t.Run("down for good is given up visibly", func(t *testing.T) {
				s, _ := mk(t)
				clk := &clock{t: time.Unix(1_700_000_000, 0)}
				rec := &recorder{}
				var logs bytes.Buffer
				q := newQueue(t, s, clk, func(context.Context, Job) error {
					return errors.New("connection refused")
				}, rec, &logs)
				ctx := context.Background()
				if err := q.Enqueue(ctx, Job{ID: "c", Kind: "k", Merchant: "m", Session: "s1", Payload: []byte(`{}`)}); err != nil {
					t.Fatal(err)
				}
				for range 3 {
					if n, _ := q.RunOnce(ctx, 10); n != 1 {
						t.Fatal("job not due")
					}
					clk.Add(time.Hour)
				}
				if n, _ := q.RunOnce(ctx, 10); n != 0 {
					t.Fatal("attempted after giving up")
				}
				if fmt.Sprint(rec.giveUps) != "[c: connection refused]" {
					t.Errorf("OnGiveUp calls %q", rec.giveUps)
				}
				st, _ := q.Stats(ctx)
				if st != (Stats{Enqueued: 1, Retried: 2, GivenUp: 1}) {
					t.Errorf("stats %+v", st)
				}
				if !strings.Contains(logs.String(), `level=ERROR msg="outbound: gave up on job"`) ||
					!strings.Contains(logs.String(), "session=s1") {
					t.Errorf("give-up not logged as an error: %s", logs.String())
				}
				buried := buriedJobs(t, s)
				if j, ok := buried["c"]; !ok || j.Attempts != 3 || j.LastError != "connection refused" {
					t.Errorf("buried %+v", buried)
				}
			})

			t.Run("permanent error gives up at once", func(t *testing.T) {
				s, _ := mk(t)
				clk := &clock{t: time.Unix(1_700_000_000, 0)}
				rec := &recorder{}
				var logs bytes.Buffer
				q := newQueue(t, s, clk, func(context.Context, Job) error {
					return fmt.Errorf("platform: %w", Permanent(errors.New("401 unauthorized")))
				}, rec, &logs)
				ctx := context.Background()
				_ = q.Enqueue(ctx, Job{ID: "d", Kind: "k", Payload: []byte(`{}`)})
				q.RunOnce(ctx, 10)
				if len(rec.giveUps) != 1 || !strings.Contains(rec.giveUps[0], "401 unauthorized") {
					t.Errorf("OnGiveUp calls %q", rec.giveUps)
				}
			})

			t.Run("stored error has no credentials", func(t *testing.T) {
				s, _ := mk(t)
				clk := &clock{t: time.Unix(1_700_000_000, 0)}
				q := newQueue(t, s, clk, func(context.Context, Job) error {
					return Permanent(errors.New(`Post "http://shop.test/wp-json/wc/v3/orders/1/notes?oauth_consumer_key=ck_live_secret&oauth_signature=c2lnbmF0dXJl": EOF`))
				}, &recorder{}, &bytes.Buffer{})
				ctx := context.Background()
				_ = q.Enqueue(ctx, Job{ID: "e", Kind: "k", Payload: []byte(`{}`)})
				q.RunOnce(ctx, 10)
				j, ok := buriedJobs(t, s)["e"]
				if !ok {
					t.Fatal("job not buried")
				}
				if strings.Contains(j.LastError, "ck_live_secret") || strings.Contains(j.LastError, "c2lnbmF0dXJl") ||
					!strings.Contains(j.LastError, "oauth_consumer_key=[redacted]") {
					t.Errorf("stored last error %q", j.LastError)
				}
			})

			t.Run("survives a restart and a dead worker", func(t *testing.T) {
				s, reopen := mk(t)
				clk := &clock{t: time.Unix(1_700_000_000, 0)}
				ctx := context.Background()
				rec := &recorder{}
				var logs bytes.Buffer
				first := newQueue(t, s, clk, func(context.Context, Job) error { return nil }, rec, &logs)
				_ = first.Enqueue(ctx, Job{ID: "e", Kind: "k", Payload: []byte(`{"n":1}`)})
				_ = first.Enqueue(ctx, Job{ID: "f", Kind: "k", Payload: []byte(`{"n":2}`)})
				// A worker claims "e" and dies before finishing.
				if jobs, err := s.Claim(ctx, clk.Now(), 1, time.Minute); err != nil || len(jobs) != 1 || jobs[0].ID != "e" {
					t.Fatalf("claim %v %v", jobs, err)
				}
				// A new process (a new client on the same Redis) takes over.
				second := newQueue(t, reopen(), clk, func(_ context.Context, j Job) error {
					rec.add(j.ID + string(j.Payload))
					return nil
				}, rec, &logs)
				second.RunOnce(ctx, 10)
				clk.Add(time.Minute)
				second.RunOnce(ctx, 10)
				if fmt.Sprint(rec.calls) != `[f{"n":2} e{"n":1}]` {
					t.Errorf("calls %q", rec.calls)
				}
			})
		})
	}
}

func buriedJobs(t *testing.T, s Storage) map[string]Job {
	t.Helper()
	switch s := s.(type) {
	case *MemoryStorage:
		return s.Buried()
	case *RedisStorage:
		b, err := s.Buried(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t.Fatalf("unknown storage %T", s)
	return nil
}

// TestRunWorkers runs the goroutine workers for real: jobs enqueued while they run are delivered.
func TestRunWorkers(t *testing.T) {
	var got atomic.Int32
	done := make(chan struct{})
	q, err := New(Config{Storage: NewMemoryStorage(), Workers: 3, PollInterval: 10 * time.Millisecond,
		BaseDelay: time.Millisecond, Logger: slog.New(slog.DiscardHandler),
		Deliver: func(_ context.Context, j Job) error {
			if j.Attempts == 0 && j.ID == "j0" {
				return errors.New("first try fails")
			}
			if got.Add(1) == 20 {
				close(done)
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); q.Run(ctx) }()
	for i := range 20 {
		if err := q.Enqueue(ctx, Job{ID: fmt.Sprintf("j%d", i), Kind: "k", Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("delivered %d of 20", got.Load())
	}
	cancel()
	wg.Wait()
	st, _ := q.Stats(context.Background())
	if st.Delivered != 20 || st.Retried != 1 || st.Pending != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestBackoff(t *testing.T) {
	q, _ := New(Config{Storage: NewMemoryStorage(), Deliver: func(context.Context, Job) error { return nil },
		BaseDelay: time.Second, MaxDelay: 10 * time.Second,
		Jitter: func(d time.Duration) time.Duration { return d - 1 }})
	for _, tt := range []struct {
		failures int
		lo, hi   time.Duration
	}{{1, 500 * time.Millisecond, time.Second}, {2, time.Second, 2 * time.Second},
		{3, 2 * time.Second, 4 * time.Second}, {4, 4 * time.Second, 8 * time.Second},
		{5, 5 * time.Second, 10 * time.Second}, {60, 5 * time.Second, 10 * time.Second}} {
		if d := q.Backoff(tt.failures); d < tt.lo || d >= tt.hi {
			t.Errorf("Backoff(%d) = %s, want in [%s, %s)", tt.failures, d, tt.lo, tt.hi)
		}
	}
}

func TestNewAndEnqueueErrors(t *testing.T) {
	if _, err := New(Config{}); err == nil || err.Error() != "outbound: config: Storage is required" {
		t.Errorf("got %v", err)
	}
	if _, err := New(Config{Storage: NewMemoryStorage()}); err == nil || err.Error() != "outbound: config: Deliver is required" {
		t.Errorf("got %v", err)
	}
	q, _ := New(Config{Storage: NewMemoryStorage(), Deliver: func(context.Context, Job) error { return nil }})
	if err := q.Enqueue(context.Background(), Job{Kind: "k"}); err == nil ||
		err.Error() != `outbound: enqueue: job needs an id and a kind (id "", kind "k")` {
		t.Errorf("got %v", err)
	}
	if _, err := NewRedisStorage(nil, ""); err == nil {
		t.Error("nil client accepted")
	}
}

// TestDeliverPanic checks that a panicking Deliver counts as a failed attempt and does not kill the worker.
func TestDeliverPanic(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	rec := &recorder{}
	var logs bytes.Buffer
	q := newQueue(t, NewMemoryStorage(), clk, func(context.Context, Job) error { panic("boom") }, rec, &logs)
	_ = q.Enqueue(context.Background(), Job{ID: "p", Kind: "k", Payload: []byte(`{}`)})
	q.RunOnce(context.Background(), 1)
	if !strings.Contains(logs.String(), "deliver panicked: boom") {
		t.Errorf("logs: %s", logs.String())
	}
}

// TestRedisStorageMoveTo: the jobs of a layout 1 queue (one partition) move, due times and buried jobs
// included, into a partitioned queue, and the old keys are gone.
func TestRedisStorageMoveTo(t *testing.T) {
	ctx := t.Context()
	opt, err := redis.ParseURL(testredis.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	src, err := NewRedisStorage(c, "kasse:outbound:")
	if err != nil {
		t.Fatal(err)
	}
	dst, err := NewPartitionedRedisStorage(c, "kasse:outbound:", []string{"1", "2", "3", "4"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_700_000_000, 0)
	for i, id := range []string{"a", "b", "c", "d", "e"} {
		if _, err := src.Add(ctx, Job{ID: id, Kind: "k"}, t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if err := src.Bury(ctx, Job{ID: "e", Kind: "k", LastError: "gone"}); err != nil {
		t.Fatal(err)
	}
	n, err := src.MoveTo(ctx, dst)
	if err != nil || n != 5 {
		t.Fatalf("MoveTo = %d, %v; want 5 jobs", n, err)
	}
	if l, err := src.Len(ctx); err != nil || l != 0 {
		t.Fatalf("old queue holds %d, %v", l, err)
	}
	if b, err := dst.Buried(ctx); err != nil || len(b) != 1 || b["e"].LastError != "gone" {
		t.Fatalf("buried after the move: %+v, %v", b, err)
	}
	jobs, err := dst.Claim(ctx, t0.Add(2*time.Second), 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"a", "b", "c"}) {
		t.Fatalf("due after the move: %q, want a, b, c", ids)
	}
}
