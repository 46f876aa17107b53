//go:build linux

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// verdict is one invariant's outcome.
type verdict struct {
	name    string
	checked int
	failed  int
	samples []string
	// suspects are the sessions that failed it, for the diagnosis written when the run fails.
	suspects []string
}

// suspect records a session that failed the invariant.
func (v *verdict) suspect(id string) {
	if len(v.suspects) < 32 {
		v.suspects = append(v.suspects, id)
	}
}

func (v *verdict) fail(format string, args ...any) {
	v.failed++
	if len(v.samples) < 8 {
		v.samples = append(v.samples, fmt.Sprintf(format, args...))
	}
}

// kasseSession is the part of GET /v1/checkouts/{id} the checks read.
type kasseSession struct {
	ID                string    `json:"id"`
	Merchant          string    `json:"merchant"`
	Reference         string    `json:"reference"`
	State             string    `json:"state"`
	Amount            int64     `json:"amount"`
	AuthorizedAmount  int64     `json:"authorizedAmount"`
	CapturedAmount    int64     `json:"capturedAmount"`
	RefundedAmount    int64     `json:"refundedAmount"`
	CancelledAmount   int64     `json:"cancelledAmount"`
	ProviderReference string    `json:"providerReference"`
	CreatedAt         time.Time `json:"createdAt"`
	Operations        []struct {
		ID     string `json:"id"`
		Kind   string `json:"kind"`
		Status string `json:"status"`
	} `json:"operations"`
}

// simOperation is one entry of the simulator's operations log, read leniently.
type simOperation struct {
	orderID, kind, requestID string
	amount                   int64
	replay                   bool
}

// observed is everything the checks read in one round.
type observed struct {
	payments []simPayment
	sessions map[string]*kasseSession // by session id; nil value: kasse answered 404
	ops      []simOperation
	opsErr   string
}

func (h *harness) observe(ctx context.Context) (*observed, error) {
	o := &observed{sessions: map[string]*kasseSession{}}
	var err error
	if o.payments, err = h.simPayments(ctx); err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	for _, p := range o.payments {
		if id := sessionFromFallBack(p.FallBack); id != "" {
			ids[id] = true
		}
	}
	for _, s := range h.reg.snapshot() {
		if id, _ := s.ids(); id != "" {
			ids[id] = true
		}
	}
	for id := range ids {
		a, err := h.kasseDo(ctx, "check", http.MethodGet, "/v1/checkouts/"+id, nil)
		switch {
		case err != nil:
			return nil, fmt.Errorf("GET /v1/checkouts/%s: %w", id, err)
		case a.status == http.StatusNotFound:
			o.sessions[id] = nil
		case a.status != http.StatusOK:
			return nil, fmt.Errorf("GET /v1/checkouts/%s: %d %s", id, a.status, a.body)
		default:
			var k kasseSession
			if err := json.Unmarshal(a.body, &k); err != nil {
				return nil, fmt.Errorf("GET /v1/checkouts/%s: %w", id, err)
			}
			o.sessions[id] = &k
		}
	}
	a, err := h.simDo(ctx, http.MethodGet, "/_sim/operations", nil)
	switch {
	case err != nil:
		o.opsErr = err.Error()
	case a.status != http.StatusOK:
		o.opsErr = fmt.Sprintf("GET /_sim/operations: %d (the simulator has no operations log)", a.status)
	default:
		o.ops, err = parseOperations(a.body)
		if err != nil {
			o.opsErr = err.Error()
		}
	}
	return o, nil
}

