package provider_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/provider"
	"github.com/kassehq/kasse/plugin/abi"
)

const (
	clientSecret    = "the-client-secret"
	subscriptionKey = "the-subscription-key"
)

// seen is one request the fake provider received.
type seen struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   string
}

// fakeVipps is a loopback provider: POST /accesstoken/get issues tokens "token-1", "token-2", ...;
// every other path answers with api (default: 200 {"ok":true}).
type fakeVipps struct {
	srv *httptest.Server

	mu     sync.Mutex
	tokens []seen
	calls  []seen

	// tokenBody returns the token endpoint's status and body for the n-th token request (1-based).
	tokenBody func(n int) (int, string)
	// tokenGate, if set, holds every token request until it is closed; tokenArrived is signalled
	// (without blocking) when one arrives.
	tokenGate    chan struct{}
	tokenArrived chan struct{}
	// api answers API calls.
	api func(w http.ResponseWriter, r *http.Request, s seen)
	// basePath is the path the fake's API lives under, like a provider behind a path-routing proxy.
	basePath string
}

func newFake(t *testing.T) *fakeVipps {
	t.Helper()
	f := &fakeVipps{
		tokenBody: func(n int) (int, string) {
			return 200, fmt.Sprintf(`{"token_type":"Bearer","expires_in":"3600","ext_expires_in":"0","expires_on":"0","not_before":"0","resource":"x","access_token":"token-%d"}`, n)
		},
		api: func(w http.ResponseWriter, _ *http.Request, _ seen) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"ok":true}`)
		},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeVipps) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s := seen{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: string(body)}
	f.mu.Lock()
	base := f.basePath
	f.mu.Unlock()
	if r.URL.Path == base+"/accesstoken/get" {
		f.mu.Lock()
		f.tokens = append(f.tokens, s)
		n := len(f.tokens)
		gate, arrived, answer := f.tokenGate, f.tokenArrived, f.tokenBody
		f.mu.Unlock()
		if arrived != nil {
			select {
			case arrived <- struct{}{}:
			default:
			}
		}
		if gate != nil {
			<-gate
		}
		status, b := answer(n)
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, b)
		return
	}
	f.mu.Lock()
	f.calls = append(f.calls, s)
	api := f.api
	f.mu.Unlock()
	api(w, r, s)
}

func (f *fakeVipps) counts() (tokens, calls int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tokens), len(f.calls)
}

func (f *fakeVipps) lastCall(t *testing.T) seen {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		t.Fatal("no API call reached the provider")
	}
	return f.calls[len(f.calls)-1]
}

func (f *fakeVipps) endpoint() provider.Endpoint {
	return provider.Endpoint{
		MerchantID: "demo", BaseURL: f.srv.URL, MerchantSerialNumber: "123456", ClientID: "demo-client-id",
		ClientSecret: config.Secret(clientSecret), SubscriptionKey: config.Secret(subscriptionKey),
	}
}

// clock is a fake clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newClient(f *fakeVipps, now func() time.Time) *provider.Client {
	return provider.New(f.srv.Client(), provider.SystemInfo{Name: "kasse", Version: "0.1.0"}, now)
}

func call(f *fakeVipps, req *abi.Request) provider.Call {
	return provider.Call{Endpoint: f.endpoint(), Request: req, PluginName: "vipps-ecom", PluginVersion: "sha256-0123456789ab",
		Inject: map[string]string{abi.InjectCallbackToken: "cb-token"}}
}

var initiate = &abi.Request{Method: "POST", Path: "/ecomm/v2/payments",
	Body: json.RawMessage(`{"merchantInfo":{"merchantSerialNumber":"123456"},"transaction":{"amount":49900}}`)}

// TestHeaders checks the exact headers of API calls and of the token request.
func TestHeaders(t *testing.T) {
	common := map[string]string{
		"Authorization":               "Bearer token-1",
		"Ocp-Apim-Subscription-Key":   subscriptionKey,
		"Merchant-Serial-Number":      "123456",
		"Vipps-System-Name":           "kasse",
		"Vipps-System-Version":        "0.1.0",
		"Vipps-System-Plugin-Name":    "vipps-ecom",
		"Vipps-System-Plugin-Version": "sha256-0123456789ab",
		"User-Agent":                  "kasse/0.1.0",
		"Accept-Encoding":             "gzip",
	}
	tests := []struct {
		name  string
		req   abi.Request
		key   string
		extra map[string]string
	}{
		{name: "post with body", req: *initiate,
			extra: map[string]string{"Content-Type": "application/json"}},
		{name: "capture with X-Request-Id",
			req: abi.Request{Method: "POST", Path: "/ecomm/v2/payments/o-1/capture", Body: json.RawMessage(`{"transaction":{"transactionText":"x"}}`),
				IdempotencyHeader: "X-Request-Id"},
			key:   "req-0001",
			extra: map[string]string{"Content-Type": "application/json", "X-Request-Id": "req-0001"}},
		{name: "lowercase idempotency header name",
			req: abi.Request{Method: "PUT", Path: "/epayment/v1/payments/o-1/cancel", Body: json.RawMessage(`{}`),
				IdempotencyHeader: "idempotency-key"},
			key:   "k-1",
			extra: map[string]string{"Content-Type": "application/json", "Idempotency-Key": "k-1"}},
		{name: "get without body", req: abi.Request{Method: "GET", Path: "/ecomm/v2/payments/o-1/details"}},
		{name: "delete without body", req: abi.Request{Method: "DELETE", Path: "/x/1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			c := newClient(f, nil)
			cl := call(f, &tt.req)
			cl.IdempotencyKey = tt.key
			resp, err := c.Do(context.Background(), cl)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != 200 || string(resp.Body) != `{"ok":true}` {
				t.Errorf("response %d %s", resp.Status, resp.Body)
			}
			got := f.lastCall(t)
			if got.Method != tt.req.Method || got.Path != tt.req.Path {
				t.Errorf("sent %s %s", got.Method, got.Path)
			}
			want := map[string]string{}
			for k, v := range common {
				want[k] = v
			}
			for k, v := range tt.extra {
				want[k] = v
			}
			if len(tt.req.Body) > 0 {
				want["Content-Length"] = strconv.Itoa(len(tt.req.Body))
			}
			assertHeaders(t, got.Header, want)
			if string(tt.req.Body) != got.Body {
				t.Errorf("body %q, want %q", got.Body, tt.req.Body)
			}

			f.mu.Lock()
			tok := f.tokens[0]
			f.mu.Unlock()
			if tok.Method != "POST" || tok.Body != "" {
				t.Errorf("token request %s with body %q", tok.Method, tok.Body)
			}
			assertHeaders(t, tok.Header, map[string]string{
				"Client_id":                   "demo-client-id",
				"Client_secret":               clientSecret,
				"Ocp-Apim-Subscription-Key":   subscriptionKey,
				"Merchant-Serial-Number":      "123456",
				"Vipps-System-Name":           "kasse",
				"Vipps-System-Version":        "0.1.0",
				"Vipps-System-Plugin-Name":    "vipps-ecom",
				"Vipps-System-Plugin-Version": "sha256-0123456789ab",
				"User-Agent":                  "kasse/0.1.0",
				"Accept-Encoding":             "gzip",
				"Content-Length":              "0",
			})
		})
	}
}

func assertHeaders(t *testing.T, got http.Header, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if g := got.Values(k); len(g) != 1 || g[0] != v {
			t.Errorf("header %s = %q, want %q", k, g, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected header %s: %q", k, got[k])
		}
	}
}

// TestTokenHeaderSpelling checks that client_id and client_secret leave kasse spelt as the spec spells
// them, not canonicalised to Client_id.
func TestTokenHeaderSpelling(t *testing.T) {
	f := newFake(t)
	var mu sync.Mutex
	var keys []string
	hc := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		if r.URL.Path == "/accesstoken/get" {
			mu.Lock()
			for k := range r.Header {
				keys = append(keys, k)
			}
			mu.Unlock()
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	c := provider.New(hc, provider.SystemInfo{Name: "kasse", Version: "0.1.0"}, nil)
	if _, err := c.Do(context.Background(), call(f, initiate)); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(keys, "client_id") || !slices.Contains(keys, "client_secret") {
		t.Errorf("token request header keys %q", keys)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestTokenSharedByConcurrentCalls sends 20 calls at once: one token request serves them all.
func TestTokenSharedByConcurrentCalls(t *testing.T) {
	f := newFake(t)
	f.tokenGate = make(chan struct{})
	f.tokenArrived = make(chan struct{}, 1)
	c := newClient(f, nil)

	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			if _, err := c.Do(context.Background(), call(f, initiate)); err != nil {
				errs <- err
			}
		})
	}
	<-f.tokenArrived
	// Give the other callers time to find no token and join the fetch in flight; a caller that comes
	// later finds the token cached. Either way one fetch must serve all 20.
	time.Sleep(50 * time.Millisecond)
	close(f.tokenGate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	tokens, calls := f.counts()
	if tokens != 1 || calls != n {
		t.Errorf("%d token requests and %d calls, want 1 and %d", tokens, calls, n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.calls {
		if s.Header.Get("Authorization") != "Bearer token-1" {
			t.Errorf("call with %q", s.Header.Get("Authorization"))
		}
	}
}

// TestTokenFetchOutlivesTheCallerThatStartedIt: the caller whose request started a token fetch gives
// up; the fetch goes on for the callers still waiting.
func TestTokenFetchOutlivesTheCallerThatStartedIt(t *testing.T) {
	f := newFake(t)
	f.tokenGate = make(chan struct{})
	f.tokenArrived = make(chan struct{}, 1)
	c := newClient(f, nil)

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := c.Do(ctx, call(f, initiate))
		first <- err
	}()
	<-f.tokenArrived
	second := make(chan error, 1)
	go func() {
		_, err := c.Do(context.Background(), call(f, initiate))
		second <- err
	}()
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: %v", err)
	}
	close(f.tokenGate)
	if err := <-second; err != nil {
		t.Errorf("waiting caller: %v", err)
	}
	if tokens, calls := f.counts(); tokens != 1 || calls != 1 {
		t.Errorf("%d token requests and %d calls, want 1 and 1", tokens, calls)
	}
}

// TestTokenExpiry checks that a token is reused until its expiry minus min(5 min, 10% of its lifetime)
// and then fetched again.
func TestTokenExpiry(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		reuseAt time.Duration // still the cached token
		fetchAt time.Duration // a new token
	}{
		{name: "one hour (test environment)", body: `"expires_in":"3600"`, reuseAt: 3299 * time.Second, fetchAt: 3300 * time.Second},
		{name: "24 hours (production)", body: `"expires_in":86400`, reuseAt: 86099 * time.Second, fetchAt: 86100 * time.Second},
		{name: "ten minutes: margin is 10%", body: `"expires_in":"600"`, reuseAt: 539 * time.Second, fetchAt: 540 * time.Second},
		{name: "expires_on only", body: `"expires_on":"%d"`, reuseAt: 3299 * time.Second, fetchAt: 3300 * time.Second},
		{name: "lifetime capped at 24 hours", body: `"expires_in":"315360000"`, reuseAt: 86099 * time.Second, fetchAt: 86100 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			f := newFake(t)
			body := tt.body
			if strings.Contains(body, "%d") {
				body = fmt.Sprintf(body, clk.Now().Add(time.Hour).Unix())
			}
			f.tokenBody = func(n int) (int, string) {
				return 200, fmt.Sprintf(`{"token_type":"Bearer","access_token":"token-%d",%s}`, n, body)
			}
			c := newClient(f, clk.Now)
			do := func() string {
				t.Helper()
				if _, err := c.Do(context.Background(), call(f, initiate)); err != nil {
					t.Fatal(err)
				}
				return f.lastCall(t).Header.Get("Authorization")
			}
			start := clk.Now()
			if got := do(); got != "Bearer token-1" {
				t.Fatalf("first call with %q", got)
			}
			clk.Add(tt.reuseAt - clk.Now().Sub(start))
			if got := do(); got != "Bearer token-1" {
				t.Errorf("at +%s: %q, want the cached token", tt.reuseAt, got)
			}
			clk.Add(tt.fetchAt - clk.Now().Sub(start))
			if got := do(); got != "Bearer token-2" {
				t.Errorf("at +%s: %q, want a new token", tt.fetchAt, got)
			}
		})
	}
}

// TestTokenDecode feeds the token endpoint's answer in the shapes seen in the spec, the guide and other
// examples.
func TestTokenDecode(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		cached  bool   // the token is reused by a second call
		wantErr string // the whole error of Do
	}{
		{name: "spec example: numbers as strings", cached: true,
			body: `{"token_type":"Bearer","expires_in":"86398","ext_expires_in":"0","expires_on":"1495271273","not_before":"1495184574","resource":"00000002-0000-0000-c000-000000000000","access_token":"tok"}`},
		{name: "numbers", cached: true, body: `{"token_type":"Bearer","expires_in":3600,"ext_expires_in":0,"expires_on":1495271273,"access_token":"tok"}`},
		{name: "float and padded string", cached: true, body: `{"token_type":"bearer","expires_in":3600.0,"expires_on":" 1495271273 ","access_token":"tok"}`},
		{name: "miami-style: only expires_in", cached: true, body: `{"access_token":"tok","token_type":"Bearer","expires_in":900}`},
		{name: "no lifetime: used once, not cached", cached: false, body: `{"access_token":"tok","expires_in":"soon","expires_on":null}`},
		{name: "no token", body: `{"token_type":"Bearer","expires_in":"3600"}`,
			wantErr: `provider: merchant[demo] POST /ecomm/v2/payments: access token: status 200: answer has no usable access_token`},
		{name: "not JSON", body: `<html>token=abc</html>`,
			wantErr: `provider: merchant[demo] POST /ecomm/v2/payments: access token: status 200: answer is not a token response`},
		{name: "another token type", body: `{"token_type":"MAC","expires_in":"3600","access_token":"tok"}`,
			wantErr: `provider: merchant[demo] POST /ecomm/v2/payments: access token: status 200: token_type is not Bearer`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.tokenBody = func(int) (int, string) { return 200, tt.body }
			c := newClient(f, newClock().Now)
			_, err := c.Do(context.Background(), call(f, initiate))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("got  %v\nwant %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := f.lastCall(t).Header.Get("Authorization"); got != "Bearer tok" {
				t.Errorf("Authorization %q", got)
			}
			if _, err := c.Do(context.Background(), call(f, initiate)); err != nil {
				t.Fatal(err)
			}
			want := 2
			if tt.cached {
				want = 1
			}
			if tokens, _ := f.counts(); tokens != want {
				t.Errorf("%d token requests, want %d", tokens, want)
			}
		})
	}
}

// TestTokenFailure: the error names the merchant and the status, and never the secret, the
// subscription key or a token, even when the provider echoes them.
func TestTokenFailure(t *testing.T) {
	f := newFake(t)
	f.tokenBody = func(int) (int, string) {
		return 401, `{"statusCode":401,"message":"Invalid client_secret ` + clientSecret + ` for key ` + subscriptionKey + `"}`
	}
	c := newClient(f, nil)
	_, err := c.Do(context.Background(), call(f, initiate))
	want := `provider: merchant[demo] POST /ecomm/v2/payments: access token: status 401: {"statusCode":401,"message":"Invalid client_secret [redacted] for key [redacted]"}`
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
	var te *provider.TokenError
	if !errors.As(err, &te) || te.Status != 401 || te.Merchant != "demo" {
		t.Errorf("not a *TokenError for demo with status 401: %#v", te)
	}
	if _, calls := f.counts(); calls != 0 {
		t.Errorf("%d API calls sent without a token", calls)
	}

	// A long answer is cut short after the secrets are removed.
	f.mu.Lock()
	f.tokenBody = func(int) (int, string) {
		return 500, strings.Repeat("x", 190) + clientSecret + strings.Repeat("y", 300)
	}
	f.mu.Unlock()
	_, err = c.Do(context.Background(), call(f, initiate))
	if err == nil || strings.Contains(err.Error(), clientSecret[:8]) || !strings.HasSuffix(err.Error(), "...") ||
		!strings.Contains(err.Error(), "status 500") {
		t.Errorf("long answer: %v", err)
	}

	// Unreachable token endpoint.
	f.srv.Close()
	_, err = c.Do(context.Background(), call(f, initiate))
	if err == nil || !strings.HasPrefix(err.Error(), "provider: merchant[demo] POST /ecomm/v2/payments: access token: ") ||
		!errors.As(err, &te) || te.Status != 0 || te.Err == nil {
		t.Errorf("unreachable: %v", err)
	}
	for _, s := range []string{clientSecret, subscriptionKey} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}

// TestRetryAfter401 checks that a 401 drops the token and sends the call once more with a new one.
func TestRetryAfter401(t *testing.T) {
	tests := []struct {
		name       string
		rejected   func(token string) bool
		wantStatus int
		wantTokens int
		wantCalls  int
	}{
		{name: "stale token", rejected: func(tok string) bool { return tok == "Bearer token-1" },
			wantStatus: 200, wantTokens: 2, wantCalls: 2},
		{name: "always 401: retried once, answer returned", rejected: func(string) bool { return true },
			wantStatus: 401, wantTokens: 2, wantCalls: 2},
		{name: "no 401: no retry", rejected: func(string) bool { return false },
			wantStatus: 200, wantTokens: 1, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.api = func(w http.ResponseWriter, r *http.Request, s seen) {
				if tt.rejected(r.Header.Get("Authorization")) {
					w.WriteHeader(401)
					_, _ = io.WriteString(w, `{"statusCode":401,"message":"Access token has expired"}`)
					return
				}
				_, _ = io.WriteString(w, `{"ok":true}`)
			}
			c := newClient(f, nil)
			cl := call(f, &abi.Request{Method: "POST", Path: "/ecomm/v2/payments/o/capture", Body: json.RawMessage(`{"a":1}`), IdempotencyHeader: "X-Request-Id"})
			cl.IdempotencyKey = "same-key"
			resp, err := c.Do(context.Background(), cl)
			if err != nil {
				t.Fatal(err)
			}
			tokens, calls := f.counts()
			if resp.Status != tt.wantStatus || tokens != tt.wantTokens || calls != tt.wantCalls {
				t.Errorf("status %d after %d token requests and %d calls; want %d, %d, %d",
					resp.Status, tokens, calls, tt.wantStatus, tt.wantTokens, tt.wantCalls)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			for _, s := range f.calls {
				if s.Body != `{"a":1}` || s.Header.Get("X-Request-Id") != "same-key" {
					t.Errorf("attempt sent body %q, X-Request-Id %q", s.Body, s.Header.Get("X-Request-Id"))
				}
			}
		})
	}
}

// TestRefusedRequests checks requests that must not be sent at all.
func TestRefusedRequests(t *testing.T) {
	tests := []struct {
		name    string
		base    string // default: the fake's URL
		req     abi.Request
		key     string
		inject  map[string]string
		wantErr string
	}{
		{name: "protocol-relative path", req: abi.Request{Method: "GET", Path: "//evil.example/x"},
			wantErr: `provider: merchant[demo]: request path "//evil.example/x" leaves the merchant's base URL`},
		{name: "absolute URL", req: abi.Request{Method: "GET", Path: "https://evil.example/x"},
			wantErr: `provider: merchant[demo]: request path "https://evil.example/x" leaves the merchant's base URL`},
		{name: "no leading slash", req: abi.Request{Method: "GET", Path: "@evil.example/x"},
			wantErr: `provider: merchant[demo]: request path "@evil.example/x" leaves the merchant's base URL`},
		{name: "empty path", req: abi.Request{Method: "GET", Path: ""},
			wantErr: `provider: merchant[demo]: request path "" leaves the merchant's base URL`},
		{name: "dot-dot", req: abi.Request{Method: "GET", Path: "/ecomm/../admin"},
			wantErr: `provider: merchant[demo]: request path "/ecomm/../admin" leaves the merchant's base URL`},
		{name: "encoded dot-dot", req: abi.Request{Method: "GET", Path: "/ecomm/%2e%2E/admin"},
			wantErr: `provider: merchant[demo]: request path "/ecomm/%2e%2E/admin" leaves the merchant's base URL`},
		{name: "encoded slash", req: abi.Request{Method: "GET", Path: "/%2F%2Fevil.example/x"},
			wantErr: `provider: merchant[demo]: request path "/%2F%2Fevil.example/x" leaves the merchant's base URL`},
		{name: "backslash", req: abi.Request{Method: "GET", Path: "/\\evil.example/x"},
			wantErr: `provider: merchant[demo]: request path "/\\evil.example/x" leaves the merchant's base URL`},
		{name: "encoded backslash", req: abi.Request{Method: "GET", Path: "/%5Cevil.example/x"},
			wantErr: `provider: merchant[demo]: request path "/%5Cevil.example/x" leaves the merchant's base URL`},
		{name: "encoded dot-dot in the query", req: abi.Request{Method: "GET", Path: "/x?a=%2E%2E"},
			wantErr: `provider: merchant[demo]: request path "/x?a=%2E%2E" leaves the merchant's base URL`},
		{name: "encoded control character in the query", req: abi.Request{Method: "GET", Path: "/x?a=%0D%0AHost:evil"},
			wantErr: `provider: merchant[demo]: request path "/x?a=%0D%0AHost:evil" leaves the merchant's base URL`},
		{name: "host in the query", req: abi.Request{Method: "GET", Path: "/x?next=http://evil.example/"},
			wantErr: `provider: merchant[demo]: request path "/x?next=http://evil.example/" leaves the merchant's base URL`},
		{name: "fragment", req: abi.Request{Method: "GET", Path: "/x#@evil.example"},
			wantErr: `provider: merchant[demo]: request path "/x#@evil.example" leaves the merchant's base URL`},
		{name: "header injection", req: abi.Request{Method: "GET", Path: "/x\r\nHost: evil.example"},
			wantErr: `provider: merchant[demo]: request path "/x\r\nHost: evil.example" leaves the merchant's base URL`},
		{name: "out of the base URL's path", base: "https://api.vipps.no/vipps", req: abi.Request{Method: "GET", Path: "/../x"},
			wantErr: `provider: merchant[demo]: request path "/../x" leaves the merchant's base URL`},
		{name: "plain http to a remote host", base: "http://api.vipps.no", req: abi.Request{Method: "GET", Path: "/x"},
			wantErr: `provider: merchant[demo]: base URL "http://api.vipps.no" must be https (plain http only to loopback hosts)`},
		{name: "base URL with user info", base: "https://u:p@api.vipps.no", req: abi.Request{Method: "GET", Path: "/x"},
			wantErr: `provider: merchant[demo]: base URL is not an absolute http(s) URL without user info, query or fragment`},
		{name: "method", req: abi.Request{Method: "PATCH", Path: "/x"},
			wantErr: `provider: merchant[demo]: method "PATCH" is not allowed (want GET, POST, PUT or DELETE)`},
		{name: "lowercase method", req: abi.Request{Method: "post", Path: "/x"},
			wantErr: `provider: merchant[demo]: method "post" is not allowed (want GET, POST, PUT or DELETE)`},
		{name: "body not an object", req: abi.Request{Method: "POST", Path: "/x", Body: json.RawMessage(`[1,2]`)},
			wantErr: `provider: merchant[demo]: POST /x: request body is not a JSON object`},
		{name: "body not JSON", req: abi.Request{Method: "POST", Path: "/x", Body: json.RawMessage(`{"a":`)},
			wantErr: `provider: merchant[demo]: POST /x: request body is not a JSON object`},
		{name: "GET with a body", req: abi.Request{Method: "GET", Path: "/x", Body: json.RawMessage(`{}`)},
			wantErr: `provider: merchant[demo]: GET /x: a GET request has no body`},
		{name: "idempotency key missing", req: abi.Request{Method: "POST", Path: "/x", Body: json.RawMessage(`{}`), IdempotencyHeader: "X-Request-Id"},
			wantErr: `provider: merchant[demo]: POST /x: idempotency header X-Request-Id needs a key`},
		{name: "X-Request-Id over 40", req: abi.Request{Method: "POST", Path: "/x", Body: json.RawMessage(`{}`), IdempotencyHeader: "X-Request-Id"},
			key:     strings.Repeat("k", 41),
			wantErr: `provider: merchant[demo]: POST /x: X-Request-Id is 41 characters, more than 40`},
		{name: "Idempotency-Key over 50", req: abi.Request{Method: "POST", Path: "/x", Body: json.RawMessage(`{}`), IdempotencyHeader: "Idempotency-Key"},
			key:     strings.Repeat("k", 51),
			wantErr: `provider: merchant[demo]: POST /x: Idempotency-Key is 51 characters, more than 50`},
		{name: "idempotency key with a newline", req: abi.Request{Method: "POST", Path: "/x", Body: json.RawMessage(`{}`), IdempotencyHeader: "X-Request-Id"},
			key:     "a\nb",
			wantErr: `provider: merchant[demo]: POST /x: X-Request-Id must be printable ASCII without spaces`},
		{name: "credential header as idempotency header", req: abi.Request{Method: "POST", Path: "/x", Body: json.RawMessage(`{}`), IdempotencyHeader: "Authorization"},
			key:     "k",
			wantErr: `provider: merchant[demo]: idempotency header "Authorization" is not one the provider uses (X-Request-Id, Idempotency-Key)`},
		{name: "inject value missing", req: abi.Request{Method: "POST", Path: "/x", Body: json.RawMessage(`{"a":{}}`),
			Inject: []abi.Injection{{Pointer: "/a/b", Value: "nope"}}},
			wantErr: `provider: merchant[demo]: POST /x: inject /a/b: host value "nope" is not available`},
		{name: "inject value empty", req: abi.Request{Method: "POST", Path: "/x", Body: json.RawMessage(`{"a":{}}`),
			Inject: []abi.Injection{{Pointer: "/a/b", Value: abi.InjectCallbackToken}}},
			inject:  map[string]string{abi.InjectCallbackToken: ""},
			wantErr: `provider: merchant[demo]: POST /x: inject /a/b: host value "callbackToken" is not available`},
		{name: "inject into a missing object", req: abi.Request{Method: "POST", Path: "/x", Body: json.RawMessage(`{"a":{}}`),
			Inject: []abi.Injection{{Pointer: "/b/c", Value: abi.InjectCallbackToken}}},
			wantErr: `provider: merchant[demo]: POST /x: inject /b/c: no member "b"`},
		{name: "inject through a string", req: abi.Request{Method: "POST", Path: "/x", Body: json.RawMessage(`{"a":"s"}`),
			Inject: []abi.Injection{{Pointer: "/a/b", Value: abi.InjectCallbackToken}}},
			wantErr: `provider: merchant[demo]: POST /x: inject /a/b: "b" is inside a value that is not an object or array`},
		{name: "inject past an array's end", req: abi.Request{Method: "POST", Path: "/x", Body: json.RawMessage(`{"a":[1]}`),
			Inject: []abi.Injection{{Pointer: "/a/1", Value: abi.InjectCallbackToken}}},
			wantErr: `provider: merchant[demo]: POST /x: inject /a/1: no element "1"`},
		{name: "inject replacing the body", req: abi.Request{Method: "POST", Path: "/x", Body: json.RawMessage(`{}`),
			Inject: []abi.Injection{{Pointer: "", Value: abi.InjectCallbackToken}}},
			wantErr: `provider: merchant[demo]: POST /x: inject : pointer must start with "/" (the body itself cannot be replaced)`},
		{name: "inject without a body", req: abi.Request{Method: "POST", Path: "/x",
			Inject: []abi.Injection{{Pointer: "/a", Value: abi.InjectCallbackToken}}},
			wantErr: `provider: merchant[demo]: POST /x: inject needs a request body`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			c := newClient(f, nil)
			cl := call(f, &tt.req)
			if tt.base != "" {
				cl.Endpoint.BaseURL = tt.base
			}
			cl.IdempotencyKey = tt.key
			if tt.inject != nil {
				cl.Inject = tt.inject
			}
			_, err := c.Do(context.Background(), cl)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("got  %v\nwant %s", err, tt.wantErr)
			}
			var re *provider.RequestError
			if !errors.As(err, &re) || re.Merchant != "demo" {
				t.Errorf("not a *RequestError for demo: %T", err)
			}
			if tokens, calls := f.counts(); tokens != 0 || calls != 0 {
				t.Errorf("%d token requests and %d calls were sent", tokens, calls)
			}
		})
	}
}

