package vippssim_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kassehq/kasse/examples/vippssim"
	"github.com/kassehq/kasse/examples/vippssim/vippsspec"
)

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// received is one callback as the merchant's server saw it.
type received struct {
	req  *http.Request
	body []byte
}

// callbackSink is the merchant's callback endpoint.
type callbackSink struct {
	srv *httptest.Server
	ch  chan received
}

func newCallbackSink(t *testing.T) *callbackSink {
	t.Helper()
	sink := &callbackSink{ch: make(chan received, 64)}
	sink.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sink.ch <- received{req: r.Clone(r.Context()), body: body}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(sink.srv.Close)
	return sink
}

func (s *callbackSink) wait(t *testing.T) received {
	t.Helper()
	select {
	case r := <-s.ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no callback within 5 s")
		return received{}
	}
}

func (s *callbackSink) expectNone(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case r := <-s.ch:
		t.Fatalf("unexpected callback %s: %s", r.req.URL.Path, r.body)
	case <-time.After(d):
	}
}

type harness struct {
	t      *testing.T
	specs  *vippsspec.Specs
	sim    *vippssim.Server
	srv    *httptest.Server
	client *http.Client
	clock  *fakeClock
	sink   *callbackSink
	tenant vippssim.Tenant
	other  vippssim.Tenant
	token  string
}

// newHarness starts a simulator (demo tenant plus a second one) behind
// httptest, with AllowHTTPLoopback on and a fake clock, and a client whose
// every request and response is validated against the spec.
func newHarness(t *testing.T, mods ...func(*vippssim.Config)) *harness {
	t.Helper()
	h := &harness{
		t:      t,
		specs:  vippsspec.Load(t),
		clock:  &fakeClock{t: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)},
		sink:   newCallbackSink(t),
		tenant: vippssim.DemoTenant(),
		other: vippssim.Tenant{
			MerchantSerialNumber: "654321", ClientID: "other-client", ClientSecret: "other-secret", SubscriptionKey: "other-key",
		},
	}
	h.srv = httptest.NewUnstartedServer(nil)
	cfg := vippssim.Config{
		Tenants:           []vippssim.Tenant{h.tenant, h.other},
		PublicURL:         "http://" + h.srv.Listener.Addr().String(),
		AllowHTTPLoopback: true,
		Now:               h.clock.Now,
		Logf:              t.Logf,
	}
	for _, m := range mods {
		m(&cfg)
	}
	sim, err := vippssim.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.sim = sim
	h.srv.Config.Handler = sim.Handler()
	h.srv.Start()
	t.Cleanup(func() {
		h.srv.Close()
		sim.Close()
	})
	h.client = &http.Client{
		Transport:     h.specs.Transport(t, nil),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
	h.token = h.fetchToken(h.tenant)
	return h
}

// call describes one HTTP request.
type call struct {
	method, path string
	body         any               // marshalled as JSON unless []byte or string
	header       map[string]string // set after the defaults; "" deletes
	invalid      bool              // the request deliberately violates the spec
	noAuth       bool              // send no default API headers
}

func (h *harness) do(c call) (*http.Response, []byte) {
	h.t.Helper()
	var rdr io.Reader
	switch b := c.body.(type) {
	case nil:
	case []byte:
		rdr = bytes.NewReader(b)
	case string:
		rdr = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			h.t.Fatalf("marshal: %v", err)
		}
		rdr = bytes.NewReader(data)
	}
	req, err := http.NewRequest(c.method, h.srv.URL+c.path, rdr)
	if err != nil {
		h.t.Fatalf("new request: %v", err)
	}
	if !c.noAuth {
		req.Header.Set("Authorization", "Bearer "+h.token)
		req.Header.Set("Ocp-Apim-Subscription-Key", h.tenant.SubscriptionKey)
		req.Header.Set("Merchant-Serial-Number", h.tenant.MerchantSerialNumber)
		req.Header.Set("Vipps-System-Name", "kasse")
		req.Header.Set("Vipps-System-Version", "0.1.0")
	}
	if rdr != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	if c.invalid {
		req = vippsspec.ExpectInvalidRequest(req)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("read body: %v", err)
	}
	return resp, body
}

