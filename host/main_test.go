package host_test

import (
	"fmt"
	"net/http"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: every instance a test starts is
// stopped (Serve returns) and closed in its cleanup, and nothing kasse starts may survive that, idle
// keep-alive connections of its outbound clients included.
func TestMain(m *testing.M) {
	code := m.Run()
	// The tests' own clients (http.DefaultClient) keep idle connections; they are not kasse's.
	http.DefaultClient.CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: goroutines outlived the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
