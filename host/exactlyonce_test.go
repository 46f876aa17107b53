package host_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kassehq/kasse/host/internal/testredis"
)

// answerLoser passes requests on to the provider and, while armed for a path suffix, throws the answer
// away: the provider carried the request out, kasse never hears so. That is the incident where Vipps
// froze, kasse timed out, and the queued captures were carried out later.
type answerLoser struct {
	next   http.RoundTripper
	suffix atomic.Value // string; "" disarms
	lost   atomic.Int64
}

func (l *answerLoser) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	if s, _ := l.suffix.Load().(string); s != "" && strings.HasSuffix(req.URL.Path, s) && err == nil {
		resp.Body.Close()
		l.lost.Add(1)
		return nil, errors.New("connection reset by peer (test: the answer was lost)")
	}
	return resp, err
}

func operations(res result) []map[string]any {
	ops, _ := res.body["operations"].([]any)
	out := make([]map[string]any, 0, len(ops))
	for _, o := range ops {
		m, _ := o.(map[string]any)
		out = append(out, m)
	}
	return out
}

// TestLostCaptureAnswerIsSettledNotRepeated: a capture whose answer is lost is in doubt; the shop hears
// that the outcome is not known (never "nothing changed"), no second capture can start meanwhile, and the
// shop's retry with the same Idempotency-Key settles the first one with its request id instead of
// capturing again. The provider ends up with exactly what kasse shows.
func TestLostCaptureAnswerIsSettledNotRepeated(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		loser := &answerLoser{next: http.DefaultTransport}
		s := newStack(t, stackOptions{redisURL: redisURL, transport: loser})
		id, orderID := s.createAuthorized(10000)

		loser.suffix.Store("/capture")
		res := s.do("POST", "/v1/checkouts/"+id+"/capture", map[string]any{"amount": 4000}, "Idempotency-Key", "ship-1")
		expectProblem(t, res, http.StatusGatewayTimeout, "")
		if res.body["type"] != "https://kasse.dev/problems/outcome-unknown" || res.body["session"] != id ||
			res.body["operation"] == nil || res.header.Get("Retry-After") == "" {
			t.Fatalf("a lost answer must say the outcome is unknown, with session and operation: %s", res.raw)
		}
		if strings.Contains(string(res.raw), "nothing was changed") {
			t.Fatalf("a lost answer must never claim nothing changed: %s", res.raw)
		}
		if snap, _ := s.sim.Payment(orderID); snap.Captured != 4000 {
			t.Fatalf("the provider captured %d; the test needs the capture to have happened", snap.Captured)
		}
		got := s.get(id)
		ops := operations(got)
		if last := ops[len(ops)-1]; last["kind"] != "capture" || last["status"] != "in-doubt" || last["id"] != res.body["operation"] {
			t.Fatalf("the session must show the capture in doubt: %s", got.raw)
		}

		// Another capture, without a key, must not go out while the first is in doubt.
		other := s.do("POST", "/v1/checkouts/"+id+"/capture", map[string]any{"amount": 1000})
		expectProblem(t, other, http.StatusConflict, "")
		if other.body["type"] != "https://kasse.dev/problems/operation-in-doubt" {
			t.Fatalf("want operation-in-doubt: %s", other.raw)
		}

		// The shop retries with its key: kasse sends the same request id, the provider answers with the
		// first result, and kasse applies it once.
		loser.suffix.Store("")
		retry := s.do("POST", "/v1/checkouts/"+id+"/capture", map[string]any{"amount": 4000}, "Idempotency-Key", "ship-1")
		if retry.status != http.StatusOK {
			t.Fatalf("retry: %d %s", retry.status, retry.raw)
		}
		expectAmounts(t, retry, "state=captured amount=10000 authorized=10000 captured=4000 refunded=0")
		if snap, _ := s.sim.Payment(orderID); snap.Captured != 4000 {
			t.Fatalf("the provider captured %d after the retry, want 4000 (applied once)", snap.Captured)
		}
		// And the same request again is the same answer, replayed.
		again := s.do("POST", "/v1/checkouts/"+id+"/capture", map[string]any{"amount": 4000}, "Idempotency-Key", "ship-1")
		if again.status != http.StatusOK || again.header.Get("Idempotent-Replayed") != "true" || string(again.raw) != string(retry.raw) {
			t.Fatalf("replay: %d %q %s\nfirst: %s", again.status, again.header.Get("Idempotent-Replayed"), again.raw, retry.raw)
		}
	})
}

