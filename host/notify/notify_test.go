package notify_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kassehq/kasse/adapters"
	_ "github.com/kassehq/kasse/adapters/standard"
	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/notify"
	"github.com/kassehq/kasse/host/outbound"
	"github.com/kassehq/kasse/host/payment"
)

// platform is a fake platform API on loopback TLS that records every request and answers from a script.
type platform struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recorded
	// answers are status codes (and bodies) given in order; after they run out, 200 with okBody.
	answers []answer
	okBody  string
}

type answer struct {
	status int
	body   string
}

type recorded struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   string
}

func newPlatform(t *testing.T, okBody string, answers ...answer) *platform {
	p := &platform{answers: answers, okBody: okBody}
	p.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.requests = append(p.requests, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(b)})
		a := answer{status: 200, body: p.okBody}
		if len(p.answers) > 0 {
			a, p.answers = p.answers[0], p.answers[1:]
		}
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *platform) got() []recorded {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]recorded(nil), p.requests...)
}

type merchants map[string]config.Merchant

func (m merchants) Merchant(id string) (config.Merchant, bool) { v, ok := m[id]; return v, ok }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type giveUps struct {
	mu  sync.Mutex
	got []string
}

func newNotifier(t *testing.T, ms merchants, client *http.Client, clk *clock, logs io.Writer, g *giveUps) *notify.Notifier {
	t.Helper()
	n, err := notify.New(notify.Config{Adapters: adapters.Registered(), Merchants: ms, Storage: outbound.NewMemoryStorage(),
		Client: client, MaxAttempts: 3, BaseDelay: time.Second, MaxDelay: time.Minute, Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		OnGiveUp: func(_ context.Context, merchant string, u adapters.StatusUpdate, err error) {
			g.mu.Lock()
			g.got = append(g.got, fmt.Sprintf("%s %s %s %s: %v", merchant, u.Session, u.Status, u.Reference, err))
			g.mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func wooMerchant(baseURL string) config.Merchant {
	return config.Merchant{ID: "woo", Platform: &config.Platform{Kind: "woocommerce", WebhookSecret: "s",
		BaseURL: baseURL, ConsumerKey: "ck_live_123", ConsumerSecret: "cs_live_456"}}
}

func sessions() (before, after *payment.Session) {
	before = &payment.Session{ID: "ks1", Merchant: "woo", Reference: "727", State: payment.StatePending,
		Amount: 2935, Currency: "NOK", ProviderReference: "kvipps1"}
	a := *before
	a.State, a.AuthorizedAmount = payment.StateAuthorized, 2935
	return before, &a
}

func TestWooCommercePaid(t *testing.T) {
	p := newPlatform(t, `{"id":727}`)
	clk := &clock{t: time.Unix(1_764_000_000, 0)}
	var logs bytes.Buffer
	n := newNotifier(t, merchants{"woo": wooMerchant(p.URL)}, p.Client(), clk, &logs, &giveUps{})
	ctx := context.Background()
	before, after := sessions()
	for range 2 { // the same change reported twice is sent once
		if err := n.SessionChanged(ctx, before, after); err != nil {
			t.Fatal(err)
		}
	}
	if k, err := n.RunOnce(ctx, 10); k != 1 || err != nil {
		t.Fatalf("RunOnce = %d, %v", k, err)
	}
	got := p.got()
	if len(got) != 2 {
		t.Fatalf("%d requests: %+v", len(got), got)
	}
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("ck_live_123:cs_live_456"))
	for i, want := range []struct{ method, path, body string }{
		{"PUT", "/wp-json/wc/v3/orders/727", `{"meta_data":[{"key":"_kasse_session","value":"ks1"},{"key":"_vipps_reference","value":"kvipps1"}],"set_paid":true,"status":"processing","transaction_id":"kvipps1"}`},
		{"POST", "/wp-json/wc/v3/orders/727/notes", `{"customer_note":false,"note":"Vipps payment of NOK 29.35 reserved (Vipps reference kvipps1)."}`},
	} {
		r := got[i]
		if r.Method != want.method || r.Path != want.path || r.Body != want.body || r.RawQuery != "" {
			t.Errorf("request %d: %s %s?%s %s\nwant %s %s %s", i, r.Method, r.Path, r.RawQuery, r.Body, want.method, want.path, want.body)
		}
		if r.Header.Get("Authorization") != wantAuth || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request %d: headers %v", i, r.Header)
		}
	}
	st, _ := n.Stats(ctx)
	if st.Delivered != 1 || st.Enqueued != 1 || st.Pending != 0 {
		t.Errorf("stats %+v", st)
	}
	if strings.Contains(logs.String(), "cs_live_456") || strings.Contains(logs.String(), "ck_live_123") {
		t.Errorf("logs show a credential: %s", logs.String())
	}
}

// TestWooCommerceOutageThenRecovery: the platform answers 503, then 502, then works: the update arrives.
func TestWooCommerceOutageThenRecovery(t *testing.T) {
	p := newPlatform(t, `{}`, answer{503, `{"code":"down"}`}, answer{200, `{}`}, answer{502, `bad gateway`})
	clk := &clock{t: time.Unix(1_764_000_000, 0)}
	var logs bytes.Buffer
	g := &giveUps{}
	n := newNotifier(t, merchants{"woo": wooMerchant(p.URL)}, p.Client(), clk, &logs, g)
	ctx := context.Background()
	before, after := sessions()
	if err := n.SessionChanged(ctx, before, after); err != nil {
		t.Fatal(err)
	}
	n.RunOnce(ctx, 10) // PUT answered 503
	clk.Add(time.Second)
	n.RunOnce(ctx, 10) // PUT ok, note answered 502
	clk.Add(2 * time.Second)
	n.RunOnce(ctx, 10) // both ok
	got := p.got()
	var seq []string
	for _, r := range got {
		seq = append(seq, r.Method)
	}
	if strings.Join(seq, " ") != "PUT PUT POST PUT POST" {
		t.Errorf("requests %v", seq)
	}
	st, _ := n.Stats(ctx)
	if st.Delivered != 1 || st.Retried != 2 || st.GivenUp != 0 || len(g.got) != 0 {
		t.Errorf("stats %+v, give-ups %v", st, g.got)
	}
	if !strings.Contains(logs.String(), "platform answered 503") || !strings.Contains(logs.String(), "platform answered 502") {
		t.Errorf("retries not logged: %s", logs.String())
	}
}

// TestPlatformDownForGood: the platform never comes back; the update is given up on visibly.
func TestPlatformDownForGood(t *testing.T) {
	p := newPlatform(t, `{}`)
	url, client := p.URL, p.Client()
	p.Close()
	clk := &clock{t: time.Unix(1_764_000_000, 0)}
	var logs bytes.Buffer
	g := &giveUps{}
	n := newNotifier(t, merchants{"woo": wooMerchant(url)}, client, clk, &logs, g)
	ctx := context.Background()
	before, after := sessions()
	_ = n.SessionChanged(ctx, before, after)
	for range 3 {
		if k, _ := n.RunOnce(ctx, 10); k != 1 {
			t.Fatal("update not due")
		}
		clk.Add(time.Hour)
	}
	if k, _ := n.RunOnce(ctx, 10); k != 0 {
		t.Error("tried after giving up")
	}
	if len(g.got) != 1 || !strings.HasPrefix(g.got[0], "woo ks1 paid 727: notify: woocommerce paid for order 727 (request 1 of 2): PUT https://127.0.0.1") ||
		!strings.Contains(g.got[0], "platform unreachable") {
		t.Errorf("give-ups %q", g.got)
	}
	st, _ := n.Stats(ctx)
	if st.GivenUp != 1 || st.Retried != 2 {
		t.Errorf("stats %+v", st)
	}
	if !strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("give-up not logged as an error: %s", logs.String())
	}
}

// TestPlatformRefuses: a 401 is not retried.
func TestPlatformRefuses(t *testing.T) {
	p := newPlatform(t, `{}`, answer{401, `{"code":"woocommerce_rest_cannot_edit","message":"Sorry, you are not allowed to edit this resource."}`})
	clk := &clock{t: time.Unix(1_764_000_000, 0)}
	g := &giveUps{}
	n := newNotifier(t, merchants{"woo": wooMerchant(p.URL)}, p.Client(), clk, io.Discard, g)
	before, after := sessions()
	_ = n.SessionChanged(context.Background(), before, after)
	n.RunOnce(context.Background(), 10)
	if len(g.got) != 1 || !strings.Contains(g.got[0], "platform refused with 401: {\"code\":\"woocommerce_rest_cannot_edit\"") {
		t.Errorf("give-ups %q", g.got)
	}
}

func TestShopify(t *testing.T) {
	ok := `{"data":{"orderMarkAsPaid":{"order":{"id":"gid://shopify/Order/820982911946154508"},"userErrors":[]},"tagsAdd":{"node":{"id":"x"},"userErrors":[]}}}`
	p := newPlatform(t, ok, answer{200, `{"errors":[{"message":"Throttled","extensions":{"code":"THROTTLED"}}]}`})
	clk := &clock{t: time.Unix(1_764_000_000, 0)}
	g := &giveUps{}
	m := config.Merchant{ID: "shopi", Platform: &config.Platform{Kind: "shopify", WebhookSecret: "s", BaseURL: p.URL,
		AccessToken: "shpat_abc"}}
	n := newNotifier(t, merchants{"shopi": m}, p.Client(), clk, io.Discard, g)
	ctx := context.Background()
	before := &payment.Session{ID: "ks2", Merchant: "shopi", Reference: "820982911946154508", State: payment.StatePending,
		Amount: 35997, Currency: "NOK", ProviderReference: "kvipps2"}
	after := *before
	after.State, after.AuthorizedAmount = payment.StateAuthorized, 35997
	if err := n.SessionChanged(ctx, before, &after); err != nil {
		t.Fatal(err)
	}
	n.RunOnce(ctx, 10) // throttled: retried
	clk.Add(time.Second)
	n.RunOnce(ctx, 10)
	got := p.got()
	if len(got) != 2 || len(g.got) != 0 {
		t.Fatalf("requests %d, give-ups %v", len(got), g.got)
	}
	r := got[1]
	if r.Method != "POST" || r.Path != "/admin/api/2026-07/graphql.json" || r.Header.Get("X-Shopify-Access-Token") != "shpat_abc" ||
		r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("%s %s %v", r.Method, r.Path, r.Header)
	}
	var body struct {
		Query     string `json:"query"`
		Variables struct {
			ID    string            `json:"id"`
			Input map[string]string `json:"input"`
			Tags  []string          `json:"tags"`
		} `json:"variables"`
	}
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body.Query, "orderMarkAsPaid(input: $input)") || body.Variables.ID != "gid://shopify/Order/820982911946154508" ||
		body.Variables.Input["id"] != "gid://shopify/Order/820982911946154508" ||
		strings.Join(body.Variables.Tags, ",") != "vipps-paid,vipps-ref-kvipps2" {
		t.Errorf("body %s", r.Body)
	}
}

