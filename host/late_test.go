package host_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kassehq/kasse/examples/vippssim"
)

// TestLateReservationIsReleased: the customer approves after kasse has expired the session (the shop was
// told the payment did not happen). kasse records the reservation and cancels it at Vipps at once, so the
// customer's money is not held for an order nobody will ship.
func TestLateReservationIsReleased(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		s := newStack(t, stackOptions{redisURL: redisURL, pendingTimeout: "1s"})
		s.sim.SetCallbackMode(vippssimDrop)
		id, orderID := s.create(15000)
		s.waitState(id, "expired")

		s.sim.SetCallbackMode(vippssim.CallbackDeliver)
		if err := s.sim.Approve(orderID, "91234567"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(8 * time.Second)
		for {
			res := s.get(id)
			if res.body["state"] != "expired" {
				t.Fatalf("a late approval revived the session: %s", res.raw)
			}
			if res.body["cancelledAmount"] == float64(15000) {
				if !strings.Contains(string(res.raw), "late reservation released") {
					t.Fatalf("release not in the history: %s", res.raw)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("late reservation not released: %s", res.raw)
			}
			time.Sleep(25 * time.Millisecond)
		}
		snap, ok := s.sim.Payment(orderID)
		if !ok || snap.RemainingToCapture != 0 {
			t.Fatalf("the reservation is still open at Vipps: %+v", snap)
		}
	})
}
