package host_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/internal/testredis"
)

// redisLink is a TCP proxy between one kasse instance and Redis that the test can cut, as kill -9 or a
// lost node cuts a process off: from then on none of the instance's commands reaches Redis, and every
// connection it opens again is refused.
type redisLink struct {
	t      *testing.T
	target string
	l      net.Listener
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
}

// newRedisLink proxies to the redis URL target and returns the link and the URL to give the instance.
func newRedisLink(t *testing.T, target string) (*redisLink, string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	link := &redisLink{t: t, target: u.Host, l: l}
	go link.serve()
	t.Cleanup(link.Cut)
	u.Host = l.Addr().String()
	return link, u.String()
}

func (r *redisLink) serve() {
	for {
		c, err := r.l.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", r.target)
		r.mu.Lock()
		if err != nil || r.cut {
			r.mu.Unlock()
			c.Close()
			if up != nil {
				up.Close()
			}
			continue
		}
		r.conns = append(r.conns, c, up)
		r.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

// Cut closes every connection through the link and refuses new ones.
func (r *redisLink) Cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cut {
		return
	}
	r.cut = true
	r.l.Close()
	for _, c := range r.conns {
		c.Close()
	}
}

// waitGoroutinesGone waits until no goroutine's stack names fn.
func waitGoroutinesGone(t *testing.T, fn string) {
	deadline := time.Now().Add(30 * time.Second)
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if !bytes.Contains(buf[:n], []byte(fn)) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("a goroutine in %s is still running 30s after the test", fn)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCaptureRetriedAfterTheProcessDied: kasse instance A takes a capture with an Idempotency-Key,
// records it, sends it to Vipps (which captures), and dies before it hears the answer: from then on
// nothing it does reaches the shared store (its link to Redis is cut, as kill -9 would leave it),
// so its claim on the key is neither renewed, nor swapped for the answer, nor freed. The shop's retry
// reaches instance B: while A's claim lives it is "in progress" (409); once the claim has lapsed
// (server.pendingClaimTtl, not the 24 hours an answer is kept) it runs, meets the capture A recorded,
// settles it with A's request id, and answers 200 with the capture: one capture at Vipps.
func TestCaptureRetriedAfterTheProcessDied(t *testing.T) {
	// One Redis server even under KASSE_TEST_REDIS=cluster: a cluster client learns its nodes'
	// addresses from the cluster and would go around the link.
	redisURL := testredis.Start(t)
	// Last cleanup: go-redis probes a server it cannot dial from a goroutine that checks once a second
	// whether its pool was closed; wait for A's to see that, rather than leave it to the leak check.
	t.Cleanup(func() { waitGoroutinesGone(t, "(*ConnPool).tryDial") })
	link, linkedURL := newRedisLink(t, redisURL)
	sim, simURL := newSim(t)
	const claimTTL = "3s"
	holder := newAnswerHolder(http.DefaultTransport)
	a := newStack(t, stackOptions{redisURL: linkedURL, sim: sim, simURL: simURL, transport: holder,
		serverYAML: "  pendingClaimTtl: " + claimTTL + "\n"})
	b := newStack(t, stackOptions{redisURL: redisURL, sim: sim, simURL: simURL,
		serverYAML: "  pendingClaimTtl: " + claimTTL + "\n"})
	id, orderID := b.createAuthorized(10000)

	body := []byte(`{"amount":4000}`)
	capture := func(s *stack) *http.Request {
		req, err := http.NewRequest(http.MethodPost, s.baseURL+"/v1/checkouts/"+id+"/capture", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+apiKey)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "ship-dead-1")
		return req
	}
	holder.armed.Store("/capture")
	doomed := make(chan struct{})
	go func() {
		defer close(doomed)
		// Whatever A answers after its death is nobody's business: a dead process answers nothing.
		if resp, err := (&http.Client{Timeout: time.Minute}).Do(capture(a)); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-holder.held:
	case <-time.After(30 * time.Second):
		t.Fatal("the capture never reached Vipps")
	}
	if snap, _ := sim.Payment(orderID); snap.Captured != 4000 {
		t.Fatalf("Vipps captured %d; the test needs the capture to have happened", snap.Captured)
	}
	// A dies: nothing it does from here on reaches the store.
	link.Cut()
	// While A's claim lives (unless this machine took longer than claimTTL to get here), the retry is
	// in progress, and changes nothing.
	first := b.do("POST", "/v1/checkouts/"+id+"/capture", body, "Idempotency-Key", "ship-dead-1")
	close(holder.release)
	<-doomed
	if first.status == http.StatusConflict && first.body["type"] != "https://kasse.dev/problems/idempotency-in-progress" {
		t.Fatalf("retry while the dead request's claim lives: %d %s", first.status, first.raw)
	}
	// The shop retries as told (Retry-After) until the claim has lapsed; with the old 24-hour claim it
	// would have been refused all day.
	retry := first
	deadline := time.Now().Add(30 * time.Second)
	for retry.status == http.StatusConflict {
		if time.Now().After(deadline) {
			t.Fatalf("the retry is still refused 30s after the process died (claim TTL %s): %s", claimTTL, retry.raw)
		}
		time.Sleep(100 * time.Millisecond)
		retry = b.do("POST", "/v1/checkouts/"+id+"/capture", body, "Idempotency-Key", "ship-dead-1")
	}
	if retry.status != http.StatusOK {
		t.Fatalf("retry after the claim lapsed: %d %s", retry.status, retry.raw)
	}
	expectAmounts(t, retry, "state=captured amount=10000 authorized=10000 captured=4000 refunded=0")
	if snap, _ := sim.Payment(orderID); snap.Captured != 4000 {
		t.Fatalf("Vipps captured %d after the retry, want 4000: the capture was made twice", snap.Captured)
	}
	ops := operations(b.get(id))
	captures := 0
	for _, op := range ops {
		if op["kind"] == "capture" {
			captures++
			if op["status"] != "succeeded" {
				t.Errorf("capture operation %v", op)
			}
		}
	}
	if captures != 1 {
		t.Errorf("%d capture operations, want the one A recorded: %s", captures, retry.raw)
	}
	// The answer is now recorded: the same request again is replayed.
	again := b.do("POST", "/v1/checkouts/"+id+"/capture", body, "Idempotency-Key", "ship-dead-1")
	if again.status != http.StatusOK || again.header.Get("Idempotent-Replayed") != "true" || string(again.raw) != string(retry.raw) {
		t.Fatalf("replay: %d %q %s\nfirst: %s", again.status, again.header.Get("Idempotent-Replayed"), again.raw, retry.raw)
	}
}

// TestLongRequestKeepsItsIdempotencyKey: a request that runs for longer than server.pendingClaimTtl
// (Vipps slow to answer a capture) keeps its key, renewed while it runs: every retry meanwhile is "in
// progress", none starts a second capture, and the first request's answer is the one replayed.
func TestLongRequestKeepsItsIdempotencyKey(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		const claimTTL = 2 * time.Second
		holder := newAnswerHolder(http.DefaultTransport)
		s := newStack(t, stackOptions{redisURL: redisURL, transport: holder,
			serverYAML: "  pendingClaimTtl: " + claimTTL.String() + "\n"})
		id, orderID := s.createAuthorized(10000)
		holder.armed.Store("/capture")
		answered := make(chan result, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodPost, s.baseURL+"/v1/checkouts/"+id+"/capture", bytes.NewReader([]byte(`{"amount":2500}`)))
			req.Header.Set("Authorization", "Bearer "+apiKey)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", "slow-1")
			res := result{}
			resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
			if err == nil {
				res.status, res.header = resp.StatusCode, resp.Header
				res.raw, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			answered <- res
		}()
		select {
		case <-holder.held:
		case <-time.After(30 * time.Second):
			t.Fatal("the capture never reached Vipps")
		}
		// More than two claim TTLs pass while Vipps's answer is held.
		for start := time.Now(); time.Since(start) < 2*claimTTL+claimTTL/4; time.Sleep(claimTTL / 4) {
			res := s.do("POST", "/v1/checkouts/"+id+"/capture", map[string]any{"amount": 2500}, "Idempotency-Key", "slow-1")
			if res.status != http.StatusConflict || res.body["type"] != "https://kasse.dev/problems/idempotency-in-progress" {
				t.Fatalf("retry while the first request runs: %d %s", res.status, res.raw)
			}
		}
		close(holder.release)
		first := <-answered
		if first.status != http.StatusOK {
			t.Fatalf("the first request: %d %s", first.status, first.raw)
		}
		again := s.do("POST", "/v1/checkouts/"+id+"/capture", map[string]any{"amount": 2500}, "Idempotency-Key", "slow-1")
		if again.status != http.StatusOK || again.header.Get("Idempotent-Replayed") != "true" || string(again.raw) != string(first.raw) {
			t.Fatalf("replay: %d %s\nfirst: %s", again.status, again.raw, first.raw)
		}
		if snap, _ := s.sim.Payment(orderID); snap.Captured != 2500 {
			t.Fatalf("Vipps captured %d, want 2500", snap.Captured)
		}
	})
}