func TestGenericIsSigned(t *testing.T) {
	p := newPlatform(t, `{}`)
	clk := &clock{t: time.Unix(1_764_000_000, 0)}
	m := config.Merchant{ID: "custom", Platform: &config.Platform{Kind: "generic", WebhookSecret: "shared", BaseURL: p.URL + "/status"}}
	n := newNotifier(t, merchants{"custom": m}, p.Client(), clk, io.Discard, &giveUps{})
	before := &payment.Session{ID: "ks3", Merchant: "custom", Reference: "1001", State: payment.StateAuthorized,
		Amount: 49900, AuthorizedAmount: 49900, Currency: "NOK", ProviderReference: "kv3"}
	after := *before
	after.State, after.CapturedAmount = payment.StateCaptured, 10000
	_ = n.SessionChanged(context.Background(), before, &after)
	n.RunOnce(context.Background(), 10)
	got := p.got()
	if len(got) != 1 {
		t.Fatalf("%d requests", len(got))
	}
	r := got[0]
	want := `{"type":"status","status":"captured","reference":"1001","session":"ks3","providerReference":"kv3","amount":10000,"currency":"NOK"}`
	if r.Path != "/status" || r.Body != want {
		t.Errorf("%s %s", r.Path, r.Body)
	}
	ts, v1, _ := strings.Cut(r.Header.Get("Kasse-Signature"), ",v1=")
	mac := hmac.New(sha256.New, []byte("shared"))
	mac.Write([]byte(strings.TrimPrefix(ts, "t=") + "." + r.Body))
	if v1 != hex.EncodeToString(mac.Sum(nil)) {
		t.Errorf("signature %q does not verify", r.Header.Get("Kasse-Signature"))
	}
}

