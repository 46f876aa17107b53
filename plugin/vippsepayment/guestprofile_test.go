package main

import (
	"testing"

	"github.com/kassehq/kasse/plugin/plugintest"
)

// TestGuestCallProfile logs where the guest's work goes in each hot-path operation (the vectors of
// host/checkout's BenchmarkPluginBoundary): go test ./plugin/vippsepayment -run GuestCallProfile -v -args -guestprofile
func TestGuestCallProfile(t *testing.T) {
	plugintest.ProfileVectors(t, "./plugin/vippsepayment", goldenDir, "build_initiate-push-message",
		"read_initiate-web-redirect", "build_capture-partial", "read_capture-partial", "build_refund-partial",
		"read_refund-partial", "build_cancel-authorized", "read_cancel-authorized", "read_callback-authorized",
		"read_details-partly-captured")
}
