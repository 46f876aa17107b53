//go:build linux

package chaos

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// stats counts kasse's answers to the load by operation and answer class, and keeps the 500s.
type stats struct {
	mu     sync.Mutex
	byOp   map[string]map[string]int
	errors []string // the 500 answers, up to a few
	n500   int
}

func newStats() *stats { return &stats{byOp: map[string]map[string]int{}} }

func (s *stats) answer(op string, status int, what, body string) {
	class := "no answer"
	switch {
	case status == 0:
	case status == 409 || status == 500 || status == 502 || status == 503 || status == 504:
		class = strconv.Itoa(status)
	case status >= 200 && status < 300:
		class = "2xx"
	default:
		class = strconv.Itoa(status/100) + "xx"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byOp[op] == nil {
		s.byOp[op] = map[string]int{}
	}
	s.byOp[op][class]++
	if status == 500 {
		s.n500++
		if len(s.errors) < 10 {
			if len(body) > 300 {
				body = body[:300]
			}
			s.errors = append(s.errors, what+": "+body)
		}
	}
}

// session is one payment the load started, as the shop knows it.
type session struct {
	flow     string // api, express, woo, shopify
	merchant string
	ref      string
	keyed    bool
	created  time.Time

	mu      sync.Mutex
	id      string
	orderID string
	asks    map[string]map[string]bool // operation kind -> the distinct asks (keys, delivery ids, keyless attempts)
}

func (s *session) ask(kind, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.asks == nil {
		s.asks = map[string]map[string]bool{}
	}
	if s.asks[kind] == nil {
		s.asks[kind] = map[string]bool{}
	}
	s.asks[kind][id] = true
}

func (s *session) set(id, orderID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id != "" {
		s.id = id
	}
	if orderID != "" {
		s.orderID = orderID
	}
}

func (s *session) ids() (id, orderID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id, s.orderID
}

func (s *session) askCount(kind string) (int, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k := range s.asks[kind] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return len(keys), keys
}

// registry holds every session the load started.
type registry struct {
	mu   sync.Mutex
	all  []*session
	next atomic.Int64
}

func newRegistry() *registry { return &registry{} }

func (r *registry) add(s *session) *session {
	s.created = time.Now()
	r.mu.Lock()
	r.all = append(r.all, s)
	r.mu.Unlock()
	return s
}

func (r *registry) snapshot() []*session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*session(nil), r.all...)
}

// runLoad starts scenarios at a bounded rate until ctx is done, then waits (bounded by the scenarios'
// own deadlines) for those in flight.
func (h *harness) runLoad(ctx context.Context, every time.Duration, maxInFlight int) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxInFlight)
	tick := time.NewTicker(every)
	defer tick.Stop()
	// Scenarios get their own context: they finish what they started after the load stops, within
	// their own deadlines.
	sctx := context.WithoutCancel(ctx)
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			continue // the machine is slow right now: skip a beat rather than pile up
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			h.scenario(sctx, n)
		}()
	}
}

// scenario runs one shop's story, chosen by n: mostly the checkout API, then WooCommerce, Shopify and
// Express.
func (h *harness) scenario(ctx context.Context, n int) {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	switch n % 10 {
	case 0, 2, 4, 6, 8:
		h.apiScenario(ctx, n%4 < 2)
	case 1, 5:
		h.wooScenario(ctx)
	case 3, 7:
		h.shopifyScenario(ctx)
	case 9:
		h.expressScenario(ctx, n%3 == 0)
	}
}

// retrying reports whether a shop retries an answer: no answer, a 5xx, a 409 (an operation in doubt)
// or a 429.
func retrying(a answer, err error) bool {
	return err != nil || a.status >= 500 || a.status == http.StatusConflict || a.status == http.StatusTooManyRequests
}

func backoff(ctx context.Context, attempt int) bool {
	return sleep(ctx, time.Duration(500*(attempt+1))*time.Millisecond+time.Duration(rand.IntN(300))*time.Millisecond)
}

func checkoutBody(merchant, ref string, amount int64) []byte {
	b, _ := json.Marshal(map[string]any{
		"merchant": merchant, "reference": ref, "amount": amount, "currency": "NOK",
		"description": "Chaos order " + ref, "returnUrl": "http://shop.test/orders/" + ref + "/thanks",
		"customer": map[string]any{"phoneNumber": "91234567"},
	})
	return b
}

