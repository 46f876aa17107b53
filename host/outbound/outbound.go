// Package outbound owns kasse's durable queue of outgoing work: status updates to webshop platforms (and,
// reusing the same machinery, webhook deliveries accepted now and processed later). A job is stored before
// Enqueue returns, handed to a Deliver function by a bounded set of workers, retried with exponential
// back-off and jitter while it fails, and either deleted once delivered or given up on visibly after
// MaxAttempts: an error log line, the GivenUp counter in Stats and the OnGiveUp callback, which the host
// uses to record the failure in the session's history.
//
// The queue keeps no job in memory between attempts: everything lives in a Storage. MemoryStorage is the
// embedded default for a single process and loses its jobs when the process stops; RedisStorage keeps them
// in a sorted set of due times and a hash of jobs, so they survive a restart and are shared by every kasse
// instance using the same Redis and prefix. A job claimed by a worker is leased: if that worker's process
// dies, the job becomes due again when the lease runs out and another instance delivers it.
//
// Delivery is at least once. Deliver must be idempotent or harmless to repeat.
//
// The package knows nothing about platforms or payments; it must not import the adapters or the checkout
// service.
package outbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kassehq/kasse/host/internal/redact"
)

// Job is one unit of outgoing work.
type Job struct {
	// ID identifies the job. Enqueueing a job whose ID is already queued changes nothing, so a caller that
	// derives the ID from what the job does (merchant, order, status) gets each update queued once.
	ID string `json:"id"`
	// Kind says which Deliver function the job is for, e.g. "platform-status"; it appears in logs.
	Kind string `json:"kind"`
	// Merchant is the merchant the job concerns, for logs and for OnGiveUp.
	Merchant string `json:"merchant,omitempty"`
	// Session is the checkout session the job concerns, if any, for logs and for OnGiveUp.
	Session string `json:"session,omitempty"`
	// Payload is the job's data, opaque to the queue.
	Payload json.RawMessage `json:"payload"`
	// Attempts counts the deliveries tried so far. The queue sets it.
	Attempts int `json:"attempts"`
	// CreatedAt is when the job was first enqueued. The queue sets it.
	CreatedAt time.Time `json:"createdAt"`
	// LastError is the error of the last failed attempt, for people. The queue sets it.
	LastError string `json:"lastError,omitempty"`
}

// Storage keeps jobs between attempts. Implementations are safe for concurrent use; RedisStorage is also
// safe across processes.
type Storage interface {
	// Add stores job, due at due, unless a job with its ID is already stored. It reports whether it
	// added the job.
	Add(ctx context.Context, job Job, due time.Time) (added bool, err error)
	// Claim takes up to limit jobs due at or before now, earliest first, and makes each due again at
	// now+lease, so a job whose worker dies is retried. Each due job goes to one caller per lease.
	Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]Job, error)
	// Retry stores job (its Attempts and LastError changed) due at due.
	Retry(ctx context.Context, job Job, due time.Time) error
	// Done removes a delivered job.
	Done(ctx context.Context, id string) error
	// Bury removes a job that was given up on from the schedule and keeps it, with its last error, for
	// inspection.
	Bury(ctx context.Context, job Job) error
	// Len returns the number of jobs waiting (due now or later), not counting buried ones.
	Len(ctx context.Context) (int, error)
}

// PermanentError marks a delivery failure that retrying cannot fix (the platform refused the request
// with a 4xx, the merchant has no platform configured). The queue gives the job up at once.
type PermanentError struct{ Err error }