// TestAcceptedPaths checks paths that stay under the base URL, with and without a base path.
func TestAcceptedPaths(t *testing.T) {
	tests := []struct {
		basePath, path, wantPath, wantQuery string
	}{
		{"", "/ecomm/v2/payments/acme-shop-123-order123abc/details", "/ecomm/v2/payments/acme-shop-123-order123abc/details", ""},
		{"/", "/ecomm/v2/payments", "/ecomm/v2/payments", ""},
		{"/vipps", "/ecomm/v2/payments", "/vipps/ecomm/v2/payments", ""},
		{"", "/epayment/v1/payments?pageSize=10", "/epayment/v1/payments", "pageSize=10"},
		{"", "/a%20b/c.d", "/a b/c.d", ""},
		{"", "/x?a=b%26c", "/x", "a=b%26c"},
		// A Report API cursor is base64: it may hold "//", escaped in the query.
		{"", "/report/v2/ledgers/302321/funds/feed?cursor=ab%2F%2Fcd%2B%3D", "/report/v2/ledgers/302321/funds/feed", "cursor=ab%2F%2Fcd%2B%3D"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			f := newFake(t)
			c := newClient(f, nil)
			cl := call(f, &abi.Request{Method: "GET", Path: tt.path})
			cl.Endpoint.BaseURL = f.srv.URL + tt.basePath
			f.mu.Lock()
			f.basePath = strings.TrimSuffix(tt.basePath, "/") // the token endpoint is under it too
			f.mu.Unlock()
			if _, err := c.Do(context.Background(), cl); err != nil {
				t.Fatal(err)
			}
			got := f.lastCall(t)
			if got.Path != tt.wantPath || got.RawQuery != tt.wantQuery {
				t.Errorf("sent %s ? %s, want %s ? %s", got.Path, got.RawQuery, tt.wantPath, tt.wantQuery)
			}
		})
	}
}

