package vippssim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kassehq/kasse/examples/vippssim"
)

// raw sends c like h.do, but with a plain client that gives up after timeout, and returns the error
// instead of failing: for requests whose client is meant to time out.
func (h *harness) raw(c call, timeout time.Duration) (int, []byte, error) {
	h.t.Helper()
	data, err := json.Marshal(c.body)
	if err != nil {
		h.t.Fatalf("marshal: %v", err)
	}
	req, err := http.NewRequest(c.method, h.srv.URL+c.path, bytes.NewReader(data))
	if err != nil {
		h.t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set("Ocp-Apim-Subscription-Key", h.tenant.SubscriptionKey)
	req.Header.Set("Merchant-Serial-Number", h.tenant.MerchantSerialNumber)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// eventually polls cond until it holds or 10 seconds pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// applied returns the kinds of the applied (not replayed) operations of orderID, and how many replays.
func applied(ops []vippssim.Operation) (string, int) {
	var kinds []string
	replays := 0
	for _, op := range ops {
		if op.Replay {
			replays++
			continue
		}
		kinds = append(kinds, fmt.Sprintf("%s:%s:%d", op.API, op.Kind, op.Amount))
	}
	return strings.Join(kinds, ","), replays
}

// TestIdempotentOperations sends each money operation twice with one request id (the second is answered
// with the first answer and applies nothing), then a third time with the same id and another body
// (refused), and checks the operations log.
func TestIdempotentOperations(t *testing.T) {
	cases := []struct {
		name      string
		setup     func(h *harness, id string)
		send      func(h *harness, id string, variant bool) (*http.Response, []byte)
		wantOps   string
		conflict  int
		checkBody func(t *testing.T, h *harness, id string)
	}{
		{
			name: "ecom initiate",
			send: func(h *harness, id string, variant bool) (*http.Response, []byte) {
				amount := int64(1000)
				if variant {
					amount = 2000
				}
				return h.do(call{method: "POST", path: "/ecomm/v2/payments", body: h.initiateBody(id, amount),
					header: map[string]string{"X-Request-Id": "init-" + id}})
			},
			wantOps: "ecom:initiate:1000", conflict: http.StatusConflict,
		},
		{
			name:  "ecom capture",
			setup: func(h *harness, id string) { h.reserved(id, 1000) },
			send: func(h *harness, id string, variant bool) (*http.Response, []byte) {
				amount := 400
				if variant {
					amount = 500
				}
				return h.capture(id, amount, "cap-"+id)
			},
			wantOps: "ecom:initiate:1000,ecom:capture:400", conflict: http.StatusConflict,
		},
		{
			name: "ecom refund",
			setup: func(h *harness, id string) {
				h.reserved(id, 1000)
				if resp, body := h.capture(id, nil, "cap-"+id); resp.StatusCode != 200 {
					h.t.Fatalf("capture: %d %s", resp.StatusCode, body)
				}
			},
			send: func(h *harness, id string, variant bool) (*http.Response, []byte) {
				amount := 300
				if variant {
					amount = 301
				}
				return h.refund(id, amount, "ref-"+id)
			},
			wantOps: "ecom:initiate:1000,ecom:capture:1000,ecom:refund:300", conflict: http.StatusConflict,
		},
		{
			name:  "ecom cancel",
			setup: func(h *harness, id string) { h.reserved(id, 1000) },
			send: func(h *harness, id string, variant bool) (*http.Response, []byte) {
				text := "Out of stock"
				if variant {
					text = "Changed my mind"
				}
				return h.do(call{method: "PUT", path: "/ecomm/v2/payments/" + id + "/cancel",
					body: actionBody(h.tenant.MerchantSerialNumber, nil, text), header: map[string]string{"X-Request-Id": "can-" + id}})
			},
			wantOps: "ecom:initiate:1000,ecom:cancel:1000", conflict: http.StatusConflict,
		},
		{
			name: "epayment create",
			send: func(h *harness, id string, variant bool) (*http.Response, []byte) {
				amount := int64(1000)
				if variant {
					amount = 2000
				}
				return h.epCreate(id, amount, "WEB_REDIRECT", "create-"+id)
			},
			wantOps: "epayment:initiate:1000", conflict: http.StatusConflict,
		},
		{
			name:  "epayment capture",
			setup: func(h *harness, id string) { h.epAuthorized(id, 1000) },
			send: func(h *harness, id string, variant bool) (*http.Response, []byte) {
				amount := int64(400)
				if variant {
					amount = 500
				}
				return h.epModify(id, "capture", amount, "cap-"+id)
			},
			wantOps: "epayment:initiate:1000,epayment:capture:400", conflict: http.StatusConflict,
		},
		{
			name: "epayment refund",
			setup: func(h *harness, id string) {
				h.epAuthorized(id, 1000)
				if resp, body := h.epModify(id, "capture", 1000, "cap-"+id); resp.StatusCode != 200 {
					h.t.Fatalf("capture: %d %s", resp.StatusCode, body)
				}
			},
			send: func(h *harness, id string, variant bool) (*http.Response, []byte) {
				amount := int64(300)
				if variant {
					amount = 301
				}
				return h.epModify(id, "refund", amount, "ref-"+id)
			},
			wantOps: "epayment:initiate:1000,epayment:capture:1000,epayment:refund:300", conflict: http.StatusConflict,
		},
		{
			// Cancel has no body, so the same key cannot come with another one: a replay is all there is.
			name:  "epayment cancel",
			setup: func(h *harness, id string) { h.epAuthorized(id, 1000) },
			send: func(h *harness, id string, variant bool) (*http.Response, []byte) {
				return h.epModify(id, "cancel", 0, "can-"+id)
			},
			wantOps: "epayment:initiate:1000,epayment:cancel:1000", conflict: http.StatusOK,
		},
	}
	h := newHarness(t)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			id := fmt.Sprintf("idem-order-%d", i)
			if tc.setup != nil {
				tc.setup(h, id)
			}
			r1, b1 := tc.send(h, id, false)
			if r1.StatusCode/100 != 2 {
				t.Fatalf("first: %d %s", r1.StatusCode, b1)
			}
			r2, b2 := tc.send(h, id, false)
			if r2.StatusCode != r1.StatusCode || !bytes.Equal(b1, b2) {
				t.Errorf("retry answered %d %s, want the first answer %d %s", r2.StatusCode, b2, r1.StatusCode, b1)
			}
			r3, b3 := tc.send(h, id, true)
			if r3.StatusCode != tc.conflict {
				t.Errorf("same id, other body: %d %s, want %d", r3.StatusCode, b3, tc.conflict)
			}
			ops, replays := applied(h.sim.Operations(id))
			wantReplays := 1
			if tc.conflict == http.StatusOK {
				wantReplays = 2
			}
			if ops != tc.wantOps || replays != wantReplays {
				t.Errorf("operations %s with %d replays, want %s with %d", ops, replays, tc.wantOps, wantReplays)
			}
		})
	}
	h.t = t

	// Without the same id, the same request is a new operation: a second initiate of an orderId is
	// refused (Merchant 34), and a capture with a new X-Request-Id captures again.
	resp, body := h.do(call{method: "POST", path: "/ecomm/v2/payments", body: h.initiateBody("idem-order-0", 1000),
		header: map[string]string{"X-Request-Id": "another"}})
	expectError(t, resp, body, http.StatusConflict, "Merchant", "34")
	h.reserved("double-capture", 1000)
	for _, id := range []string{"a", "b"} {
		if resp, body := h.capture("double-capture", 300, id); resp.StatusCode != 200 {
			t.Fatalf("capture %s: %d %s", id, resp.StatusCode, body)
		}
	}
	if p, _ := h.sim.Payment("double-capture"); p.Captured != 600 {
		t.Errorf("captured %d after two captures with different ids, want 600", p.Captured)
	}
}