// TestInDoubtCaptureIsSettledByTheReconciler: with no retry from the shop, the reconciler sends the
// operation in doubt again with its request id and the session converges on what the provider did.
func TestInDoubtCaptureIsSettledByTheReconciler(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		loser := &answerLoser{next: http.DefaultTransport}
		s := newStack(t, stackOptions{redisURL: redisURL, transport: loser})
		id, orderID := s.createAuthorized(10000)
		loser.suffix.Store("/capture")
		expectProblem(t, s.do("POST", "/v1/checkouts/"+id+"/capture", nil), http.StatusGatewayTimeout, "")
		loser.suffix.Store("")
		res := s.waitState(id, "captured")
		expectAmounts(t, res, "state=captured amount=10000 authorized=10000 captured=10000 refunded=0")
		deadline := time.Now().Add(10 * time.Second)
		for {
			ops := operations(s.get(id))
			if last := ops[len(ops)-1]; last["status"] == "succeeded" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the capture is still not settled: %s", s.get(id).raw)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if snap, _ := s.sim.Payment(orderID); snap.Captured != 10000 {
			t.Fatalf("the provider captured %d, want 10000", snap.Captured)
		}
	})
}

// TestIdempotentReplayOfCaptureTheRest: "capture the rest" retried with the same key after it succeeded
// gets the first answer, not "nothing left to capture"; the same key with another body is 422; amount 0
// is invalid input.
func TestIdempotentReplayOfCaptureTheRest(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		s := newStack(t, stackOptions{redisURL: redisURL})
		id, orderID := s.createAuthorized(10000)
		expectProblem(t, s.do("POST", "/v1/checkouts/"+id+"/capture", map[string]any{"amount": 0}), http.StatusBadRequest, "/amount")

		first := s.do("POST", "/v1/checkouts/"+id+"/capture", nil, "Idempotency-Key", "rest-1")
		if first.status != http.StatusOK {
			t.Fatalf("capture: %d %s", first.status, first.raw)
		}
		for range 2 {
			again := s.do("POST", "/v1/checkouts/"+id+"/capture", nil, "Idempotency-Key", "rest-1")
			if again.status != http.StatusOK || string(again.raw) != string(first.raw) ||
				again.header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("retry: %d %s\nfirst: %s", again.status, again.raw, first.raw)
			}
		}
		other := s.do("POST", "/v1/checkouts/"+id+"/capture", map[string]any{"amount": 100}, "Idempotency-Key", "rest-1")
		expectProblem(t, other, http.StatusUnprocessableEntity, "")
		if snap, _ := s.sim.Payment(orderID); snap.Captured != 10000 {
			t.Fatalf("the provider captured %d, want 10000", snap.Captured)
		}

		// Creates replay their first answer too, status and Location included.
		body := checkoutBody(5000)
		c1 := s.do("POST", "/v1/checkouts", body, "Idempotency-Key", "order-7")
		c2 := s.do("POST", "/v1/checkouts", body, "Idempotency-Key", "order-7")
		if c1.status != http.StatusCreated || c2.status != http.StatusCreated || string(c1.raw) != string(c2.raw) ||
			c1.header.Get("Location") != c2.header.Get("Location") {
			t.Fatalf("create replay: %d %s / %d %s", c1.status, c1.raw, c2.status, c2.raw)
		}
	})
}

