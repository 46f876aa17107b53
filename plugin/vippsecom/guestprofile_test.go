package main

import (
	"testing"

	"github.com/kassehq/kasse/plugin/plugintest"
)

// TestGuestCallProfile holds each hot-path operation (the vectors of host/checkout's BenchmarkPluginBoundary)
// to the guest heap allocations it makes now; to see where a call's work goes:
// go test ./plugin/vippsecom -run GuestCallProfile -v -args -guestprofile
func TestGuestCallProfile(t *testing.T) {
	plugintest.ProfileVectors(t, "./plugin/vippsecom", goldenDir,
		plugintest.AllocBudget{Vector: "build_initiate-regular", MaxMallocs: 1},
		plugintest.AllocBudget{Vector: "read_initiate-ok", MaxMallocs: 4},
		plugintest.AllocBudget{Vector: "build_capture-partial", MaxMallocs: 3},
		plugintest.AllocBudget{Vector: "read_capture-partial", MaxMallocs: 4},
		plugintest.AllocBudget{Vector: "build_refund-partial", MaxMallocs: 3},
		plugintest.AllocBudget{Vector: "read_refund-partial", MaxMallocs: 4},
		plugintest.AllocBudget{Vector: "build_cancel-authorized", MaxMallocs: 3},
		plugintest.AllocBudget{Vector: "read_cancel-after-partial-capture", MaxMallocs: 4},
		plugintest.AllocBudget{Vector: "read_callback-reserve-express", MaxMallocs: 5},
		plugintest.AllocBudget{Vector: "read_details-partly-captured", MaxMallocs: 5},
		plugintest.AllocBudget{Vector: "shipping_options-oslo-norway-postcode", MaxMallocs: 5})
}
