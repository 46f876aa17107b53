// Package reconciler owns the polling that makes payment state converge without callbacks. Vipps sends
// each callback once and never retries, so every pending session is also polled through the provider's
// details endpoint: first a few seconds after initiation, then with back-off, until the payment settles or
// expires. The same schedule brings back every session whose Session.NextCheckAt is set: an operation
// in doubt (resent with its request id), notices not yet relayed, and the check after a money operation
// that kasse's amounts equal the provider's. The schedule lives in the session store, so several kasse instances sharing Redis split the work
// and never poll the same session at the same time.
package reconciler

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/store"
)

// Refresher asks the provider for a session's state; *checkout.Service satisfies it.
type Refresher interface {
	Refresh(ctx context.Context, id string) (*payment.Session, error)
}

// Config holds the reconciler's settings. Zero values take the defaults shown.
type Config struct {
	// Tick is how often the schedule is checked for due sessions. Default 500ms.
	Tick time.Duration
	// Interval is the shortest time between two polls of one session. Default 2s.
	Interval time.Duration
	// MaxInterval is the longest time between two polls of one session. Default 30s.
	MaxInterval time.Duration
	// Lease is how long a claimed poll is reserved for this instance before another may take it. Default 30s.
	Lease time.Duration
	// Batch is the most sessions claimed per tick. Default 32.
	Batch int
	// Workers is how many sessions are polled at once. Default 4.
	Workers int
	// Now is the clock. Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// OnPass, if set, is told after every pass how many sessions it polled and how long it took (metrics).
	OnPass func(polled int, d time.Duration)
}

// Reconciler polls pending sessions until they settle.
type Reconciler struct {
	store   store.Store
	refresh Refresher
	cfg     Config
	// lastRun is when the last pass ended (Unix nanoseconds), for the console's Health page.
	lastRun atomic.Int64
}

// LastRun is when the last pass of RunOnce ended; zero before the first.
func (r *Reconciler) LastRun() time.Time {
	if n := r.lastRun.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// New returns a Reconciler over the given store and refresher.
func New(st store.Store, r Refresher, cfg Config) *Reconciler {
	if cfg.Tick <= 0 {
		cfg.Tick = 500 * time.Millisecond
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.MaxInterval < cfg.Interval {
		cfg.MaxInterval = 30 * time.Second
		if cfg.MaxInterval < cfg.Interval {
			cfg.MaxInterval = cfg.Interval
		}
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 32
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Reconciler{store: st, refresh: r, cfg: cfg}
}

// Run polls until ctx is done.
func (r *Reconciler) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Tick)
	defer t.Stop()
	for {
		start := time.Now()
		n := r.RunOnce(ctx)
		if r.cfg.OnPass != nil {
			r.cfg.OnPass(n, time.Since(start))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce claims the sessions due now and polls each once. It returns how many it polled.
func (r *Reconciler) RunOnce(ctx context.Context) int {
	now := r.cfg.Now()
	ids, err := r.store.ClaimDuePolls(ctx, now, r.cfg.Batch, r.cfg.Lease)
	if err != nil {
		if ctx.Err() == nil {
			r.cfg.Logger.Error("reconciler: claim due polls", "err", err)
		}
		return 0
	}
	sem := make(chan struct{}, r.cfg.Workers)
	var wg sync.WaitGroup
	for _, id := range ids {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			r.poll(ctx, id)
		}()
	}
	wg.Wait()
	r.lastRun.Store(r.cfg.Now().UnixNano())
	return len(ids)
}

func (r *Reconciler) poll(ctx context.Context, id string) {
	sess, err := r.refresh.Refresh(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		_ = r.store.CancelPoll(ctx, id)
		return
	case err != nil && sess == nil:
		r.cfg.Logger.Warn("reconciler: status check failed; will retry", "session", id, "err", err)
		// Back off to the longest interval: the provider or the plugin is failing, and polling it every
		// couple of seconds would only add load. A pending session is never expired without an answer
		// from the provider, since the customer may have paid.
		_ = r.store.SchedulePoll(ctx, id, r.cfg.Now().Add(r.cfg.MaxInterval))
		return
	case err != nil:
		r.cfg.Logger.Info("reconciler: session not settled yet; will look again", "session", id, "err", err)
	}
	now := r.cfg.Now()
	switch {
	case sess.State == payment.StatePending && sess.InDoubt() == nil:
		err = r.store.SchedulePoll(ctx, id, now.Add(r.next(sess)))
	case sess.NextCheckAt.IsZero():
		// Nothing more to do. CancelPoll keeps the id if a concurrent write asked for a check.
		_ = r.store.CancelPoll(ctx, id)
		return
	default:
		// An operation in doubt or a check after a money operation: at its time, but not in a tight loop.
		at := sess.NextCheckAt
		if floor := now.Add(r.cfg.Interval); at.Before(floor) {
			at = floor
		}
		if op := sess.InDoubt(); op != nil && op.Attempts > 2 {
			// Back off while the provider keeps not answering.
			at = now.Add(min(r.cfg.MaxInterval, r.cfg.Interval<<min(op.Attempts, 8)))
		}
		err = r.store.SchedulePoll(ctx, id, at)
	}
	if err != nil {
		r.cfg.Logger.Error("reconciler: reschedule", "session", id, "err", err)
	}
}

// next is the delay before the session's next poll: a fifth of its age, between Interval and MaxInterval,
// and never after the session's expiry time (so it is expired promptly).
func (r *Reconciler) next(sess *payment.Session) time.Duration {
	now := r.cfg.Now()
	d := now.Sub(sess.CreatedAt) / 5
	if d < r.cfg.Interval {
		d = r.cfg.Interval
	}
	if d > r.cfg.MaxInterval {
		d = r.cfg.MaxInterval
	}
	if untilExpiry := sess.ExpiresAt.Sub(now); untilExpiry > 0 && untilExpiry < d {
		d = untilExpiry
	}
	return d
}
