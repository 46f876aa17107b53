package store

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrUnavailable is returned (wrapped) when the store cannot be reached, answers too slowly, or is
// failing over. Nothing is known to have been written by the failed call; the caller should answer
// "try again later" (the HTTP API answers 503 with Retry-After) rather than treat it as a bug.
var ErrUnavailable = errors.New("session store unavailable")

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
		// A server answer. Only the ones that say "not now" mean unavailable.
		msg := rerr.Error()
		for _, p := range []string{"LOADING", "CLUSTERDOWN", "TRYAGAIN", "READONLY", "MASTERDOWN", "BUSY"} {
			if strings.HasPrefix(msg, p) {
				return &unavailableError{err: err}
			}
		}
		return err
	}
	return &unavailableError{err: err}
}