// epAuthorized creates a PUSH_MESSAGE ePayment payment and approves it.
func (h *harness) epAuthorized(ref string, amount int64) {
	h.t.Helper()
	if resp, body := h.epCreate(ref, amount, "PUSH_MESSAGE", "create-"+ref); resp.StatusCode != http.StatusCreated {
		h.t.Fatalf("create %s: %d %s", ref, resp.StatusCode, body)
	}
	if err := h.sim.ApproveEPayment(ref, ""); err != nil {
		h.t.Fatal(err)
	}
}

// TestFreezeThaw plays the incident: captures sent while Vipps hangs, clients that give up, and every
// held request carried out at thaw, once, in arrival order; a retry with the same id after the thaw gets
// the first answer.
func TestFreezeThaw(t *testing.T) {
	h := newHarness(t)
	h.reserved("frozen-1", 1000)
	h.sim.Freeze()
	if !h.sim.Frozen() {
		t.Fatal("not frozen")
	}
	capture := func(amount int, id string) call {
		return call{method: "POST", path: "/ecomm/v2/payments/frozen-1/capture",
			body: actionBody(h.tenant.MerchantSerialNumber, amount, "Shipped"), header: map[string]string{"X-Request-Id": id}}
	}
	// Three requests, one after the other: the first capture, its retry with the same id, another capture.
	for i, c := range []call{capture(300, "cap-1"), capture(300, "cap-1"), capture(200, "cap-2")} {
		if _, _, err := h.raw(c, 100*time.Millisecond); err == nil {
			t.Fatalf("request %d was answered while frozen", i)
		}
		eventually(t, "the request to be held", func() bool { return h.sim.Held() == i+1 })
	}
	if p, _ := h.sim.Payment("frozen-1"); p.Captured != 0 {
		t.Fatalf("captured %d while frozen", p.Captured)
	}
	h.sim.Thaw()
	eventually(t, "the held requests to be carried out", func() bool { return h.sim.Held() == 0 })
	p, _ := h.sim.Payment("frozen-1")
	if p.Captured != 500 {
		t.Errorf("captured %d after thaw, want 500 (300 once, then 200)", p.Captured)
	}
	ops := h.sim.Operations("frozen-1")
	var seq []string
	for _, op := range ops[1:] {
		seq = append(seq, fmt.Sprintf("%s/%s/%t", op.Kind, op.RequestID, op.Replay))
	}
	if got := strings.Join(seq, " "); got != "capture/cap-1/false capture/cap-1/true capture/cap-2/false" {
		t.Errorf("operations after thaw: %s", got)
	}
	// The client's retry after the thaw: the first answer, nothing applied.
	resp, body := h.capture("frozen-1", 300, "cap-1")
	var out struct {
		TransactionInfo    struct{ Amount int64 }
		TransactionSummary struct{ CapturedAmount int64 }
	}
	mustJSON(t, body, &out)
	if resp.StatusCode != 200 || out.TransactionInfo.Amount != 300 || out.TransactionSummary.CapturedAmount != 300 {
		t.Errorf("retry after thaw: %d %s, want the first answer (captured 300 of 300)", resp.StatusCode, body)
	}
	if p, _ := h.sim.Payment("frozen-1"); p.Captured != 500 {
		t.Errorf("captured %d after the retry, want 500", p.Captured)
	}
}

