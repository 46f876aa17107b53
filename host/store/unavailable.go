package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrUnavailable is returned (wrapped) when the store cannot be reached, answers too slowly, or is
// failing over. A write that failed so may still have happened (Redis took it, the answer was lost, or
// it was not replicated in time: ErrNotReplicated): the caller acts on nothing it wrote (sends nothing
// to a provider, tells no platform), answers "try again later" (the HTTP API answers 503 with
// Retry-After), and leaves it to what the write scheduled (the reconciler) to finish it if it landed.
var ErrUnavailable = errors.New("session store unavailable")

// ErrNotReplicated (which is also ErrUnavailable) is returned, wrapped, by a write that the primary
// took but that fewer replicas than RedisOptions.WaitReplicas acknowledged in time: a failover now could
// lose it, so it must not be acted on.
var ErrNotReplicated = fmt.Errorf("%w: the write is on the primary but not yet on its replicas", ErrUnavailable)

// DefaultOpTimeout bounds one Redis command when RedisOptions.OpTimeout is zero.
const DefaultOpTimeout = 2 * time.Second

// unavailableError marks a Redis failure as ErrUnavailable while keeping the cause visible to errors.Is
// (context.DeadlineExceeded, net errors).
type unavailableError struct{ err error }

func (e *unavailableError) Error() string   { return ErrUnavailable.Error() + ": " + e.err.Error() }
func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// bounded is a go-redis hook that gives every command a deadline and marks the failures that mean "the
// store is not there" with ErrUnavailable. Server answers that are the caller's business (redis.Nil, a
// script's error, NOSCRIPT, which go-redis itself handles) pass through unchanged.
type bounded struct{ timeout time.Duration }

func (h bounded) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, h.timeout)
		defer cancel()
		conn, err := next(ctx, network, addr)
		return conn, mark(err)
	}
}

func (h bounded) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		ctx, cancel := context.WithTimeout(ctx, h.timeout)
		defer cancel()
		err := mark(next(ctx, cmd))
		if err != nil && cmd.Err() != nil {
			cmd.SetErr(err)
		}
		return err
	}
}

func (h bounded) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		ctx, cancel := context.WithTimeout(ctx, h.timeout)
		defer cancel()
		err := mark(next(ctx, cmds))
		for _, c := range cmds {
			if ce := mark(c.Err()); ce != nil {
				c.SetErr(ce)
			}
		}
		return err
	}
}

// mark wraps err in an *unavailableError when it means the store cannot serve now.
func mark(err error) error {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, ErrUnavailable) {
		return err
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		// A server answer. Only the ones that say "not now" mean unavailable: among them a redirect
		// still pointing elsewhere after go-redis's own redirects (a failover still settling, or a write
		// sent to a node that has just become a replica), and a primary refusing writes for want of
		// replicas (min-replicas-to-write).
		msg := rerr.Error()
		for _, p := range []string{"LOADING", "CLUSTERDOWN", "TRYAGAIN", "READONLY", "MASTERDOWN", "BUSY",
			"MOVED", "ASK", "NOREPLICAS"} {
			if strings.HasPrefix(msg, p) {
				return &unavailableError{err: err}
			}
		}
		return err
	}
	return &unavailableError{err: err}
}
