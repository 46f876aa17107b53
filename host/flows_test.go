package host_test

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestPayCaptureRefund(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		s := newStack(t, stackOptions{redisURL: redisURL})
		id, orderID := s.create(49900)
		if err := s.sim.Approve(orderID, "91234567"); err != nil {
			t.Fatal(err)
		}
		expectAmounts(t, s.waitState(id, "authorized"), "state=authorized amount=49900 authorized=49900 captured=0 refunded=0")

		// The customer comes back through fallBack and is sent on to the shop.
		ret := s.do("GET", "/v1/checkouts/"+id+"/return", nil)
		if ret.status != http.StatusSeeOther {
			t.Fatalf("return: %d %s", ret.status, ret.raw)
		}
		if loc := ret.header.Get("Location"); !strings.HasPrefix(loc, "http://shop.test/orders/1001/thanks?") ||
			!strings.Contains(loc, "kasse_state=authorized") {
			t.Fatalf("return redirects to %q", loc)
		}

		steps := []struct {
			path string
			body any
			want string
		}{
			{"/capture", map[string]any{"amount": 20000}, "state=captured amount=49900 authorized=49900 captured=20000 refunded=0"},
			{"/capture", nil, "state=captured amount=49900 authorized=49900 captured=49900 refunded=0"},
			{"/refund", map[string]any{"amount": 10000}, "state=captured amount=49900 authorized=49900 captured=49900 refunded=10000"},
			{"/refund", map[string]any{}, "state=refunded amount=49900 authorized=49900 captured=49900 refunded=49900"},
		}
		for _, st := range steps {
			res := s.do("POST", "/v1/checkouts/"+id+st.path, st.body)
			if res.status != http.StatusOK {
				t.Fatalf("%s: %d %s", st.path, res.status, res.raw)
			}
			expectAmounts(t, res, st.want)
			expectAmounts(t, s.get(id), st.want)
		}
		// Nothing is left to capture or refund: the API says so and Vipps is not asked.
		expectProblem(t, s.do("POST", "/v1/checkouts/"+id+"/capture", nil), http.StatusConflict, "")
		expectProblem(t, s.do("POST", "/v1/checkouts/"+id+"/refund", nil), http.StatusConflict, "")

		snap, ok := s.sim.Payment(orderID)
		if !ok {
			t.Fatal("simulator does not know the payment")
		}
		t.Logf("simulator: %+v", snap)
	})
}

func TestCancelBeforeCapture(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		s := newStack(t, stackOptions{redisURL: redisURL})
		id, _ := s.createAuthorized(15000)
		res := s.do("POST", "/v1/checkouts/"+id+"/cancel", nil)
		if res.status != http.StatusOK {
			t.Fatalf("cancel: %d %s", res.status, res.raw)
		}
		expectAmounts(t, res, "state=cancelled amount=15000 authorized=15000 captured=0 refunded=0")
		expectProblem(t, s.do("POST", "/v1/checkouts/"+id+"/capture", nil), http.StatusConflict, "")
		expectAmounts(t, s.get(id), "state=cancelled amount=15000 authorized=15000 captured=0 refunded=0")
	})
}

func TestUserRejects(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		s := newStack(t, stackOptions{redisURL: redisURL})
		id, orderID := s.create(15000)
		if err := s.sim.Reject(orderID); err != nil {
			t.Fatal(err)
		}
		expectAmounts(t, s.waitState(id, "rejected"), "state=rejected amount=15000 authorized=0 captured=0 refunded=0")
		expectProblem(t, s.do("POST", "/v1/checkouts/"+id+"/capture", nil), http.StatusConflict, "")
	})
}

func TestUserNeverActs(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		s := newStack(t, stackOptions{redisURL: redisURL})
		id, orderID := s.create(15000)
		if err := s.sim.Expire(orderID); err != nil {
			t.Fatal(err)
		}
		s.waitState(id, "expired")
	})
}

func TestPendingTimeoutExpiresWithoutCallback(t *testing.T) {
	s := newStack(t, stackOptions{pendingTimeout: "1s"})
	s.sim.SetCallbackMode(vippssimDrop)
	id, _ := s.create(15000)
	res := s.waitState(id, "expired")
	if !strings.Contains(string(res.raw), "did not complete") {
		t.Fatalf("expired session does not say why: %s", res.raw)
	}
}