// TestLatency: with a slow Vipps the operation takes effect although the client gave up.
func TestLatency(t *testing.T) {
	h := newHarness(t)
	h.reserved("slow-1", 1000)
	if err := h.sim.SetFaults(vippssim.Faults{Latency: vippssim.Span{Min: time.Hour, Max: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.raw(call{method: "POST", path: "/ecomm/v2/payments/slow-1/capture",
		body: actionBody(h.tenant.MerchantSerialNumber, 1000, "Shipped"), header: map[string]string{"X-Request-Id": "s1"}}, 100*time.Millisecond); err == nil {
		t.Fatal("answered despite an hour of latency")
	}
	eventually(t, "the capture to be applied", func() bool { p, _ := h.sim.Payment("slow-1"); return p.Captured == 1000 })
	h.sim.ResetFaults()
	resp, body := h.capture("slow-1", 1000, "s1")
	if resp.StatusCode != 200 {
		t.Errorf("retry: %d %s", resp.StatusCode, body)
	}
	if got, replays := applied(h.sim.Operations("slow-1")); got != "ecom:initiate:1000,ecom:capture:1000" || replays != 1 {
		t.Errorf("operations %s, %d replays", got, replays)
	}
}

// TestCallbackFaults checks drop, duplicate, delay and reorder on eCom callbacks.
func TestCallbackFaults(t *testing.T) {
	cases := []struct {
		name   string
		faults vippssim.Faults
		orders int
		// wantSent and wantDropped count callback records.
		wantSent, wantDropped int
	}{
		{"drop all", vippssim.Faults{Callbacks: vippssim.CallbackFaults{Drop: 1}}, 3, 0, 3},
		{"duplicate all", vippssim.Faults{Callbacks: vippssim.CallbackFaults{Duplicate: 1}}, 3, 6, 0},
		{"delay", vippssim.Faults{Callbacks: vippssim.CallbackFaults{Delay: vippssim.Span{Min: time.Millisecond, Max: 20 * time.Millisecond}}}, 3, 3, 0},
		{"reorder", vippssim.Faults{Callbacks: vippssim.CallbackFaults{Reorder: true, ReorderBatch: 6,
			ReorderWindow: vippssim.Span{Min: time.Hour, Max: time.Hour}}}, 6, 6, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *vippssim.Config) { c.Seed = 7 })
			if err := h.sim.SetFaults(tc.faults); err != nil {
				t.Fatal(err)
			}
			var created []string
			for i := range tc.orders {
				id := fmt.Sprintf("cbf-%d", i)
				h.initiate(id, 1000)
				if err := h.sim.Approve(id, ""); err != nil {
					t.Fatal(err)
				}
				created = append(created, id)
			}
			h.sim.Flush()
			sent, dropped := 0, 0
			var order []string
			for _, c := range h.sim.Callbacks() {
				if c.Sent {
					sent++
					order = append(order, c.OrderID)
				} else {
					dropped++
					if !strings.Contains(c.Err, "fault") {
						t.Errorf("dropped callback error %q", c.Err)
					}
				}
			}
			if sent != tc.wantSent || dropped != tc.wantDropped {
				t.Errorf("%d sent, %d dropped; want %d and %d", sent, dropped, tc.wantSent, tc.wantDropped)
			}
			received := map[string]int{}
			for range sent {
				cb := h.sink.wait(t)
				h.specs.ValidateCallback(t, cb.req, cb.body)
				var b struct{ OrderID string }
				mustJSON(t, cb.body, &b)
				received[b.OrderID]++
			}
			select {
			case cb := <-h.sink.ch: // Flush returned, so everything sent has arrived
				t.Errorf("extra callback %s", cb.body)
			default:
			}
			for _, id := range created {
				if want := tc.wantSent / tc.orders; received[id] != want {
					t.Errorf("order %s: %d callbacks, want %d", id, received[id], want)
				}
			}
			if tc.faults.Callbacks.Reorder && strings.Join(order, ",") == strings.Join(created, ",") {
				t.Errorf("reorder sent the batch in creation order %v", order)
			}
		})
	}
}

