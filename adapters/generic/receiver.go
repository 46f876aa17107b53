package generic

import (
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/kassehq/kasse/adapters"
)

// Receiver is the shop's side of kasse's status updates, for a custom shop written in Go, and the
// reference for one written in anything else. It is an http.Handler for the URL configured as the
// merchant's platform baseUrl: it checks the Kasse-Signature, drops a delivery it has already seen (by
// its delivery id: kasse delivers at least once), skips an update older than one it already applied
// for the same session (by sequence number: deliveries can arrive out of order), and hands every other
// update to Apply. Because each update carries the session's absolute totals, applying the newest one
// is always right; adding up deltas would count a resent refund twice.
//
// It keeps what it has seen in memory, which is enough for a demo; a real shop keeps the delivery ids and
// the last sequence per order in its own database, in the same transaction as the order change.
type Receiver struct {
	// Secret is the merchant's platform webhookSecret, which kasse signs updates with.
	Secret []byte
	// Apply changes the shop's order for one new update. An error makes the Receiver answer 503, and
	// kasse delivers the update again later.
	Apply func(r *http.Request, u adapters.StatusUpdate) error
	// Now is the clock for the signature's timestamp check. Default time.Now.
	Now func() time.Time

	mu   sync.Mutex
	seen map[string]bool
	last map[string]int64
}

// ServeHTTP implements http.Handler. It answers 200 for an update applied, a duplicate or a stale one,
// 401 for a bad signature, 400 for a body that is not a status update, and 503 when Apply fails.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	sig, err := parseSignature(r.Header.Get(SignatureHeader))
	now := time.Now
	if rc.Now != nil {
		now = rc.Now
	}
	if err != nil || now().Sub(sig.at).Abs() > Tolerance || !rc.signed(sig, body) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var st statusBody
	if err := json.Unmarshal(body, &st); err != nil || st.Type != "status" || st.Session == "" {
		http.Error(w, "not a kasse status update", http.StatusBadRequest)
		return
	}
	u := st.StatusUpdate
	rc.mu.Lock()
	defer rc.mu.Unlock() // one update at a time keeps the sequence check and Apply together
	if rc.seen == nil {
		rc.seen, rc.last = map[string]bool{}, map[string]int64{}
	}
	switch {
	case u.DeliveryID != "" && rc.seen[u.DeliveryID]:
		w.Write([]byte("duplicate\n"))
		return
	case u.Sequence > 0 && u.Sequence <= rc.last[u.Session]:
		// A newer update, with newer totals, was applied already.
		rc.seen[u.DeliveryID] = true
		w.Write([]byte("stale\n"))
		return
	}
	if err := rc.Apply(r, u); err != nil {
		http.Error(w, "not applied: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	if u.DeliveryID != "" {
		rc.seen[u.DeliveryID] = true
	}
	rc.last[u.Session] = max(rc.last[u.Session], u.Sequence)
	w.Write([]byte("applied\n"))
}

func (rc *Receiver) signed(sig signature, body []byte) bool {
	want := []byte(mac(rc.Secret, sig.ts, body))
	for _, v1 := range sig.v1s {
		if hmac.Equal([]byte(v1), want) {
			return true
		}
	}
	return false
}