func TestLostCallbackIsReconciled(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		s := newStack(t, stackOptions{redisURL: redisURL})
		s.sim.SetCallbackMode(vippssimDrop)
		id, orderID := s.create(15000)
		if err := s.sim.Approve(orderID, "91234567"); err != nil {
			t.Fatal(err)
		}
		res := s.waitState(id, "authorized")
		if !strings.Contains(string(res.raw), "status check") {
			t.Fatalf("authorization did not come from the reconciler: %s", res.raw)
		}
	})
}

func TestSameCallbackTenTimesAppliesOnce(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		s := newStack(t, stackOptions{redisURL: redisURL})
		id, cb := s.approvedUndelivered(15000)
		var wg sync.WaitGroup
		statuses := make([]int, 10)
		for i := range statuses {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("POST", cb.URL, bytes.NewReader(cb.Body))
				req.Header.Set("Authorization", cb.Header.Get("Authorization"))
				req.Header.Set("Content-Type", "application/json")
				resp, err := s.client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			}()
		}
		wg.Wait()
		for i, st := range statuses {
			if st != http.StatusOK {
				t.Fatalf("callback %d: status %d", i, st)
			}
		}
		res := s.get(id)
		expectAmounts(t, res, "state=authorized amount=15000 authorized=15000 captured=0 refunded=0")
		if n := countEvents(res, "authorized"); n != 1 {
			t.Fatalf("%d transitions to authorized, want exactly 1: %s", n, res.raw)
		}
	})
}

func TestCallbackWithWrongTokenChangesNothing(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		s := newStack(t, stackOptions{redisURL: redisURL})
		id, cb := s.approvedUndelivered(15000)
		before := s.get(id)
		for _, auth := range []string{"", "wrong-token", cb.Header.Get("Authorization") + "x", "Bearer nope"} {
			req, _ := http.NewRequest("POST", cb.URL, bytes.NewReader(cb.Body))
			req.Header.Set("Content-Type", "application/json")
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := s.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("Authorization %q: status %d, want 401", auth, resp.StatusCode)
			}
		}
		after := s.get(id)
		if after.body["state"] != "pending" || after.body["revision"] != before.body["revision"] {
			t.Fatalf("a rejected callback changed the session:\nbefore %s\nafter  %s", before.raw, after.raw)
		}
	})
}

func countEvents(res result, to string) int {
	n := 0
	hist, _ := res.body["history"].([]any)
	for _, h := range hist {
		if m, _ := h.(map[string]any); m["to"] == to && m["from"] != to {
			n++
		}
	}
	return n
}

// TestRepeatedCallbackIsNotReadAgain: a callback byte for byte the same as one already applied is
// answered without a plugin call (its digest is in the session), while a wrong token is still refused
// and a callback with other bytes is read by the plugin as before.
func TestRepeatedCallbackIsNotReadAgain(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		s := newStack(t, stackOptions{redisURL: redisURL})
		id, cb := s.approvedUndelivered(15000)
		send := func(body []byte, auth string) int {
			t.Helper()
			req, _ := http.NewRequest("POST", cb.URL, bytes.NewReader(body))
			req.Header.Set("Authorization", auth)
			req.Header.Set("Content-Type", "application/json")
			resp, err := s.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		reads := func() float64 {
			v, _ := sample(scrape(t, s), "kasse_plugin_call_duration_seconds",
				map[string]string{"operation": "read_callback", "result": "ok"})
			return v
		}
		auth := cb.Header.Get("Authorization")
		for i, tc := range []struct {
			body   []byte
			auth   string
			status int
			reads  float64
		}{
			{cb.Body, auth, http.StatusOK, 1},
			{cb.Body, auth, http.StatusOK, 1},
			{cb.Body, "Bearer wrong", http.StatusUnauthorized, 1},
			{append(slices.Clone(cb.Body), ' '), auth, http.StatusOK, 2},
			{cb.Body, auth, http.StatusOK, 2},
		} {
			if st := send(tc.body, tc.auth); st != tc.status {
				t.Fatalf("callback %d: status %d, want %d", i, st, tc.status)
			}
			if n := reads(); n != tc.reads {
				t.Fatalf("after callback %d: %v read_callback calls, want %v", i, n, tc.reads)
			}
		}
		res := s.get(id)
		expectAmounts(t, res, "state=authorized amount=15000 authorized=15000 captured=0 refunded=0")
		if n := countEvents(res, "authorized"); n != 1 {
			t.Fatalf("%d transitions to authorized, want exactly 1: %s", n, res.raw)
		}
		if strings.Contains(string(res.raw), `"applied"`) {
			t.Fatalf("the API shows the applied digests: %s", res.raw)
		}
	})
}