// TestWebhookFaults checks drop and duplicate on ePayment webhooks.
func TestWebhookFaults(t *testing.T) {
	cases := []struct {
		name   string
		faults vippssim.CallbackFaults
		want   string
	}{
		{"drop all", vippssim.CallbackFaults{Drop: 1}, ""},
		{"duplicate all", vippssim.CallbackFaults{Duplicate: 1}, "wh-order-001:CREATED wh-order-001:CREATED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			sink := newHookSink(t, h.clock.Now)
			resp, body := h.do(call{method: "POST", path: "/webhooks/v1/webhooks", body: map[string]any{
				"url": sink.srv.URL + "/hook", "events": []string{"epayments.payment.created.v1"}}})
			var reg struct{ ID, Secret string }
			mustJSON(t, body, &reg)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("register: %d", resp.StatusCode)
			}
			sink.mu.Lock()
			sink.secret = reg.Secret
			sink.mu.Unlock()
			if err := h.sim.SetFaults(vippssim.Faults{Callbacks: tc.faults}); err != nil {
				t.Fatal(err)
			}
			h.epCreate("wh-order-001", 15000, "PUSH_MESSAGE", "k1")
			if !h.sim.FlushWebhooks(10 * time.Second) {
				t.Fatal("webhooks still queued")
			}
			if got := sink.events(); got != tc.want {
				t.Errorf("delivered %q, want %q", got, tc.want)
			}
		})
	}
}