// create starts a checkout through the API (POST /v1/checkouts or /v1/express/shop), retrying as a shop
// does: with the same key when keyed, else with a new request.
func (h *harness) create(ctx context.Context, s *session, path string, body []byte) bool {
	key := ""
	if s.keyed {
		key = "create-" + s.ref
	}
	for attempt := range 4 {
		a, err := h.kasseDo(ctx, "create", http.MethodPost, path, body, "Idempotency-Key", key)
		if err == nil && (a.status == http.StatusCreated || a.status == http.StatusOK) {
			m := a.json()
			id, _ := m["id"].(string)
			orderID, _ := m["providerReference"].(string)
			s.set(id, orderID)
			return id != ""
		}
		if !retrying(a, err) || !backoff(ctx, attempt) {
			return false
		}
	}
	return false
}

// approve plays the customer: force-approve through the simulator's control, retried while the
// simulator does not answer.
func (h *harness) approve(ctx context.Context, orderID string) bool {
	for attempt := range 8 {
		a, err := h.simDo(ctx, http.MethodPost, "/_sim/payments/"+orderID+"/approve", map[string]string{"phone": "91234567"})
		if err == nil && a.status == http.StatusNoContent {
			return true
		}
		if err == nil && a.status < 500 {
			return false
		}
		if !backoff(ctx, attempt) {
			return false
		}
	}
	return false
}

// waitState polls the session until it is in one of want, for at most 40 s.
func (h *harness) waitState(ctx context.Context, s *session, want ...string) (map[string]any, bool) {
	id, _ := s.ids()
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) {
		a, err := h.kasseDo(ctx, "get", http.MethodGet, "/v1/checkouts/"+id, nil)
		if err == nil && a.status == http.StatusOK {
			m := a.json()
			if orderID, _ := m["providerReference"].(string); orderID != "" {
				s.set("", orderID)
			}
			for _, w := range want {
				if m["state"] == w {
					return m, true
				}
			}
		}
		if !sleep(ctx, 500*time.Millisecond) {
			break
		}
	}
	return nil, false
}

// modify captures, refunds or cancels through the API (amount 0: no body, all that is left), retrying as
// a shop does, and records every ask.
func (h *harness) modify(ctx context.Context, s *session, kind string, amount int64) bool {
	id, _ := s.ids()
	var body []byte
	if amount > 0 {
		body, _ = json.Marshal(map[string]int64{"amount": amount})
	}
	key := ""
	if s.keyed {
		key = kind + "-" + randomID()
	}
	for attempt := range 4 {
		ask := key
		if ask == "" {
			ask = "keyless-" + randomID()
		}
		s.ask(kind, ask)
		a, err := h.kasseDo(ctx, kind, http.MethodPost, "/v1/checkouts/"+id+"/"+kind, body, "Idempotency-Key", key)
		if err == nil && a.status < 300 {
			return true
		}
		if !retrying(a, err) || !backoff(ctx, attempt) {
			return false
		}
	}
	return false
}

// apiScenario: a shop on the checkout API.
func (h *harness) apiScenario(ctx context.Context, keyed bool) {
	n := h.reg.next.Add(1)
	s := h.reg.add(&session{flow: "api", merchant: "shop", ref: fmt.Sprintf("chaos-%d-%s", n, randomID()[:6]), keyed: keyed})
	amount := int64(10000 + rand.IntN(80)*1000)
	if !h.create(ctx, s, "/v1/checkouts", checkoutBody("shop", s.ref, amount)) {
		return
	}
	r := rand.IntN(100)
	if r < 10 {
		return // abandoned: the customer never pays; kasse must expire it
	}
	_, orderID := s.ids()
	if orderID == "" || !h.approve(ctx, orderID) {
		return
	}
	if _, ok := h.waitState(ctx, s, "authorized"); !ok {
		return
	}
	switch {
	case r < 35:
		h.modify(ctx, s, "capture", 0)
	case r < 55:
		if h.modify(ctx, s, "capture", amount/2) {
			h.modify(ctx, s, "capture", 0)
		}
	case r < 80:
		if h.modify(ctx, s, "capture", amount) {
			h.modify(ctx, s, "refund", amount/4)
		}
	default:
		h.modify(ctx, s, "cancel", 0)
	}
}