// Error returns "permanent: " and the wrapped error.
func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err in a *PermanentError. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// Config holds a Queue's settings and collaborators. Storage and Deliver are required.
type Config struct {
	// Storage keeps the jobs.
	Storage Storage
	// Deliver performs one attempt of a job. A nil error means delivered; an error wrapping a
	// *PermanentError gives the job up at once; any other error is retried.
	Deliver func(ctx context.Context, job Job) error
	// OnGiveUp is called once for a job that is given up on, after it is buried, with the last error.
	// Optional.
	OnGiveUp func(ctx context.Context, job Job, err error)
	// MaxAttempts is how many attempts a job gets before it is given up on. Default 10.
	MaxAttempts int
	// BaseDelay is the delay before the second attempt; each further one doubles it. Default 2s.
	BaseDelay time.Duration
	// MaxDelay caps the delay between two attempts. Default 10m.
	MaxDelay time.Duration
	// Workers is how many deliveries run at once in this process. Default 2.
	Workers int
	// PollInterval is how often an idle worker looks for due jobs. Enqueue also wakes a worker.
	// Default 500ms.
	PollInterval time.Duration
	// AttemptTimeout bounds one delivery attempt. Default 30s.
	AttemptTimeout time.Duration
	// Lease is how long a claimed job is hidden from other workers; it must exceed AttemptTimeout.
	// Default AttemptTimeout + 30s.
	Lease time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Jitter returns a random duration in [0, d). Default: math/rand/v2.
	Jitter func(d time.Duration) time.Duration
	// Logger receives one line per retry and per give-up. Default slog.Default().
	Logger *slog.Logger
}

// Stats counts what this Queue value did since it was created. Pending is read from the storage.
type Stats struct {
	Enqueued  int64 `json:"enqueued"`
	Delivered int64 `json:"delivered"`
	Retried   int64 `json:"retried"`
	GivenUp   int64 `json:"givenUp"`
	Pending   int   `json:"pending"`
}

// Queue is a durable queue with retrying workers. It is safe for concurrent use.
type Queue struct {
	cfg  Config
	wake chan struct{}

	enqueued, delivered, retried, givenUp atomic.Int64
}