// TestFaultControlsHTTP drives the fault controls and the operations log over HTTP.
func TestFaultControlsHTTP(t *testing.T) {
	h := newHarness(t)
	b := browser()
	send := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
		resp, err := b.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, readAll(t, resp)
	}
	steps := []struct {
		method, path, body string
		code               int
		want               string // a substring of the answer
	}{
		{"PUT", "/_sim/faults", `{"callbacks":{"drop":0.3,"duplicate":0.1,"delay":"0s..2s","reorder":true},"latency":"0s..500ms","seed":42}`, 200,
			`"callbacks":{"drop":0.3,"duplicate":0.1,"delay":"0s..2s","reorder":true,"reorderBatch":5,"reorderWindow":"1s"},"latency":"0s..500ms","seed":42`},
		{"GET", "/_sim/faults", "", 200, `"latency":"0s..500ms"`},
		{"PUT", "/_sim/faults", `{"callbacks":{"drop":1.5}}`, 400, "probability"},
		{"PUT", "/_sim/faults", `{"latency":"2s..1s"}`, 400, "min <= max"},
		{"PUT", "/_sim/faults", `{"latency":"soon"}`, 400, "span"},
		{"PUT", "/_sim/faults", `{"lateness":"1s"}`, 400, "unknown field"},
		{"GET", "/_sim/faults", "", 200, `"drop":0.3`}, // refused changes changed nothing
		{"DELETE", "/_sim/faults", "", 204, ""},
		{"GET", "/_sim/faults", "", 200, `"callbacks":{"drop":0,"duplicate":0,"delay":"0s","reorder":false`},
		{"POST", "/_sim/freeze", "", 204, ""},
		{"GET", "/_sim/faults", "", 200, `"frozen":true,"held":0`},
		{"POST", "/_sim/thaw", "", 204, ""},
		{"GET", "/_sim/faults", "", 200, `"frozen":false`},
		{"GET", "/_sim/operations", "", 200, "[]"},
	}
	for _, s := range steps {
		code, body := send(s.method, s.path, s.body)
		if code != s.code || !strings.Contains(body, s.want) {
			t.Errorf("%s %s %s: %d %s, want %d with %s", s.method, s.path, s.body, code, body, s.code, s.want)
		}
	}

	h.reserved("ops-1", 1000)
	h.capture("ops-1", 400, "c1")
	h.capture("ops-1", 400, "c1")
	h.initiate("ops-2", 500)
	_, body := send("GET", "/_sim/operations?orderId=ops-1", "")
	var ops []vippssim.Operation
	mustJSON(t, []byte(body), &ops)
	if got, replays := applied(ops); got != "ecom:initiate:1000,ecom:capture:400" || replays != 1 {
		t.Errorf("operations of ops-1: %s, %d replays; body %s", got, replays, body)
	}
	_, body = send("GET", "/_sim/operations", "")
	mustJSON(t, []byte(body), &ops)
	if len(ops) != 4 || ops[3].OrderID != "ops-2" || ops[3].Seq != 4 || ops[0].MerchantSerialNumber != "123456" {
		t.Errorf("all operations: %s", body)
	}
}

// TestInspectionAndTrailingSlash checks the amounts the chaos suite compares, and initiate at the
// Postman collection's path.
func TestInspectionAndTrailingSlash(t *testing.T) {
	h := newHarness(t)
	resp, body := h.do(call{method: "POST", path: "/ecomm/v2/payments/", body: h.initiateBody("slash-1", 1000)})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("initiate with a trailing slash: %d %s", resp.StatusCode, body)
	}
	if err := h.sim.Approve("slash-1", ""); err != nil {
		t.Fatal(err)
	}
	h.sink.wait(t)
	h.capture("slash-1", 300, "c1")
	h.refund("slash-1", 100, "r1")
	if resp, body := h.cancel("slash-1", true); resp.StatusCode != 200 {
		t.Fatalf("cancel: %d %s", resp.StatusCode, body)
	}
	code, page := 0, ""
	if r, err := browser().Get(h.srv.URL + "/_sim/payments/slash-1"); err == nil {
		code, page = r.StatusCode, readAll(t, r)
	}
	var snap map[string]any
	mustJSON(t, []byte(page), &snap)
	want := map[string]float64{"authorizedAmount": 1000, "capturedAmount": 300, "refundedAmount": 100, "cancelledAmount": 700}
	for k, v := range want {
		if snap[k] != v {
			t.Errorf("%d: %s = %v, want %v", code, k, snap[k], v)
		}
	}
}

// TestQuietLogs: without Verbose the log is a summary (a line per money operation) plus the requests
// that failed; with it, every request.
func TestQuietLogs(t *testing.T) {
	for _, tt := range []struct {
		verbose bool
		want    []string
		notWant []string
	}{
		{verbose: false,
			want: []string{"level=INFO msg=initiate api=ecom order=quiet-1 amount=1000 replay=false",
				"level=WARN msg=request method=GET path=/ecomm/v2/payments/nope/details status=404"},
			notWant: []string{"status=200"}},
		{verbose: true,
			want: []string{"level=INFO msg=initiate api=ecom order=quiet-1 amount=1000 replay=false",
				"level=INFO msg=request method=POST path=/accesstoken/get status=200",
				"level=INFO msg=request method=POST path=/ecomm/v2/payments status=200",
				"level=INFO msg=request method=GET path=/ecomm/v2/payments/quiet-1/details status=200",
				"level=WARN msg=request method=GET path=/ecomm/v2/payments/nope/details status=404"}},
	} {
		var mu sync.Mutex
		var lines []string
		h := newHarness(t, func(c *vippssim.Config) {
			c.Verbose = tt.verbose
			c.Logf = func(f string, a ...any) { mu.Lock(); lines = append(lines, fmt.Sprintf(f, a...)); mu.Unlock() }
		})
		h.initiate("quiet-1", 1000)
		h.details("quiet-1")
		h.do(call{method: "GET", path: "/ecomm/v2/payments/nope/details"})
		mu.Lock()
		all := strings.Join(lines, "\n")
		mu.Unlock()
		for _, want := range tt.want {
			if !strings.Contains(all, want) {
				t.Errorf("verbose=%t: %q not logged:\n%s", tt.verbose, want, all)
			}
		}
		for _, not := range tt.notWant {
			if strings.Contains(all, not) {
				t.Errorf("verbose=%t: %q logged:\n%s", tt.verbose, not, all)
			}
		}
	}
}

