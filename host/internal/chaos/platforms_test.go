//go:build linux

package chaos

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// notice is one platform status update as a receiver saw it.
type notice struct {
	platform   string // "woo", "shopify" or "generic"
	ref        string // the platform's order reference
	status     string // paid, captured, refunded, cancelled, failed
	amount     int64  // the amount the update names (a delta for captured and refunded); -1 unknown
	abs        map[string]int64
	deliveryID string // Kasse-Delivery-Id, "" when absent
	seq        int64  // Kasse-Sequence, -1 when absent
	at         time.Time
}

// platforms are the fake WooCommerce, Shopify and generic receivers. While down they answer 503.
type platforms struct {
	down     atomic.Bool
	requests atomic.Int64
	refused  atomic.Int64

	mu      sync.Mutex
	notices []notice

	woo, shopify, generic *httptest.Server
}

func newPlatforms(t *testing.T) *platforms {
	p := &platforms{}
	p.woo = httptest.NewServer(p.guard(p.serveWoo))
	p.shopify = httptest.NewServer(p.guard(p.serveShopify))
	p.generic = httptest.NewServer(p.guard(p.serveGeneric))
	t.Cleanup(func() { p.woo.Close(); p.shopify.Close(); p.generic.Close() })
	return p
}

// guard counts requests and answers 503 while the platform is down.
func (p *platforms) guard(next func(w http.ResponseWriter, r *http.Request, body []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if p.down.Load() {
			p.refused.Add(1)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "platform down for maintenance", http.StatusServiceUnavailable)
			return
		}
		next(w, r, body)
	}
}

func (p *platforms) record(r *http.Request, n notice) {
	n.deliveryID = r.Header.Get("Kasse-Delivery-Id")
	n.seq = -1
	if s, err := strconv.ParseInt(r.Header.Get("Kasse-Sequence"), 10, 64); err == nil {
		n.seq = s
	}
	n.at = time.Now()
	p.mu.Lock()
	p.notices = append(p.notices, n)
	p.mu.Unlock()
}

func (p *platforms) snapshot() []notice {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]notice(nil), p.notices...)
}

var (
	wooNotePath = regexp.MustCompile(`^/wp-json/wc/v3/orders/([0-9]+)/notes$`)
	wooMoney    = regexp.MustCompile(`[A-Z]{3} (-?[0-9]+)\.([0-9]{2})`)
)

// serveWoo is the WooCommerce REST API: every status update is a PUT of the order (for some statuses)
// and a POST of an order note naming the status and amount, which is what is recorded.
func (p *platforms) serveWoo(w http.ResponseWriter, r *http.Request, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	if m := wooNotePath.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodPost {
		var note struct {
			Note string `json:"note"`
		}
		_ = json.Unmarshal(body, &note)
		n := notice{platform: "woo", ref: m[1], amount: -1}
		switch {
		case strings.Contains(note.Note, "reserved"):
			n.status = "paid"
		case strings.Contains(note.Note, "captured"):
			n.status = "captured"
		case strings.Contains(note.Note, "refunded"):
			n.status = "refunded"
		case strings.Contains(note.Note, "cancelled"):
			n.status = "cancelled"
		case strings.Contains(note.Note, "failed"):
			n.status = "failed"
		default:
			n.status = "unknown: " + note.Note
		}
		if mm := wooMoney.FindStringSubmatch(note.Note); mm != nil {
			whole, _ := strconv.ParseInt(mm[1], 10, 64)
			cents, _ := strconv.ParseInt(mm[2], 10, 64)
			n.amount = whole*100 + cents
		}
		p.record(r, n)
		_, _ = w.Write([]byte(`{"id":1,"note":"ok"}`))
		return
	}
	_, _ = w.Write([]byte(`{"id":1}`))
}

// serveShopify is the Admin GraphQL API: orderMarkAsPaid (with the tag vipps-paid) for paid, tagsAdd
// with vipps-<status> for the others.
func (p *platforms) serveShopify(w http.ResponseWriter, r *http.Request, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	var req struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	_ = json.Unmarshal(body, &req)
	gid, _ := req.Variables["id"].(string)
	tags, _ := json.Marshal(req.Variables["tags"])
	for _, st := range []string{"paid", "captured", "refunded", "cancelled", "failed"} {
		if strings.Contains(string(tags), `"vipps-`+st+`"`) {
			p.record(r, notice{platform: "shopify", ref: strings.TrimPrefix(gid, "gid://shopify/Order/"),
				status: st, amount: -1})
		}
	}
	node, _ := json.Marshal(map[string]any{"node": map[string]string{"id": gid}, "userErrors": []any{}})
	cost := `"extensions":{"cost":{"requestedQueryCost":10,"actualQueryCost":10}}`
	switch {
	case strings.Contains(req.Query, "orderMarkAsPaid"):
		order, _ := json.Marshal(map[string]any{"order": map[string]string{"id": gid}, "userErrors": []any{}})
		_, _ = w.Write([]byte(`{"data":{"orderMarkAsPaid":` + string(order) + `,"tagsAdd":` + string(node) + `},` + cost + `}`))
	case strings.Contains(req.Query, "tagsAdd"):
		_, _ = w.Write([]byte(`{"data":{"tagsAdd":` + string(node) + `},` + cost + `}`))
	default:
		_, _ = w.Write([]byte(`{"errors":[{"message":"unexpected query","extensions":{"code":"BAD_REQUEST"}}]}`))
	}
}

// serveGeneric is a custom shop's receiver of kasse's signed status POSTs.
func (p *platforms) serveGeneric(w http.ResponseWriter, r *http.Request, body []byte) {
	var b map[string]any
	_ = json.Unmarshal(body, &b)
	n := notice{platform: "generic", amount: -1, abs: map[string]int64{}}
	n.ref, _ = b["reference"].(string)
	n.status, _ = b["status"].(string)
	if a, ok := b["amount"].(float64); ok {
		n.amount = int64(a)
	}
	// The absolute amounts after the change: "totals" (adapters/README.md, "Status updates").
	collectAmounts(b, n.abs)
	p.record(r, n)
	w.WriteHeader(http.StatusNoContent)
}

// collectAmounts finds the absolute amounts in a generic status body: the "totals" object
// ({authorized, captured, refunded, cancelled}), or fields authorizedAmount, capturedAmount, refundedAmount
// and cancelledAmount at any depth.
func collectAmounts(v any, out map[string]int64) {
	switch x := v.(type) {
	case map[string]any:
		if t, ok := x["totals"].(map[string]any); ok {
			for _, k := range []string{"authorized", "captured", "refunded", "cancelled"} {
				if f, ok := t[k].(float64); ok {
					out[k+"Amount"] = int64(f)
				}
			}
		}
		for k, e := range x {
			switch k {
			case "authorizedAmount", "capturedAmount", "refundedAmount", "cancelledAmount":
				if f, ok := e.(float64); ok {
					out[k] = int64(f)
				}
			}
			collectAmounts(e, out)
		}
	case []any:
		for _, e := range x {
			collectAmounts(e, out)
		}
	}
}