// New returns a Queue, or an error naming the first missing collaborator.
func New(cfg Config) (*Queue, error) {
	switch {
	case cfg.Storage == nil:
		return nil, errors.New("outbound: config: Storage is required")
	case cfg.Deliver == nil:
		return nil, errors.New("outbound: config: Deliver is required")
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.BaseDelay <= 0 {
		cfg.BaseDelay = 2 * time.Second
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = 10 * time.Minute
	}
	if cfg.MaxDelay < cfg.BaseDelay {
		cfg.MaxDelay = cfg.BaseDelay
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 30 * time.Second
	}
	if cfg.Lease <= cfg.AttemptTimeout {
		cfg.Lease = cfg.AttemptTimeout + 30*time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Jitter == nil {
		cfg.Jitter = func(d time.Duration) time.Duration {
			if d <= 0 {
				return 0
			}
			return rand.N(d)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Queue{cfg: cfg, wake: make(chan struct{}, 1)}, nil
}

// Enqueue stores job, due now. A job with an ID already queued is left as it is. job.ID and job.Kind are
// required.
func (q *Queue) Enqueue(ctx context.Context, job Job) error {
	if job.ID == "" || job.Kind == "" {
		return fmt.Errorf("outbound: enqueue: job needs an id and a kind (id %q, kind %q)", job.ID, job.Kind)
	}
	now := q.cfg.Now().UTC()
	job.Attempts, job.LastError, job.CreatedAt = 0, "", now
	added, err := q.cfg.Storage.Add(ctx, job, now)
	if err != nil {
		return fmt.Errorf("outbound: enqueue job[%s]: %w", job.ID, err)
	}
	if added {
		q.enqueued.Add(1)
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// Stats returns the counters and the number of waiting jobs.
func (q *Queue) Stats(ctx context.Context) (Stats, error) {
	n, err := q.cfg.Storage.Len(ctx)
	st := Stats{Enqueued: q.enqueued.Load(), Delivered: q.delivered.Load(), Retried: q.retried.Load(),
		GivenUp: q.givenUp.Load(), Pending: n}
	if err != nil {
		return st, fmt.Errorf("outbound: stats: %w", err)
	}
	return st, nil
}

// Run runs the workers until ctx is done and waits for the attempts in flight to end.
func (q *Queue) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range q.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.work(ctx)
		}()
	}
	wg.Wait()
}

func (q *Queue) work(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-q.wake:
		}
		// Drain what is due, then sleep.
		for ctx.Err() == nil {
			n, err := q.RunOnce(ctx, 1)
			if err != nil {
				q.cfg.Logger.Warn("outbound: claim due jobs", "err", err)
			}
			if n == 0 || err != nil {
				break
			}
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(q.cfg.PollInterval)
	}
}

// RunOnce claims up to limit due jobs and attempts each once, in this goroutine. It returns how many it
// attempted. Run calls it; tests call it to step the queue without goroutines.
func (q *Queue) RunOnce(ctx context.Context, limit int) (int, error) {
	jobs, err := q.cfg.Storage.Claim(ctx, q.cfg.Now().UTC(), limit, q.cfg.Lease)
	if err != nil {
		return 0, fmt.Errorf("outbound: claim: %w", err)
	}
	for _, job := range jobs {
		q.attempt(ctx, job)
	}
	return len(jobs), nil
}

func (q *Queue) attempt(ctx context.Context, job Job) {
	actx, cancel := context.WithTimeout(ctx, q.cfg.AttemptTimeout)
	err := q.deliver(actx, job)
	cancel()
	// Bookkeeping must happen even when ctx was cancelled mid-attempt.
	bctx := context.WithoutCancel(ctx)
	job.Attempts++
	log := q.cfg.Logger.With("job", job.ID, "kind", job.Kind, "merchant", job.Merchant,
		"session", job.Session, "attempt", job.Attempts)
	if err == nil {
		if derr := q.cfg.Storage.Done(bctx, job.ID); derr != nil {
			log.Warn("outbound: remove delivered job", "err", derr)
		}
		q.delivered.Add(1)
		log.Info("outbound: delivered")
		return
	}
	if ctx.Err() != nil && !errors.As(err, new(*PermanentError)) {
		// Shutting down: leave the job claimed; the lease brings it back, attempt not counted.
		return
	}
	// Stored in the queue for people; platform URLs may carry credentials in their query.
	job.LastError = redact.String(err.Error())
	var perm *PermanentError
	if errors.As(err, &perm) || job.Attempts >= q.cfg.MaxAttempts {
		if berr := q.cfg.Storage.Bury(bctx, job); berr != nil {
			log.Warn("outbound: bury job", "err", berr)
		}
		q.givenUp.Add(1)
		log.Error("outbound: gave up on job", "err", err, "permanent", perm != nil,
			"enqueuedAt", job.CreatedAt)
		if q.cfg.OnGiveUp != nil {
			q.cfg.OnGiveUp(bctx, job, err)
		}
		return
	}
	delay := q.Backoff(job.Attempts)
	if rerr := q.cfg.Storage.Retry(bctx, job, q.cfg.Now().UTC().Add(delay)); rerr != nil {
		log.Warn("outbound: reschedule job", "err", rerr)
	}
	q.retried.Add(1)
	log.Warn("outbound: delivery failed, will retry", "err", err, "in", delay)
}

// deliver calls Deliver, turning a panic into an error so that one bad job cannot stop a worker.
func (q *Queue) deliver(ctx context.Context, job Job) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("outbound: deliver panicked: %v", v)
		}
	}()
	return q.cfg.Deliver(ctx, job)
}

// Backoff returns the delay after the given number of failed attempts: BaseDelay doubled per earlier
// failure, capped at MaxDelay, of which the upper half is random ("equal jitter"), so that many jobs
// failing together do not retry together.
func (q *Queue) Backoff(failures int) time.Duration {
	d := q.cfg.BaseDelay
	for i := 1; i < failures && d < q.cfg.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, q.cfg.MaxDelay)
	half := d / 2
	return half + q.cfg.Jitter(d-half)
}