// TestExpressFaults: the Express calls to the merchant (shippingDetails, the RESERVE callback, consent
// removal) are duplicated and dropped like the other callbacks.
func TestExpressFaults(t *testing.T) {
	h := newHarness(t)
	m := newExpressMerchant(t, h.specs, "cb-secret-exf-1")
	if resp, body := h.do(call{method: "POST", path: "/ecomm/v2/payments", body: h.expressBody("exf-1", 49900, m.srv.URL, false)}); resp.StatusCode != 200 {
		t.Fatalf("initiate: %d %s", resp.StatusCode, body)
	}
	if err := h.sim.SetFaults(vippssim.Faults{Callbacks: vippssim.CallbackFaults{Duplicate: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := h.sim.Approve("exf-1", "91234567"); err != nil {
		t.Fatal(err)
	}
	h.sim.Flush()
	if n := len(m.questions); n != 2 {
		t.Errorf("%d shippingDetails calls, want 2", n)
	}
	if n := len(m.callbacks); n != 2 {
		t.Errorf("%d RESERVE callbacks, want 2", n)
	}
	snap, _ := h.sim.Payment("exf-1")
	if res := h.sim.RemoveConsent(context.Background(), snap.Express.UserID); len(res) != 2 || len(m.consents) != 2 {
		t.Errorf("duplicated consent removal: %+v, %d received", res, len(m.consents))
	}
	if err := h.sim.SetFaults(vippssim.Faults{Callbacks: vippssim.CallbackFaults{Drop: 1}}); err != nil {
		t.Fatal(err)
	}
	if res := h.sim.RemoveConsent(context.Background(), snap.Express.UserID); len(res) != 1 || res[0].StatusCode != 0 || !strings.Contains(res[0].Err, "fault") || len(m.consents) != 2 {
		t.Errorf("dropped consent removal: %+v, %d received", res, len(m.consents))
	}
	if resp, body := h.do(call{method: "POST", path: "/ecomm/v2/payments", body: h.expressBody("exf-2", 49900, m.srv.URL, false)}); resp.StatusCode != 200 {
		t.Fatalf("initiate: %d %s", resp.StatusCode, body)
	}
	if err := h.sim.Approve("exf-2", "91234567"); err == nil || !strings.Contains(err.Error(), "fault") {
		t.Errorf("approve with the shippingDetails call dropped: %v", err)
	}
}

func TestParseSpan(t *testing.T) {
	cases := []struct {
		in, out string
		ok      bool
	}{
		{"", "0s", true}, {"500ms", "500ms", true}, {" 0s .. 2s ", "0s..2s", true}, {"1s..1s", "1s", true},
		{"0s..2562047h47m16.854775807s", "0s..2562047h47m16.854775807s", true},
		{"2s..1s", "", false}, {"-1s", "", false}, {"soon", "", false}, {"1s..", "", false}, {"1s..2s..3s", "", false},
	}
	for _, c := range cases {
		s, err := vippssim.ParseSpan(c.in)
		if (err == nil) != c.ok || (c.ok && s.String() != c.out) {
			t.Errorf("ParseSpan(%q) = %v, %v; want %q ok=%t", c.in, s, err, c.out, c.ok)
		}
	}
	// The widest span is usable as a delay.
	h := newHarness(t)
	wide, _ := vippssim.ParseSpan("0s..2562047h47m16.854775807s")
	if err := h.sim.SetFaults(vippssim.Faults{Callbacks: vippssim.CallbackFaults{Delay: wide}}); err != nil {
		t.Fatal(err)
	}
	h.initiate("wide-1", 1000)
	if err := h.sim.Approve("wide-1", ""); err != nil {
		t.Fatal(err)
	}
}
