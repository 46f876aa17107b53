package host_test

import (
	"net/http"
	"testing"

	"github.com/kassehq/kasse/host/internal/testredis"
)

// TestTwoInstancesShareRedis runs two kasse instances on one Redis with callbacks lost: every session is
// settled by the reconcilers, and no session's payment details are fetched by both instances.
func TestTwoInstancesShareRedis(t *testing.T) {
	redisURL := testredis.Start(t)
	counter := &countingTransport{next: http.DefaultTransport, n: map[string]int{}}
	a := newStack(t, stackOptions{redisURL: redisURL, transport: counter})
	b := newStack(t, stackOptions{redisURL: redisURL, transport: counter, sim: a.sim, simURL: a.simURL})
	a.sim.SetCallbackMode(vippssimDrop)

	type created struct{ id, orderID string }
	var sessions []created
	for i := 0; i < 10; i++ {
		owner := a
		if i%2 == 1 {
			owner = b
		}
		id, orderID := owner.create(10000 + int64(i))
		if err := a.sim.Approve(orderID, "91234567"); err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, created{id, orderID})
	}
	for i, s := range sessions {
		// Either instance answers for every session.
		reader := b
		if i%2 == 1 {
			reader = a
		}
		reader.waitState(s.id, "authorized")
	}
	for _, s := range sessions {
		if n := counter.count("GET /ecomm/v2/payments/" + s.orderID + "/details"); n != 1 {
			t.Errorf("session %s: payment details fetched %d times, want exactly once", s.id, n)
		}
	}
}
