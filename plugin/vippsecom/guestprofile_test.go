package main

import (
	"testing"

	"github.com/kassehq/kasse/plugin/plugintest"
)

// TestGuestCallProfile logs where the guest's work goes in each hot-path operation (the vectors of
// host/checkout's BenchmarkPluginBoundary): go test ./plugin/vippsecom -run GuestCallProfile -v -args -guestprofile
func TestGuestCallProfile(t *testing.T) {
	plugintest.ProfileVectors(t, "./plugin/vippsecom", goldenDir, "build_initiate-regular", "read_initiate-ok",
		"build_capture-partial", "read_capture-partial", "build_refund-partial", "read_refund-partial",
		"build_cancel-authorized", "read_cancel-after-partial-capture", "read_callback-reserve-express",
		"read_details-partly-captured", "shipping_options-oslo-norway-postcode")
}
