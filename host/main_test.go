package host_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: every instance a test starts is
// stopped (Serve returns) and closed in its cleanup, and nothing kasse starts may survive that.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// HTTP clients' idle keep-alive connections belong to the clients, not to kasse.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}
