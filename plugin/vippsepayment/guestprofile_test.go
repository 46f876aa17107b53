package main

import (
	"testing"

	"github.com/kassehq/kasse/plugin/plugintest"
)

// TestGuestCallProfile holds each hot-path operation (the vectors of host/checkout's BenchmarkPluginBoundary)
// to the guest heap allocations it makes now; to see where a call's work goes:
// go test ./plugin/vippsepayment -run GuestCallProfile -v -args -guestprofile
func TestGuestCallProfile(t *testing.T) {
	plugintest.ProfileVectors(t, "./plugin/vippsepayment", goldenDir,
		plugintest.AllocBudget{Vector: "build_initiate-push-message", MaxMallocs: 3},
		plugintest.AllocBudget{Vector: "read_initiate-web-redirect", MaxMallocs: 4},
		plugintest.AllocBudget{Vector: "build_capture-partial", MaxMallocs: 3},
		plugintest.AllocBudget{Vector: "read_capture-partial", MaxMallocs: 4},
		plugintest.AllocBudget{Vector: "build_refund-partial", MaxMallocs: 3},
		plugintest.AllocBudget{Vector: "read_refund-partial", MaxMallocs: 4},
		plugintest.AllocBudget{Vector: "build_cancel-authorized", MaxMallocs: 2},
		plugintest.AllocBudget{Vector: "read_cancel-authorized", MaxMallocs: 4},
		plugintest.AllocBudget{Vector: "read_callback-authorized", MaxMallocs: 6},
		plugintest.AllocBudget{Vector: "read_details-partly-captured", MaxMallocs: 5})
}