func TestNoPlatformNoUpdate(t *testing.T) {
	n := newNotifier(t, merchants{"plain": {ID: "plain"}}, nil, &clock{}, io.Discard, &giveUps{})
	before, after := sessions()
	after.Merchant = "plain"
	if err := n.SessionChanged(context.Background(), before, after); err != nil {
		t.Fatal(err)
	}
	if st, _ := n.Stats(context.Background()); st.Enqueued != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestUpdates(t *testing.T) {
	s := func(st payment.State, auth, capt, ref, canc int64) *payment.Session {
		return &payment.Session{ID: "k", Reference: "r", State: st, Amount: 1000, Currency: "NOK", ProviderReference: "p",
			AuthorizedAmount: auth, CapturedAmount: capt, RefundedAmount: ref, CancelledAmount: canc, Reason: "why"}
	}
	for _, tt := range []struct {
		name          string
		before, after *payment.Session
		want          string
	}{
		{"authorized", s(payment.StatePending, 0, 0, 0, 0), s(payment.StateAuthorized, 1000, 0, 0, 0), "paid:1000"},
		{"sale", s(payment.StatePending, 0, 0, 0, 0), s(payment.StateCaptured, 1000, 1000, 0, 0), "paid:1000 captured:1000"},
		{"partial capture", s(payment.StateCaptured, 1000, 400, 0, 0), s(payment.StateCaptured, 1000, 1000, 0, 0), "captured:600"},
		{"refund", s(payment.StateCaptured, 1000, 1000, 0, 0), s(payment.StateRefunded, 1000, 1000, 1000, 0), "refunded:1000"},
		{"cancel reserved", s(payment.StateAuthorized, 1000, 0, 0, 0), s(payment.StateCancelled, 1000, 0, 0, 1000), "cancelled:1000"},
		{"cancel pending", s(payment.StatePending, 0, 0, 0, 0), s(payment.StateCancelled, 0, 0, 0, 0), "cancelled:0"},
		{"rejected", s(payment.StatePending, 0, 0, 0, 0), s(payment.StateRejected, 0, 0, 0, 0), "failed:1000(why)"},
		{"expired from nil", nil, s(payment.StateExpired, 0, 0, 0, 0), "failed:1000(why)"},
		{"no change", s(payment.StateAuthorized, 1000, 0, 0, 0), s(payment.StateAuthorized, 1000, 0, 0, 0), ""},
	} {
		var got []string
		for _, u := range notify.Updates(tt.before, tt.after) {
			x := fmt.Sprintf("%s:%d", u.Status, u.Amount)
			if u.Reason != "" {
				x += "(" + u.Reason + ")"
			}
			got = append(got, x)
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, strings.Join(got, " "), tt.want)
		}
	}
}