// parseOperations reads the operations log: an array, or an object holding one, of entries with an
// order id, a kind, an amount, a request id and a replay flag, under the names the simulator may use.
func parseOperations(b []byte) ([]simOperation, error) {
	var raw any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("GET /_sim/operations: %w", err)
	}
	var list []any
	switch x := raw.(type) {
	case []any:
		list = x
	case map[string]any:
		for _, v := range x {
			if l, ok := v.([]any); ok {
				list = l
			}
		}
	}
	str := func(m map[string]any, names ...string) string {
		for _, n := range names {
			if s, ok := m[n].(string); ok {
				return s
			}
		}
		return ""
	}
	var out []simOperation
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		op := simOperation{orderID: str(m, "orderId", "orderID", "reference"),
			kind:      strings.ToLower(str(m, "kind", "operation", "type")),
			requestID: str(m, "requestId", "requestID", "idempotencyKey", "xRequestId")}
		if a, ok := m["amount"].(float64); ok {
			op.amount = int64(a)
		}
		for _, n := range []string{"replay", "replayed", "duplicate"} {
			if r, ok := m[n].(bool); ok && r {
				op.replay = true
			}
		}
		out = append(out, op)
	}
	return out, nil
}

// opKind maps an operations-log kind to capture, refund or cancel ("" for the others).
func opKind(k string) string {
	switch {
	case strings.Contains(k, "capture"):
		return "capture"
	case strings.Contains(k, "refund"):
		return "refund"
	case strings.Contains(k, "cancel"), strings.Contains(k, "void"):
		return "cancel"
	}
	return ""
}