// expressScenario: Express Checkout from a product page, approved and captured.
func (h *harness) expressScenario(ctx context.Context, keyed bool) {
	n := h.reg.next.Add(1)
	s := h.reg.add(&session{flow: "express", merchant: "shop", ref: fmt.Sprintf("chaos-x-%d-%s", n, randomID()[:6]), keyed: keyed})
	body, _ := json.Marshal(map[string]any{
		"merchant": "shop", "reference": s.ref, "amount": 2 * 24900, "currency": "NOK",
		"description": "Express order " + s.ref, "returnUrl": "http://shop.test/orders/" + s.ref + "/thanks",
		"lines": []map[string]any{{"sku": "SOCK", "name": "Wool socks", "quantity": 2, "unitPrice": 24900}},
	})
	if !h.create(ctx, s, "/v1/express/shop", body) {
		return
	}
	_, orderID := s.ids()
	if orderID == "" || !h.approve(ctx, orderID) {
		return
	}
	if _, ok := h.waitState(ctx, s, "authorized"); !ok {
		return
	}
	h.modify(ctx, s, "capture", 0)
}

// fixtures reads the platforms' published sample orders (adapters/*/testdata) and makes them pending
// Vipps orders in NOK.
func fixtures(root string) (woo, shopify string, err error) {
	w, err := os.ReadFile(filepath.Join(root, "adapters", "woocommerce", "testdata", "woocommerce-order-created.json"))
	if err != nil {
		return "", "", err
	}
	woo = strings.NewReplacer(`"status": "processing"`, `"status": "pending"`,
		`"payment_method": "bacs"`, `"payment_method": "vipps"`, `"currency": "USD"`, `"currency": "NOK"`).Replace(string(w))
	s, err := os.ReadFile(filepath.Join(root, "adapters", "shopify", "testdata", "shopify-orders-create.json"))
	if err != nil {
		return "", "", err
	}
	shopify = strings.NewReplacer(`"cancel_reason": "customer"`, `"cancel_reason": null`,
		`"cancelled_at": "2021-12-31T19:00:00-05:00"`, `"cancelled_at": null`,
		`"financial_status": "voided"`, `"financial_status": "pending"`,
		`"bogus"`, `"Vipps MobilePay"`, `"USD"`, `"NOK"`).Replace(string(s))
	return woo, shopify, nil
}

func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// deliverWoo posts a WooCommerce webhook delivery, signed as WooCommerce signs it; the platform resends
// a failed delivery with the same delivery id.
func (h *harness) deliverWoo(ctx context.Context, s *session, op, topic, deliveryID, body string) (answer, bool) {
	resource, event, _ := strings.Cut(topic, ".")
	for attempt := range 4 {
		a, err := h.kasseDo(ctx, op, http.MethodPost, "/hooks/woocommerce/woo", []byte(body),
			"Authorization", "", "X-WC-Webhook-Topic", topic, "X-WC-Webhook-Resource", resource,
			"X-WC-Webhook-Event", event, "X-WC-Webhook-Source", h.plat.woo.URL+"/", "X-WC-Webhook-ID", "142",
			"X-WC-Webhook-Delivery-ID", deliveryID, "X-WC-Webhook-Signature", sign(wooSecret, []byte(body)))
		if err == nil && a.status == http.StatusOK {
			return a, true
		}
		if !retrying(a, err) || !backoff(ctx, attempt) {
			return a, false
		}
	}
	return answer{}, false
}

// wooScenario: a WooCommerce order paid with Vipps, then completed (captured) or cancelled.
func (h *harness) wooScenario(ctx context.Context) {
	w := h.wooOrder
	n := 100000 + h.reg.next.Add(1)
	ref := strconv.FormatInt(n, 10)
	order := strings.Replace(w, `"id": 727,`, `"id": `+ref+`,`, 1)
	order = strings.Replace(order, `"number": "727"`, `"number": "`+ref+`"`, 1)
	s := h.reg.add(&session{flow: "woo", merchant: "woo", ref: ref, keyed: true})
	a, ok := h.deliverWoo(ctx, s, "woo-created", "order.created", "created-"+ref, order)
	if !ok {
		return
	}
	if id, _ := a.json()["sessionId"].(string); id != "" {
		s.set(id, "")
	} else {
		return
	}
	m, ok := h.waitState(ctx, s, "pending", "authorized")
	if !ok {
		return
	}
	orderID, _ := m["providerReference"].(string)
	if orderID == "" || !h.approve(ctx, orderID) {
		return
	}
	if _, ok := h.waitState(ctx, s, "authorized"); !ok {
		return
	}
	status, kind := "completed", "capture"
	if rand.IntN(4) == 0 {
		status, kind = "cancelled", "cancel"
	}
	delivery := "updated-" + status + "-" + ref
	s.ask(kind, delivery)
	h.deliverWoo(ctx, s, "woo-updated", "order.updated", delivery,
		strings.Replace(order, `"status": "pending"`, `"status": "`+status+`"`, 1))
}