// TestWooCommerceOverPlainHTTP: a loopback shop on plain http gets OAuth 1.0a, which the fake shop
// verifies as WooCommerce does; Basic authentication is never sent in the clear.
func TestWooCommerceOverPlainHTTP(t *testing.T) {
	var mu sync.Mutex
	var verified []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		sig := q.Get("oauth_signature")
		params := map[string]string{}
		for k := range q {
			if k != "oauth_signature" {
				params[rawurlencode(k)] = rawurlencode(q.Get(k))
			}
		}
		keys := make([]string, 0, len(params))
		for k := range params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, k+"%3D"+params[k])
		}
		toSign := r.Method + "&" + rawurlencode("http://"+r.Host+r.URL.Path) + "&" + strings.Join(parts, "%26")
		mac := hmac.New(sha256.New, []byte("cs_live_456&"))
		mac.Write([]byte(toSign))
		ok := sig == base64.StdEncoding.EncodeToString(mac.Sum(nil)) && q.Get("oauth_consumer_key") == "ck_live_123" &&
			r.Header.Get("Authorization") == ""
		mu.Lock()
		verified = append(verified, fmt.Sprintf("%s %s %v", r.Method, r.URL.Path, ok))
		mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	g := &giveUps{}
	n := newNotifier(t, merchants{"woo": wooMerchant(srv.URL)}, srv.Client(), &clock{t: time.Now()}, io.Discard, g)
	before, after := sessions()
	_ = n.SessionChanged(context.Background(), before, after)
	n.RunOnce(context.Background(), 10)
	if strings.Join(verified, ", ") != "PUT /wp-json/wc/v3/orders/727 true, POST /wp-json/wc/v3/orders/727/notes true" || len(g.got) != 0 {
		t.Errorf("verified %v, give-ups %v", verified, g.got)
	}
}

