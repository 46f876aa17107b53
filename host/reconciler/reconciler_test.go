package reconciler

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/store"
)

type fakeRefresher struct {
	state payment.State
	err   error
	calls int
}

func (f *fakeRefresher) Refresh(_ context.Context, id string) (*payment.Session, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	created := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	return &payment.Session{ID: id, State: f.state, CreatedAt: created, ExpiresAt: created.Add(10 * time.Minute)}, nil
}

func TestPoll(t *testing.T) {
	start := time.Date(2026, 11, 25, 12, 0, 10, 0, time.UTC)
	cases := []struct {
		name string
		ref  fakeRefresher
		// next is when the session is due again, relative to start; 0 means it is no longer scheduled.
		next time.Duration
	}{
		{"still pending: polled again after a fifth of its age, at least Interval", fakeRefresher{state: payment.StatePending}, 2 * time.Second},
		{"settled: no more polls", fakeRefresher{state: payment.StateAuthorized}, 0},
		{"gone: no more polls", fakeRefresher{err: fmt.Errorf("get: %w", store.ErrNotFound)}, 0},
		{"provider failing: backs off to MaxInterval", fakeRefresher{err: errors.New("provider unreachable")}, 30 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			now := start
			st := store.NewMemory(store.WithNow(func() time.Time { return now }), store.WithJanitorInterval(0))
			defer st.Close()
			ctx := context.Background()
			if err := st.SchedulePoll(ctx, "s1", start); err != nil {
				t.Fatal(err)
			}
			r := New(st, &c.ref, Config{Interval: 2 * time.Second, MaxInterval: 30 * time.Second, Lease: time.Hour,
				Now: func() time.Time { return now }})
			if n := r.RunOnce(ctx); n != 1 || c.ref.calls != 1 {
				t.Fatalf("RunOnce polled %d sessions with %d refreshes, want 1 and 1", n, c.ref.calls)
			}
			// Nothing is due again until the expected time.
			for _, probe := range []time.Duration{c.next - time.Millisecond, c.next} {
				if c.next == 0 {
					probe = 2 * time.Hour // past the lease: a scheduled id would be back
				}
				now = start.Add(probe)
				ids, err := st.ClaimDuePolls(ctx, now, 10, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				wantDue := c.next != 0 && probe == c.next
				if (len(ids) == 1) != wantDue {
					t.Fatalf("at +%v: due %v, want due=%v", probe, ids, wantDue)
				}
			}
		})
	}
}
