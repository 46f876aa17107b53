package generic_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/adapters/generic"
	"github.com/kassehq/kasse/host/payment"
)

// TestReceiverDropsDuplicatesAndStaleUpdates: the updates of one session delivered twice and out of
// order reach Apply once each at most, never older after newer, and the order ends at the final totals.
func TestReceiverDropsDuplicatesAndStaleUpdates(t *testing.T) {
	secret := "whsec-test"
	m := adapters.Merchant{ID: "demo", Platform: &adapters.Platform{Kind: generic.ID, BaseURL: "http://127.0.0.1/kasse",
		WebhookSecret: adapters.Secret(secret)}}
	var mu sync.Mutex
	var applied []int64
	var totals payment.Amounts
	rc := &generic.Receiver{Secret: []byte(secret), Apply: func(_ *http.Request, u adapters.StatusUpdate) error {
		mu.Lock()
		defer mu.Unlock()
		applied = append(applied, u.Sequence)
		totals = *u.Totals
		return nil
	}}
	srv := httptest.NewServer(rc)
	defer srv.Close()

	update := func(seq int64, status adapters.Status, captured, refunded int64) adapters.StatusUpdate {
		return adapters.StatusUpdate{Status: status, Reference: "1001", Session: "ks", ProviderReference: "ks",
			Currency: "NOK", DeliveryID: "ks." + string(rune('0'+seq)), Sequence: seq,
			Totals: &payment.Amounts{Authorized: 10000, Captured: captured, Refunded: refunded}}
	}
	paid := update(1, adapters.StatusPaid, 0, 0)
	captured := update(2, adapters.StatusCaptured, 10000, 0)
	refund1 := update(3, adapters.StatusRefunded, 10000, 3000)
	refund2 := update(4, adapters.StatusRefunded, 10000, 5000)
	deliveries := []struct {
		u    adapters.StatusUpdate
		want string
	}{
		{paid, "applied\n"},
		{captured, "applied\n"},
		{captured, "duplicate\n"}, // a resend
		{refund2, "applied\n"},    // overtook refund1
		{refund1, "stale\n"},      // late: its totals are older than refund2's
		{refund1, "duplicate\n"},
	}
	for i, d := range deliveries {
		reqs, err := generic.Adapter{}.Render(m, d.u)
		if err != nil || len(reqs) != 1 {
			t.Fatalf("render: %v %d", err, len(reqs))
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(reqs[0].Body))
		req.Header = reqs[0].Header
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || b.String() != d.want {
			t.Fatalf("delivery %d (seq %d): %d %q, want %q", i, d.u.Sequence, resp.StatusCode, b.String(), d.want)
		}
	}
	if want := []int64{1, 2, 4}; len(applied) != len(want) || applied[0] != 1 || applied[1] != 2 || applied[2] != 4 {
		t.Fatalf("applied sequences %v, want %v", applied, want)
	}
	if totals.Refunded != 5000 || totals.Captured != 10000 {
		t.Fatalf("final totals %+v", totals)
	}

	// A forged update changes nothing.
	req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader([]byte(`{"type":"status"}`)))
	req.Header.Set(generic.SignatureHeader, "t=1,v1="+string(bytes.Repeat([]byte("0"), 64)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged: %d", resp.StatusCode)
	}
}
