package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/redis/go-redis/v9"
)

// serverAnswer is an error answer from Redis, as go-redis returns it.
type serverAnswer string

func (e serverAnswer) Error() string { return string(e) }
func (serverAnswer) RedisError()     {}

// TestMark: failures that mean "Redis cannot serve this now" become ErrUnavailable (503 with Retry-After);
// answers that are the caller's business stay as they are (and surface as bugs if unexpected).
func TestMark(t *testing.T) {
	var _ redis.Error = serverAnswer("")
	for _, tc := range []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"nil", nil, false},
		{"no such key", redis.Nil, false},
		{"dial refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{"deadline", context.DeadlineExceeded, true},
		{"loading", serverAnswer("LOADING Redis is loading the dataset in memory"), true},
		{"cluster down", serverAnswer("CLUSTERDOWN The cluster is down"), true},
		{"try again", serverAnswer("TRYAGAIN Multiple keys request during rehashing of slot"), true},
		{"replica", serverAnswer("READONLY You can't write against a read only replica."), true},
		{"redirect left", serverAnswer("MOVED 3999 127.0.0.1:6381"), true},
		{"ask left", serverAnswer("ASK 3999 127.0.0.1:6381"), true},
		{"no replicas", serverAnswer("NOREPLICAS Not enough good replicas to write."), true},
		{"busy script", serverAnswer("BUSY Redis is busy running a script."), true},
		{"script error", serverAnswer("ERR user_script:1: something"), false},
		{"wrong type", serverAnswer("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
		{"cross slot", serverAnswer("CROSSSLOT Keys in request don't hash to the same slot"), false},
		{"already marked", fmt.Errorf("x: %w", ErrUnavailable), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mark(tc.err)
			if errors.Is(got, ErrUnavailable) != tc.unavailable {
				t.Errorf("mark(%v) = %v; unavailable %t, want %t", tc.err, got, !tc.unavailable, tc.unavailable)
			}
			if tc.err != nil && !errors.Is(got, tc.err) {
				t.Errorf("mark(%v) = %v lost its cause", tc.err, got)
			}
		})
	}
}