// rawurlencode stands for PHP's rawurlencode.
func rawurlencode(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(url.QueryEscape(s), "+", "%20"), "%7E", "~")
}

// TestStateChanged: the updates rebuilt from the previous state and the history match what the full
// before-and-after comparison gives.
func TestStateChanged(t *testing.T) {
	at := time.Unix(1_764_000_000, 0)
	s := &payment.Session{ID: "k", Reference: "r", State: payment.StatePending, Amount: 1000, Currency: "NOK",
		History: []payment.Event{{At: at, To: payment.StatePending, Cause: "checkout created", Amount: 1000}}}
	var got []string
	step := func(o payment.Observation) {
		from := s.State
		before := *s
		if !s.Apply(o, "test", at) {
			t.Fatalf("%+v changed nothing", o)
		}
		want := notify.Updates(&before, s)
		rebuilt := notify.Updates(notify.Before(from, s), s)
		if fmt.Sprint(want) != fmt.Sprint(rebuilt) {
			t.Errorf("%s -> %s: rebuilt %+v, want %+v", from, s.State, rebuilt, want)
		}
		for _, u := range rebuilt {
			got = append(got, fmt.Sprintf("%s:%d", u.Status, u.Amount))
		}
	}
	step(payment.Observation{State: payment.StateAuthorized, AuthorizedAmount: 1000, CapturedAmount: -1, RefundedAmount: -1, CancelledAmount: -1})
	step(payment.Observation{State: payment.StateCaptured, AuthorizedAmount: 1000, CapturedAmount: 1000, RefundedAmount: -1, CancelledAmount: -1})
	step(payment.Observation{State: payment.StateRefunded, AuthorizedAmount: 1000, CapturedAmount: 1000, RefundedAmount: 1000, CancelledAmount: -1})
	if strings.Join(got, " ") != "paid:1000 captured:1000 refunded:1000" {
		t.Errorf("updates %q", got)
	}
	s2 := &payment.Session{ID: "k2", Reference: "r", State: payment.StatePending, Amount: 1000, Currency: "NOK"}
	if !s2.Apply(payment.Observation{State: payment.StateRejected, AuthorizedAmount: -1, CapturedAmount: -1, RefundedAmount: -1,
		CancelledAmount: -1, Reason: "declined"}, "callback", at) {
		t.Fatal("no change")
	}
	if u := notify.Updates(notify.Before(payment.StatePending, s2), s2); len(u) != 1 || u[0].Status != adapters.StatusFailed || u[0].Reason != "declined" {
		t.Errorf("rejected: %+v", u)
	}
}
