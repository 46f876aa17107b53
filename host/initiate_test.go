package host_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// holdInitiate is a provider transport that holds the initiate request until released, or until its
// context is cancelled.
type holdInitiate struct {
	arrived, release chan struct{}
}

func (h *holdInitiate) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == "POST" && strings.HasSuffix(req.URL.Path, "/ecomm/v2/payments") {
		close(h.arrived)
		select {
		case <-h.release:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestInitiateOutlivesItsCaller: a shop that disconnects while kasse sends the initiate (or an inbox
// worker stopped by a shutdown) does not cancel it: the session stored before the initiate was sent ends
// up initiated, not failed, so the platform is not told that a payment Vipps holds has failed.
func TestInitiateOutlivesItsCaller(t *testing.T) {
	hold := &holdInitiate{arrived: make(chan struct{}), release: make(chan struct{})}
	s := newStack(t, stackOptions{transport: hold})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", s.baseURL+"/v1/checkouts",
			strings.NewReader(`{"merchant":"demo","reference":"order-77","amount":49900,"currency":"NOK",`+
				`"description":"Socks","returnUrl":"http://shop.test/orders/77"}`))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	<-hold.arrived
	cancel() // the shop gives up while the initiate is on its way
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v, want its own cancellation", err)
	}
	// Give the server time to see the disconnect; the outcome must not depend on it.
	time.AfterFunc(300*time.Millisecond, func() { close(hold.release) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		sess, err := s.kasse.Service.Lookup(t.Context(), "demo", "order-77")
		if err == nil && sess.RedirectURL != "" && sess.State == "pending" {
			return
		}
		if err == nil && sess.State != "pending" {
			t.Fatalf("session %s went %s: %+v", sess.ID, sess.State, sess.History)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no initiated session: %v %+v", err, sess)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