// TestFrozenStoreAnswers503AndRecovers: while Redis does not answer (CLIENT PAUSE holds every command,
// as a SIGSTOP would), requests get 503 problems with Retry-After within the store's bounded time instead
// of 500s, and kasse serves again by itself once Redis is back.
func TestFrozenStoreAnswers503AndRecovers(t *testing.T) {
	redisURL := testredis.Start(t)
	s := newStack(t, stackOptions{redisURL: redisURL})
	id, _ := s.create(10000)

	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClient(opts)
	defer admin.Close()
	// Paused long enough for both requests to meet it, each waiting out the store's 2s bound: a 4s pause
	// let the second request's commands through just before their deadline on a loaded machine.
	if err := admin.Do(t.Context(), "CLIENT", "PAUSE", "10000", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	for _, req := range []struct{ method, path string }{
		{"GET", "/v1/checkouts/" + id},
		{"POST", "/v1/checkouts"},
	} {
		var body any
		if req.method == "POST" {
			body = checkoutBody(5000)
		}
		start := time.Now()
		res := s.do(req.method, req.path, body)
		took := time.Since(start)
		expectProblem(t, res, http.StatusServiceUnavailable, "")
		if res.body["type"] != "https://kasse.dev/problems/store-unavailable" || res.header.Get("Retry-After") == "" {
			t.Fatalf("%s %s: want a store-unavailable problem with Retry-After: %s", req.method, req.path, res.raw)
		}
		t.Logf("%s %s answered 503 after %s", req.method, req.path, took.Round(time.Millisecond))
	}
	// Back by itself, without a restart.
	deadline := time.Now().Add(30 * time.Second)
	for {
		res := s.do("GET", "/v1/checkouts/"+id, nil)
		if res.status == http.StatusOK {
			break
		}
		if res.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("after the pause: %d %s", res.status, res.raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.create(10000)
}

// TestLostInitiateAnswerIsSettledByTheCallback: the initiate's answer is lost, so the create answers 504
// with the session id; when the customer pays anyway (the payment exists at Vipps), the callback settles
// the initiate and the session can be captured at once, without waiting out the status-check grace.
func TestLostInitiateAnswerIsSettledByTheCallback(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		loser := &answerLoser{next: http.DefaultTransport}
		s := newStack(t, stackOptions{redisURL: redisURL, transport: loser})
		loser.suffix.Store("/ecomm/v2/payments")
		res := s.do("POST", "/v1/checkouts", checkoutBody(10000))
		expectProblem(t, res, http.StatusGatewayTimeout, "")
		id, _ := res.body["session"].(string)
		if id == "" || res.body["type"] != "https://kasse.dev/problems/outcome-unknown" {
			t.Fatalf("a lost initiate answer must name the session: %s", res.raw)
		}
		loser.suffix.Store("")
		ops := operations(s.get(id))
		if len(ops) != 1 || ops[0]["kind"] != "initiate" || ops[0]["status"] != "in-doubt" {
			t.Fatalf("the session must show the initiate in doubt: %v", ops)
		}
		if err := s.sim.Approve(id, "91234567"); err != nil {
			t.Fatal(err)
		}
		s.waitState(id, "authorized")
		capture := s.do("POST", "/v1/checkouts/"+id+"/capture", nil)
		if capture.status != http.StatusOK {
			t.Fatalf("capture after the callback: %d %s", capture.status, capture.raw)
		}
		if ops := operations(s.get(id)); ops[0]["status"] != "succeeded" {
			t.Fatalf("the initiate must be settled by the callback: %v", ops)
		}
	})
}

// TestLostCancelAnswerIsSettledByStatus: eCom cancel carries no request id, so its resend after a lost
// answer is refused as "already cancelled"; kasse then reads the payment's status, sees the cancel
// happened, and the session ends cancelled, as at Vipps.
func TestLostCancelAnswerIsSettledByStatus(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		loser := &answerLoser{next: http.DefaultTransport}
		s := newStack(t, stackOptions{redisURL: redisURL, transport: loser})
		id, _ := s.createAuthorized(10000)
		loser.suffix.Store("/cancel")
		expectProblem(t, s.do("POST", "/v1/checkouts/"+id+"/cancel", nil), http.StatusGatewayTimeout, "")
		loser.suffix.Store("")
		s.waitState(id, "cancelled")
		deadline := time.Now().Add(10 * time.Second)
		for {
			ops := operations(s.get(id))
			last := ops[len(ops)-1]
			if last["kind"] == "cancel" && last["status"] == "succeeded" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the cancel is not settled as succeeded: %v", ops)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// answerHolder passes requests on to the provider at once and, while armed for a path suffix, holds the
// next such answer until released: a slow answer that tells how the payment was when it was asked.
type answerHolder struct {
	next    http.RoundTripper
	armed   atomic.Value // string suffix; "" disarms
	held    chan struct{}
	release chan struct{}
	passed  atomic.Int64 // answers for the suffix handed back, held or not
}

func newAnswerHolder(next http.RoundTripper) *answerHolder {
	return &answerHolder{next: next, held: make(chan struct{}), release: make(chan struct{})}
}

func (h *answerHolder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := h.next.RoundTrip(req)
	if s, _ := h.armed.Load().(string); s != "" && strings.HasSuffix(req.URL.Path, s) &&
		h.armed.CompareAndSwap(s, "") {
		close(h.held)
		select {
		case <-h.release:
		case <-req.Context().Done():
		}
	}
	if strings.HasSuffix(req.URL.Path, "/details") {
		h.passed.Add(1)
	}
	return resp, err
}

// TestStaleStatusDoesNotUndoALaterCapture: the check after a first capture asks the provider for the
// payment, and its answer comes back only after a second capture was carried out and recorded. The
// answer predates the second capture, so it is no evidence of a divergence: kasse keeps both captures
// (the chaos suite once saw kasse take the second one back, leaving it 25000 short of Vipps for good).
func TestStaleStatusDoesNotUndoALaterCapture(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		holder := newAnswerHolder(http.DefaultTransport)
		s := newStack(t, stackOptions{redisURL: redisURL, transport: holder})
		id, orderID := s.createAuthorized(10000)
		holder.armed.Store("/details")
		if res := s.do("POST", "/v1/checkouts/"+id+"/capture", map[string]any{"amount": 4000}); res.status != http.StatusOK {
			t.Fatalf("first capture: %d %s", res.status, res.raw)
		}
		select { // the check after the capture has asked, and its answer (captured 4000) is held
		case <-holder.held:
		case <-time.After(30 * time.Second):
			t.Fatal("no status check after the first capture")
		}
		if res := s.do("POST", "/v1/checkouts/"+id+"/capture", map[string]any{"amount": 6000}); res.status != http.StatusOK {
			t.Fatalf("second capture: %d %s", res.status, res.raw)
		}
		before := holder.passed.Load()
		close(holder.release)
		// The stale answer reaches kasse now; the check after the second capture asks again.
		deadline := time.Now().Add(30 * time.Second)
		for holder.passed.Load() < before+2 {
			if time.Now().After(deadline) {
				t.Fatalf("no status check after the stale answer (the check ended on it): %s", s.get(id).raw)
			}
			time.Sleep(20 * time.Millisecond)
		}
		res := s.get(id)
		expectAmounts(t, res, "state=captured amount=10000 authorized=10000 captured=10000 refunded=0")
		if strings.Contains(string(res.raw), `"diverged"`) {
			t.Errorf("kasse recorded a divergence from a stale answer: %s", res.raw)
		}
		if snap, _ := s.sim.Payment(orderID); snap.Captured != 10000 {
			t.Fatalf("the provider captured %d, want 10000", snap.Captured)
		}
	})
}

// portalCapture captures amount of orderID at the simulator directly, as a merchant does in the Vipps
// portal: kasse hears nothing of it.
func portalCapture(t *testing.T, simURL, orderID string, amount int64) {
	t.Helper()
	call := func(path string, headers map[string]string, body string) map[string]any {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, simURL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %d %v", path, resp.StatusCode, out)
		}
		return out
	}
	tok := call("/accesstoken/get", map[string]string{"client_id": "demo-client-id", "client_secret": "demo-client-secret",
		"Ocp-Apim-Subscription-Key": "demo-subscription-key"}, "")
	call("/ecomm/v2/payments/"+orderID+"/capture", map[string]string{
		"Authorization": "Bearer " + tok["access_token"].(string), "Ocp-Apim-Subscription-Key": "demo-subscription-key",
		"Merchant-Serial-Number": "123456", "X-Request-Id": "portal-" + orderID, "Content-Type": "application/json"},
		fmt.Sprintf(`{"merchantInfo":{"merchantSerialNumber":"123456"},"transaction":{"amount":%d,"transactionText":"captured in the portal"}}`, amount))
}

// TestMoneyMovedOutsideKasseIsFound: the merchant captures an authorized payment in the Vipps portal;
// kasse keeps checking authorized payments for a while after their money last moved (reconciler
// watchFor), finds the capture, takes the provider's figures and records the divergence. The same
// checks find a write a Redis failover took back.
func TestMoneyMovedOutsideKasseIsFound(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		s := newStack(t, stackOptions{redisURL: redisURL})
		id, orderID := s.createAuthorized(10000)
		portalCapture(t, s.simURL, orderID, 10000)
		res := s.waitState(id, "captured")
		expectAmounts(t, res, "state=captured amount=10000 authorized=10000 captured=10000 refunded=0")
		if !strings.Contains(string(res.raw), `"cause":"diverged"`) {
			t.Errorf("the capture found is not recorded as a divergence: %s", res.raw)
		}
	})
}