// check evaluates every invariant on one observation.
func (h *harness) check(o *observed) []*verdict {
	amounts := &verdict{name: "amounts equal the simulator's"}
	twice := &verdict{name: "no operation applied twice"}
	notified := &verdict{name: "platform notifications delivered"}
	pending := &verdict{name: "no session pending past its timeout"}
	settled := &verdict{name: "no operation left in doubt"}
	no500 := &verdict{name: "no 500 answers"}

	bySessionOrder := map[string]*session{}
	for _, s := range h.reg.snapshot() {
		if _, orderID := s.ids(); orderID != "" {
			bySessionOrder[orderID] = s
		}
	}

	// Amounts: every payment the simulator has, against kasse's session.
	for _, p := range o.payments {
		id := sessionFromFallBack(p.FallBack)
		if id == "" {
			continue
		}
		amounts.checked++
		k := o.sessions[id]
		if k == nil {
			amounts.fail("order %s (%s at the simulator, captured %d): kasse has no session %s", p.OrderID, p.State, p.Captured, id)
			continue
		}
		if k.CapturedAmount != p.Captured || k.RefundedAmount != p.Refunded {
			amounts.suspect(id)
			amounts.fail("order %s: kasse %s captured %d refunded %d, simulator %s captured %d refunded %d",
				p.OrderID, k.State, k.CapturedAmount, k.RefundedAmount, p.State, p.Captured, p.Refunded)
			continue
		}
		ok := true
		switch p.State {
		case "INITIATE":
			ok = oneOf(k.State, "pending", "expired", "failed", "cancelled", "rejected")
		case "RESERVE":
			if p.Captured == 0 && p.RemainingToCapture > 0 {
				ok = k.State == "authorized"
			} else {
				ok = oneOf(k.State, "captured", "refunded", "cancelled")
			}
		case "VOID":
			// Released without a capture. kasse may have ended the session before the customer
			// approved (a create it failed or expired), then released the late reservation: no money
			// is held either way.
			ok = oneOf(k.State, "cancelled", "failed", "expired", "rejected")
		case "CANCEL", "REJECTED":
			ok = oneOf(k.State, "cancelled", "rejected", "expired", "failed")
		}
		if !ok {
			amounts.fail("order %s: kasse says %s, the simulator %s (captured %d, left to capture %d)",
				p.OrderID, k.State, p.State, p.Captured, p.RemainingToCapture)
		}
	}

	// Operations applied at the simulator against what the shops asked for.
	if o.opsErr != "" {
		twice.fail("not checkable: %s", o.opsErr)
	} else {
		applied := map[[2]string]int{}
		for _, op := range o.ops {
			kind := opKind(op.kind)
			if kind == "" || op.replay {
				continue
			}
			applied[[2]string{op.orderID, kind}]++
		}
		orders := map[string]bool{}
		for key := range applied {
			orders[key[0]] = true
		}
		twice.checked = len(orders)
		keys := make([][2]string, 0, len(applied))
		for key := range applied {
			keys = append(keys, key)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
		for _, key := range keys {
			n := applied[key]
			asked, asks := 0, []string(nil)
			if s := bySessionOrder[key[0]]; s != nil {
				asked, asks = s.askCount(key[1])
			}
			allowed := asked
			if key[1] == "cancel" {
				allowed = max(asked, 1) // kasse cancels late approvals by itself
			}
			if n > allowed {
				twice.fail("order %s: %s applied %d times, the shop asked %d times %v", key[0], key[1], n, asked, asks)
			}
		}
	}

	// Platform notifications, deduplicated by delivery id, against each session's final state.
	notices := map[string][]notice{} // platform/ref
	withoutID := 0
	for _, n := range h.plat.snapshot() {
		if n.deliveryID == "" {
			withoutID++
		}
		notices[n.platform+"/"+n.ref] = append(notices[n.platform+"/"+n.ref], n)
	}
	reasons := map[string]int{}
	defer func() {
		if len(reasons) == 0 {
			return
		}
		var parts []string
		for r, n := range reasons {
			parts = append(parts, fmt.Sprintf("%s: %d", r, n))
		}
		sort.Strings(parts)
		notified.samples = append([]string{"missing by kind: " + strings.Join(parts, "; ")}, notified.samples...)
	}()
	if withoutID > 0 {
		notified.fail("%d platform requests carry no Kasse-Delivery-Id: a receiver cannot drop duplicates", withoutID)
	}
	for _, s := range h.reg.snapshot() {
		id, _ := s.ids()
		k := o.sessions[id]
		if id == "" || k == nil {
			continue
		}
		platform := map[string]string{"shop": "generic", "woo": "woo", "shopi": "shopify"}[s.merchant]
		notified.checked++
		got := dedupe(notices[platform+"/"+s.ref])
		has := func(status string) bool {
			for _, n := range got {
				if n.status == status {
					return true
				}
			}
			return false
		}
		sum := func(status string) int64 {
			var t int64
			for _, n := range got {
				if n.status == status && n.amount > 0 {
					t += n.amount
				}
			}
			return t
		}
		var missing []string
		if k.AuthorizedAmount > 0 && !has("paid") {
			missing = append(missing, "paid")
		}
		if k.State == "cancelled" && !has("cancelled") {
			missing = append(missing, "cancelled")
		}
		if oneOf(k.State, "failed", "expired", "rejected") && k.AuthorizedAmount == 0 && !has("failed") {
			missing = append(missing, "failed")
		}
		if platform == "shopify" {
			if k.CapturedAmount > 0 && !has("captured") {
				missing = append(missing, "captured")
			}
			if k.RefundedAmount > 0 && !has("refunded") {
				missing = append(missing, "refunded")
			}
		} else {
			if c := sum("captured"); c != k.CapturedAmount {
				missing = append(missing, fmt.Sprintf("captured %d (delivered %d)", k.CapturedAmount, c))
			}
			if r := sum("refunded"); r != k.RefundedAmount {
				missing = append(missing, fmt.Sprintf("refunded %d (delivered %d)", k.RefundedAmount, r))
			}
		}
		if platform == "generic" && len(got) > 0 {
			last := got[0]
			for _, n := range got {
				if n.seq > last.seq {
					last = n
				}
			}
			switch {
			case len(last.abs) == 0:
				missing = append(missing, "absolute amounts in the last update")
			case last.abs["capturedAmount"] != k.CapturedAmount || last.abs["refundedAmount"] != k.RefundedAmount:
				missing = append(missing, fmt.Sprintf("last update (sequence %d) says captured %d refunded %d",
					last.seq, last.abs["capturedAmount"], last.abs["refundedAmount"]))
			}
		}
		for _, m := range missing {
			reason := strings.TrimSpace(strings.Split(m, " (")[0])
			reason = strings.TrimRight(reason, "0123456789 ")
			reasons[reason]++
		}
		if len(missing) > 0 {
			notified.suspect(id)
			notified.fail("%s order %s (session %s, %s, captured %d, refunded %d): %s", platform, s.ref, id,
				k.State, k.CapturedAmount, k.RefundedAmount, strings.Join(missing, ", "))
		}
	}

	// Pending sessions past their timeout (plus the reconciler's slack).
	limit := pendingTimeout + 2*maxPoll + 10*time.Second
	for _, k := range o.sessions {
		if k == nil {
			continue
		}
		pending.checked++
		if k.State == "pending" && !k.CreatedAt.IsZero() && time.Since(k.CreatedAt) > limit {
			pending.fail("session %s (%s/%s) pending for %s", k.ID, k.Merchant, k.Reference, time.Since(k.CreatedAt).Round(time.Second))
		}
	}

	// Operations kasse sent to the provider: once the run is quiet, each must have a known outcome.
	for _, k := range o.sessions {
		if k == nil {
			continue
		}
		settled.checked++
		for _, op := range k.Operations {
			if op.Status != "succeeded" && op.Status != "failed" {
				settled.fail("session %s (%s/%s, %s): the %s %s is %s", k.ID, k.Merchant, k.Reference, k.State, op.Kind, op.ID, op.Status)
				break
			}
		}
	}

	h.stats.mu.Lock()
	for op, byClass := range h.stats.byOp {
		for _, n := range byClass {
			if op != "check" {
				no500.checked += n
			}
		}
	}
	no500.failed = h.stats.n500
	no500.samples = append(no500.samples, h.stats.errors...)
	h.stats.mu.Unlock()

	return []*verdict{amounts, twice, notified, pending, settled, no500}
}

// dedupe drops deliveries seen before, by Kasse-Delivery-Id; those without one are all kept.
func dedupe(ns []notice) []notice {
	seen := map[string]bool{}
	var out []notice
	for _, n := range ns {
		if n.deliveryID != "" {
			if seen[n.deliveryID] {
				continue
			}
			seen[n.deliveryID] = true
		}
		out = append(out, n)
	}
	return out
}

func oneOf(s string, set ...string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

// table renders the verdicts and the figures.
func (h *harness) table(vs []*verdict, load time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nchaos run: %s of load, 3 kasse instances, Redis Cluster 3 primaries + 3 replicas\n\n", load.Round(time.Second))
	fmt.Fprintf(&b, "%-40s %8s %7s  %s\n", "invariant", "checked", "failed", "result")
	for _, v := range vs {
		res := "ok"
		if v.failed > 0 {
			res = "FAIL"
		}
		fmt.Fprintf(&b, "%-40s %8d %7d  %s\n", v.name, v.checked, v.failed, res)
		for _, s := range v.samples {
			fmt.Fprintf(&b, "    %s\n", s)
		}
	}
	flows := map[string]int{}
	for _, s := range h.reg.snapshot() {
		flows[s.flow]++
	}
	fmt.Fprintf(&b, "\nscenarios: api %d, express %d, woocommerce %d, shopify %d\n", flows["api"], flows["express"], flows["woo"], flows["shopify"])
	fmt.Fprintf(&b, "\n%-14s", "requests")
	classes := []string{"2xx", "4xx", "409", "500", "502", "503", "504", "no answer"}
	for _, c := range classes {
		fmt.Fprintf(&b, " %9s", c)
	}
	b.WriteString("\n")
	h.stats.mu.Lock()
	ops := make([]string, 0, len(h.stats.byOp))
	for op := range h.stats.byOp {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	for _, op := range ops {
		fmt.Fprintf(&b, "%-14s", op)
		for _, c := range classes {
			fmt.Fprintf(&b, " %9d", h.stats.byOp[op][c])
		}
		b.WriteString("\n")
	}
	h.stats.mu.Unlock()
	kinds, counts, notes := h.faults.kinds()
	b.WriteString("\nfaults injected:")
	for _, k := range kinds {
		fmt.Fprintf(&b, " %s %d;", k, counts[k])
	}
	b.WriteString("\n")
	for _, n := range notes {
		fmt.Fprintf(&b, "    %s\n", n)
	}
	fmt.Fprintf(&b, "platform requests %d (answered 503 while down: %d)\n", h.plat.requests.Load(), h.plat.refused.Load())
	return b.String()
}