func (h *harness) fetchToken(t vippssim.Tenant) string {
	h.t.Helper()
	resp, body := h.do(call{method: "POST", path: "/accesstoken/get", noAuth: true, header: map[string]string{
		"client_id": t.ClientID, "client_secret": t.ClientSecret, "Ocp-Apim-Subscription-Key": t.SubscriptionKey,
	}})
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	var tok map[string]string
	mustJSON(h.t, body, &tok)
	return tok["access_token"]
}

// initiateBody builds a valid regular initiate request.
func (h *harness) initiateBody(orderID string, amount int64) map[string]any {
	return map[string]any{
		"customerInfo": map[string]any{},
		"merchantInfo": map[string]any{
			"merchantSerialNumber": h.tenant.MerchantSerialNumber,
			"callbackPrefix":       h.sink.srv.URL + "/vipps/callbacks",
			"fallBack":             "https://shop.example/return/" + orderID,
			"authToken":            "cb-secret-" + orderID,
			"paymentType":          "eComm Regular Payment",
		},
		"transaction": map[string]any{
			"orderId":         orderID,
			"amount":          amount,
			"transactionText": "One pair of socks",
		},
	}
}

// initiate starts a payment and returns the landing page url.
func (h *harness) initiate(orderID string, amount int64) string {
	h.t.Helper()
	resp, body := h.do(call{method: "POST", path: "/ecomm/v2/payments", body: h.initiateBody(orderID, amount)})
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("initiate %s: %d %s", orderID, resp.StatusCode, body)
	}
	var out struct{ OrderID, URL string }
	mustJSON(h.t, body, &out)
	if out.OrderID != orderID {
		h.t.Fatalf("initiate: orderId %q, want %q", out.OrderID, orderID)
	}
	return out.URL
}

// reserved initiates and force-approves a payment, consuming its callback.
func (h *harness) reserved(orderID string, amount int64) {
	h.t.Helper()
	u := h.initiate(orderID, amount)
	resp, body := h.do(call{method: "POST", path: "/ecomm/v2/integration-test/payments/" + orderID + "/approve",
		body: map[string]any{"customerPhoneNumber": "91234567", "token": tokenOf(h.t, u)}})
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("force approve %s: %d %s", orderID, resp.StatusCode, body)
	}
	h.sink.wait(h.t)
}

func actionBody(msn string, amount any, text string) map[string]any {
	tx := map[string]any{"transactionText": text}
	if amount != nil {
		tx["amount"] = amount
	}
	return map[string]any{"merchantInfo": map[string]any{"merchantSerialNumber": msn}, "transaction": tx}
}

func (h *harness) capture(orderID string, amount any, requestID string) (*http.Response, []byte) {
	h.t.Helper()
	return h.do(call{method: "POST", path: "/ecomm/v2/payments/" + orderID + "/capture",
		body: actionBody(h.tenant.MerchantSerialNumber, amount, "Shipped"), header: map[string]string{"X-Request-Id": requestID}})
}

func (h *harness) refund(orderID string, amount any, requestID string) (*http.Response, []byte) {
	h.t.Helper()
	return h.do(call{method: "POST", path: "/ecomm/v2/payments/" + orderID + "/refund",
		body: actionBody(h.tenant.MerchantSerialNumber, amount, "Returned"), header: map[string]string{"X-Request-Id": requestID}})
}

func (h *harness) cancel(orderID string, release bool) (*http.Response, []byte) {
	h.t.Helper()
	b := actionBody(h.tenant.MerchantSerialNumber, nil, "Out of stock")
	if release {
		b["shouldReleaseRemainingFunds"] = true
	}
	return h.do(call{method: "PUT", path: "/ecomm/v2/payments/" + orderID + "/cancel", body: b})
}