// deliverShopify posts a Shopify webhook delivery, signed as Shopify signs it; Shopify resends a failed
// delivery with the same X-Shopify-Webhook-Id.
func (h *harness) deliverShopify(ctx context.Context, op, topic, webhookID, body string) bool {
	for attempt := range 4 {
		a, err := h.kasseDo(ctx, op, http.MethodPost, "/hooks/shopify/shopi", []byte(body),
			"Authorization", "", "X-Shopify-Topic", topic, "X-Shopify-Shop-Domain", shopDomain,
			"X-Shopify-API-Version", shopifyAPI, "X-Shopify-Webhook-Id", webhookID,
			"X-Shopify-Triggered-At", time.Now().UTC().Format(time.RFC3339Nano),
			"X-Shopify-Event-Id", "event-"+webhookID, "X-Shopify-Hmac-Sha256", sign(shopifySecret, []byte(body)))
		if err == nil && a.status == http.StatusOK {
			return true
		}
		if !retrying(a, err) || !backoff(ctx, attempt) {
			return false
		}
	}
	return false
}

// shopifyScenario: a Shopify order paid with Vipps (acknowledged first, worked after), then fulfilled
// (captured).
func (h *harness) shopifyScenario(ctx context.Context) {
	sh := h.shopifyOrder
	n := h.reg.next.Add(1)
	ref := strconv.FormatInt(820982911946000000+n, 10)
	name := fmt.Sprintf("#chaos-%d", n)
	order := strings.ReplaceAll(sh, "820982911946154508", ref)
	order = strings.Replace(order, `"name": "#9999"`, `"name": "`+name+`"`, 1)
	s := h.reg.add(&session{flow: "shopify", merchant: "shopi", ref: ref, keyed: true})
	if !h.deliverShopify(ctx, "shopify-create", "orders/create", "create-"+ref, order) {
		return
	}
	// The checkout is made after the answer: find its payment at the simulator by its transaction text.
	deadline := time.Now().Add(40 * time.Second)
	for {
		if p := h.findSimPayment(ctx, "Order "+name); p != nil {
			s.set(sessionFromFallBack(p.FallBack), p.OrderID)
			break
		}
		if time.Now().After(deadline) || !sleep(ctx, time.Second) {
			return
		}
	}
	_, orderID := s.ids()
	if !h.approve(ctx, orderID) {
		return
	}
	if _, ok := h.waitState(ctx, s, "authorized"); !ok {
		return
	}
	fulfilled := strings.Replace(order, `"financial_status": "pending"`, `"financial_status": "paid"`, 1)
	fulfilled = strings.Replace(fulfilled, `"fulfillment_status": null`, `"fulfillment_status": "fulfilled"`, 1)
	s.ask("capture", "fulfilled-"+ref)
	h.deliverShopify(ctx, "shopify-fulfil", "orders/fulfilled", "fulfilled-"+ref, fulfilled)
}

// simPayment is the part of the simulator's payment snapshot the suite reads.
type simPayment struct {
	OrderID            string `json:"orderId"`
	State              string `json:"state"`
	Amount             int64  `json:"amount"`
	Captured           int64  `json:"capturedAmount"`
	Refunded           int64  `json:"refundedAmount"`
	RemainingToCapture int64  `json:"remainingAmountToCapture"`
	TransactionText    string `json:"transactionText"`
	FallBack           string `json:"fallBack"`
}

func (h *harness) simPayments(ctx context.Context) ([]simPayment, error) {
	a, err := h.simDo(ctx, http.MethodGet, "/_sim/payments", nil)
	if err != nil {
		return nil, err
	}
	if a.status != http.StatusOK {
		return nil, fmt.Errorf("GET /_sim/payments: %d %s", a.status, a.body)
	}
	var ps []simPayment
	if err := json.Unmarshal(a.body, &ps); err != nil {
		return nil, fmt.Errorf("GET /_sim/payments: %w", err)
	}
	return ps, nil
}

func (h *harness) findSimPayment(ctx context.Context, text string) *simPayment {
	ps, err := h.simPayments(ctx)
	if err != nil {
		return nil
	}
	for i := range ps {
		if strings.Contains(ps[i].TransactionText, text) {
			return &ps[i]
		}
	}
	return nil
}

// sessionFromFallBack returns the kasse session id in a fallBack URL (.../v1/checkouts/{id}/return).
func sessionFromFallBack(u string) string {
	_, rest, ok := strings.Cut(u, "/v1/checkouts/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	return id
}