// TestInject checks that host values land at their pointers and the rest of the body is unchanged.
func TestInject(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		inject []abi.Injection
		want   string
	}{
		{name: "new member",
			body:   `{"merchantInfo":{"merchantSerialNumber":"123456","callbackPrefix":"https://k.example/cb"},"transaction":{"amount":49900}}`,
			inject: []abi.Injection{{Pointer: "/merchantInfo/authToken", Value: abi.InjectCallbackToken}},
			want:   `{"merchantInfo":{"authToken":"cb-token","callbackPrefix":"https://k.example/cb","merchantSerialNumber":"123456"},"transaction":{"amount":49900}}`},
		{name: "replace a placeholder", body: `{"a":{"t":"PLACEHOLDER"}}`,
			inject: []abi.Injection{{Pointer: "/a/t", Value: abi.InjectCallbackToken}},
			want:   `{"a":{"t":"cb-token"}}`},
		{name: "escaped tokens", body: `{"a/b":{"c~d":{}}}`,
			inject: []abi.Injection{{Pointer: "/a~1b/c~0d/e", Value: abi.InjectCallbackToken}},
			want:   `{"a/b":{"c~d":{"e":"cb-token"}}}`},
		{name: "array element", body: `{"list":[{"x":1},{"x":2}]}`,
			inject: []abi.Injection{{Pointer: "/list/1/token", Value: abi.InjectCallbackToken}},
			want:   `{"list":[{"x":1},{"token":"cb-token","x":2}]}`},
		{name: "two values; big and fractional numbers kept exact", body: `{"n":12345678901234567890,"f":99.10,"s":"<&>"}`,
			inject: []abi.Injection{{Pointer: "/t1", Value: abi.InjectCallbackToken}, {Pointer: "/t2", Value: "other"}},
			want:   `{"f":99.10,"n":12345678901234567890,"s":"<&>","t1":"cb-token","t2":"other value"}`},
		{name: "no injection: body sent as built", body: ` {"b":1, "a":2} `,
			want: `{"b":1, "a":2}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			c := newClient(f, nil)
			cl := call(f, &abi.Request{Method: "POST", Path: "/x", Body: json.RawMessage(tt.body), Inject: tt.inject})
			cl.Inject = map[string]string{abi.InjectCallbackToken: "cb-token", "other": "other value"}
			if _, err := c.Do(context.Background(), cl); err != nil {
				t.Fatal(err)
			}
			got := f.lastCall(t)
			if got.Body != tt.want {
				t.Errorf("body\n got %s\nwant %s", got.Body, tt.want)
			}
			if cl := got.Header.Get("Content-Length"); cl != strconv.Itoa(len(tt.want)) {
				t.Errorf("Content-Length %s for %d bytes", cl, len(tt.want))
			}
		})
	}
	// The plugin's request is not changed: the next call injects again from the same body.
	req := &abi.Request{Method: "POST", Path: "/x", Body: json.RawMessage(`{}`), Inject: []abi.Injection{{Pointer: "/t", Value: abi.InjectCallbackToken}}}
	f := newFake(t)
	if _, err := newClient(f, nil).Do(context.Background(), call(f, req)); err != nil {
		t.Fatal(err)
	}
	if string(req.Body) != `{}` {
		t.Errorf("request body changed to %s", req.Body)
	}
}

// TestResponses checks how answers reach the plugin.
func TestResponses(t *testing.T) {
	big := `"` + strings.Repeat("a", provider.MaxResponseBytes-2) + `"`
	tests := []struct {
		name       string
		status     int
		body       string
		chunked    bool
		wantBody   string
		wantErr    string
		wantStatus int
	}{
		{name: "JSON object", status: 200, body: `{"orderId":"o-1","url":"https://x"}`, wantBody: `{"orderId":"o-1","url":"https://x"}`},
		{name: "eCom error array", status: 400,
			body:     `[{"errorGroup":"Payment","errorMessage":"Refused","errorCode":"42","contextId":"c"}]`,
			wantBody: `[{"errorGroup":"Payment","errorMessage":"Refused","errorCode":"42","contextId":"c"}]`},
		{name: "Azure HTML page", status: 502, body: "<html><body>Bad gateway</body></html>\n",
			wantBody: `"\u003chtml\u003e\u003cbody\u003eBad gateway\u003c/body\u003e\u003c/html\u003e\n"`},
		{name: "plain text", status: 429, body: "Rate limit is exceeded.", wantBody: `"Rate limit is exceeded."`},
		{name: "empty", status: 204, body: "", wantBody: ""},
		{name: "whitespace around JSON", status: 200, body: "\n {\"a\":1}\n", wantBody: `{"a":1}`},
		{name: "exactly 1 MiB", status: 200, body: big, wantBody: big},
		{name: "exactly 1 MiB, chunked", status: 200, body: big, chunked: true, wantBody: big},
		{name: "over 1 MiB", status: 200, body: big + " ",
			wantErr: "provider: merchant[demo] GET /x: status 200: response body of 1048577 bytes is over the 1048576 byte limit"},
		{name: "over 1 MiB, chunked", status: 200, body: big + " ", chunked: true,
			wantErr: "provider: merchant[demo] GET /x: status 200: response body is over the 1048576 byte limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.api = func(w http.ResponseWriter, _ *http.Request, _ seen) {
				if !tt.chunked {
					w.Header().Set("Content-Length", strconv.Itoa(len(tt.body)))
				}
				w.WriteHeader(tt.status)
				if tt.chunked {
					half := len(tt.body) / 2
					_, _ = io.WriteString(w, tt.body[:half])
					w.(http.Flusher).Flush()
					_, _ = io.WriteString(w, tt.body[half:])
					return
				}
				_, _ = io.WriteString(w, tt.body)
			}
			resp, err := newClient(f, nil).Do(context.Background(), call(f, &abi.Request{Method: "GET", Path: "/x"}))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("got  %v\nwant %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tt.status || string(resp.Body) != tt.wantBody {
				t.Errorf("got %d %.100s, want %d %.100s", resp.Status, resp.Body, tt.status, tt.wantBody)
			}
			if len(resp.Body) > 0 && !json.Valid(resp.Body) {
				t.Error("body is not JSON")
			}
		})
	}
}

// TestTransportErrors checks that timeouts and refused connections are wrapped with the call's context.
func TestTransportErrors(t *testing.T) {
	f := newFake(t)
	release := make(chan struct{})
	f.api = func(w http.ResponseWriter, r *http.Request, _ seen) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
	defer close(release)
	c := newClient(f, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Do(ctx, call(f, initiate))
	if err == nil || !errors.Is(err, context.DeadlineExceeded) ||
		!strings.HasPrefix(err.Error(), "provider: merchant[demo] POST /ecomm/v2/payments: ") {
		t.Errorf("timeout: %v", err)
	}

	// A token is cached; the provider then goes away.
	f.srv.CloseClientConnections()
	f.srv.Listener.Close()
	_, err = c.Do(context.Background(), call(f, initiate))
	if err == nil || !strings.HasPrefix(err.Error(), "provider: merchant[demo] POST /ecomm/v2/payments: Post ") {
		t.Errorf("refused: %v", err)
	}
	var re *provider.RequestError
	if errors.As(err, &re) {
		t.Error("a transport error is reported as a refused request")
	}
}

// TestSystemInfo checks that header values are cut to 30 characters and cleaned of control characters.
func TestSystemInfo(t *testing.T) {
	f := newFake(t)
	c := provider.New(f.srv.Client(), provider.SystemInfo{Name: strings.Repeat("n", 40), Version: "1.0\r\nX-Evil: 1"}, nil)
	cl := call(f, initiate)
	cl.PluginName = "plugin-name-that-is-far-too-long-for-vipps"
	cl.PluginVersion = "v1\n"
	if _, err := c.Do(context.Background(), cl); err != nil {
		t.Fatal(err)
	}
	h := f.lastCall(t).Header
	want := map[string]string{
		"Vipps-System-Name":           strings.Repeat("n", 30),
		"Vipps-System-Version":        "1.0X-Evil: 1",
		"Vipps-System-Plugin-Name":    "plugin-name-that-is-far-too-lo",
		"Vipps-System-Plugin-Version": "v1",
	}
	for k, v := range want {
		if h.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, h.Get(k), v)
		}
	}
	if h.Get("X-Evil") != "" {
		t.Error("header injected")
	}
}

// TestIncompleteEndpoint: nothing is sent without the credentials.
func TestIncompleteEndpoint(t *testing.T) {
	f := newFake(t)
	c := newClient(f, nil)
	for _, mutate := range []func(*provider.Endpoint){
		func(e *provider.Endpoint) { e.ClientSecret = "" },
		func(e *provider.Endpoint) { e.SubscriptionKey = "" },
		func(e *provider.Endpoint) { e.ClientID = "" },
	} {
		cl := call(f, initiate)
		mutate(&cl.Endpoint)
		_, err := c.Do(context.Background(), cl)
		want := "provider: merchant[demo]: credentials incomplete: client id, client secret and subscription key are required"
		if err == nil || err.Error() != want {
			t.Errorf("got %v", err)
		}
	}
	cl := call(f, initiate)
	cl.Request = nil
	if _, err := c.Do(context.Background(), cl); err == nil || err.Error() != "provider: merchant[demo]: no request" {
		t.Errorf("nil request: %v", err)
	}
	if tokens, calls := f.counts(); tokens != 0 || calls != 0 {
		t.Errorf("%d token requests and %d calls were sent", tokens, calls)
	}
}

// TestEndpointNeverPrintsSecrets: an Endpoint or Call in a log line or error shows no credential.
func TestEndpointNeverPrintsSecrets(t *testing.T) {
	f := newFake(t)
	cl := call(f, initiate)
	for _, verb := range []string{"%v", "%+v", "%#v"} {
		for _, v := range []any{cl, cl.Endpoint, &cl} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(out, clientSecret) || strings.Contains(out, subscriptionKey) {
				t.Errorf("%s of %T shows a secret: %s", verb, v, out)
			}
		}
	}
}

// TestTokensPerCredentials: merchants with different client ids or MSNs do not share tokens.
func TestTokensPerCredentials(t *testing.T) {
	f := newFake(t)
	c := newClient(f, nil)
	a := call(f, initiate)
	b := call(f, initiate)
	b.Endpoint.MerchantSerialNumber = "654321"
	d := call(f, initiate)
	d.Endpoint.ClientID = "other-client"
	for _, cl := range []provider.Call{a, b, d, a, b, d} {
		if _, err := c.Do(context.Background(), cl); err != nil {
			t.Fatal(err)
		}
	}
	if tokens, calls := f.counts(); tokens != 3 || calls != 6 {
		t.Errorf("%d token requests and %d calls, want 3 and 6", tokens, calls)
	}
}

// TestNoSecretFollowsARedirect: when the configured provider answers with a redirect to another host, no
// request (and so no client_secret, Ocp-Apim-Subscription-Key or Authorization) reaches that host, for the
// token request and for API calls, with the default client of provider.New(nil).
func TestNoSecretFollowsARedirect(t *testing.T) {
	var mu sync.Mutex
	var elsewhere []http.Header
	other := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		mu.Lock()
		elsewhere = append(elsewhere, r.Header.Clone())
		mu.Unlock()
	}))
	defer other.Close()
	for _, tc := range []struct {
		name       string
		redirectOn string // path prefix that is redirected
	}{{"token request", "/accesstoken/"}, {"API call", "/ecomm/"}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(r.URL.Path, tc.redirectOn) {
					http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
					return
				}
				f.serve(w, r)
			}))
			defer front.Close()
			c := provider.New(nil, provider.SystemInfo{Name: "kasse", Version: "0.1.0"}, nil)
			cl := call(f, initiate)
			cl.Endpoint.BaseURL = front.URL
			if _, err := c.Do(context.Background(), cl); err == nil {
				t.Fatal("a redirected request succeeded")
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(elsewhere) != 0 {
		t.Fatalf("the redirect target got %d requests, headers %v", len(elsewhere), elsewhere)
	}
}