type details struct {
	OrderID            string `json:"orderId"`
	TransactionSummary *struct {
		CapturedAmount           int64 `json:"capturedAmount"`
		RefundedAmount           int64 `json:"refundedAmount"`
		RemainingAmountToCapture int64 `json:"remainingAmountToCapture"`
		RemainingAmountToRefund  int64 `json:"remainingAmountToRefund"`
	} `json:"transactionSummary"`
	TransactionLogHistory []struct {
		Amount           int64  `json:"amount"`
		Operation        string `json:"operation"`
		OperationSuccess bool   `json:"operationSuccess"`
		RequestID        string `json:"requestId"`
		TimeStamp        string `json:"timeStamp"`
		TransactionID    string `json:"transactionId"`
		TransactionText  string `json:"transactionText"`
	} `json:"transactionLogHistory"`
}

func (d details) ops() string {
	var ops []string
	for _, e := range d.TransactionLogHistory {
		ops = append(ops, e.Operation)
	}
	return strings.Join(ops, ",")
}

func (h *harness) details(orderID string) details {
	h.t.Helper()
	resp, body := h.do(call{method: "GET", path: "/ecomm/v2/payments/" + orderID + "/details"})
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("details %s: %d %s", orderID, resp.StatusCode, body)
	}
	var d details
	mustJSON(h.t, body, &d)
	return d
}

type apiErr struct {
	ErrorGroup, ErrorCode, ErrorMessage, ContextID string
}

// expectError checks status and that the body is a Vipps error array whose
// first element has the group and code.
func expectError(t *testing.T, resp *http.Response, body []byte, status int, group, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, body)
	}
	var errs []apiErr
	if err := json.Unmarshal(body, &errs); err != nil || len(errs) == 0 {
		t.Fatalf("body is not a Vipps error array: %s", body)
	}
	if errs[0].ErrorGroup != group || errs[0].ErrorCode != code {
		t.Fatalf("error %s/%s (%s), want %s/%s", errs[0].ErrorGroup, errs[0].ErrorCode, errs[0].ErrorMessage, group, code)
	}
	if errs[0].ContextID == "" {
		t.Errorf("error has no contextId")
	}
}

// expectAzure checks an Azure-style error (authentication, routing).
func expectAzure(t *testing.T, resp *http.Response, body []byte, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, body)
	}
	var e struct {
		ResponseInfo struct{ ResponseCode int } `json:"responseInfo"`
		Result       struct{ Message string }   `json:"result"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.ResponseInfo.ResponseCode != status || e.Result.Message == "" {
		t.Fatalf("body is not an Azure error with code %d: %s", status, body)
	}
}

func mustJSON(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
}

func tokenOf(t *testing.T, landingURL string) string {
	t.Helper()
	u, err := url.Parse(landingURL)
	if err != nil {
		t.Fatalf("parse url %q: %v", landingURL, err)
	}
	return u.Query().Get("token")
}

// browser is a plain (unvalidated) client that follows no redirects.
func browser() *http.Client {
	return &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

var formAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)

// landing walks the landing page like a user: GET, phone number, then the
// button; it returns the final response.
func (h *harness) landing(landingURL, phone, button string) *http.Response {
	h.t.Helper()
	b := browser()
	resp, err := b.Get(landingURL)
	if err != nil {
		h.t.Fatalf("GET landing: %v", err)
	}
	page := readAll(h.t, resp)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("landing GET: %d %s", resp.StatusCode, page)
	}
	action := h.formAction(page)
	resp, err = b.PostForm(action, url.Values{"step": {"phone"}, "phone": {phone}})
	if err != nil {
		h.t.Fatalf("POST phone: %v", err)
	}
	page = readAll(h.t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Confirm in the Vipps app") {
		h.t.Fatalf("phone step: %d %s", resp.StatusCode, page)
	}
	resp, err = b.PostForm(h.formAction(page), url.Values{"step": {"confirm"}, "phone": {phone}, "action": {button}})
	if err != nil {
		h.t.Fatalf("POST %s: %v", button, err)
	}
	resp.Body.Close()
	return resp
}

func (h *harness) formAction(page string) string {
	h.t.Helper()
	m := formAction.FindStringSubmatch(page)
	if m == nil {
		h.t.Fatalf("no form in page: %s", page)
	}
	// html/template escapes & in attributes as &amp;
	return h.srv.URL + strings.ReplaceAll(m[1], "&amp;", "&")
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}
