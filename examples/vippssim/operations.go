package vippssim

import (
	"net/http"
	"time"
)

// Operation kinds in the operations log.
const (
	OpKindInitiate = "initiate"
	OpKindCapture  = "capture"
	OpKindRefund   = "refund"
	OpKindCancel   = "cancel"
)

// Operation is one money operation a merchant asked for and the simulator answered with success: applied
// once, or answered from the idempotency store (Replay). Refused requests are not listed.
type Operation struct {
	// Seq numbers the operations log from 1, in the order the operations were applied.
	Seq int64 `json:"seq"`
	// API is "ecom" or "epayment".
	API string `json:"api"`
	// MerchantSerialNumber and OrderID identify the payment (OrderID is the ePayment reference).
	MerchantSerialNumber string `json:"merchantSerialNumber"`
	OrderID              string `json:"orderId"`
	// Kind is initiate, capture, refund or cancel.
	Kind string `json:"kind"`
	// Amount is the amount of the operation's transaction log entry or event, in minor units: initiated,
	// captured or refunded; for a cancel, what it released (eCom VOID, ePayment CANCELLED), or the whole
	// amount when it ended a payment nobody had approved (eCom CANCEL, ePayment TERMINATED).
	Amount int64 `json:"amount"`
	// RequestID is the X-Request-Id (eCom) or Idempotency-Key (ePayment), empty if none was sent.
	RequestID string `json:"requestId,omitempty"`
	// Replay is true when the request repeated an earlier one's id and got the earlier answer; nothing was
	// applied. Invariant checks must skip replays.
	Replay bool `json:"replay"`
	// Time is when the simulator applied (or replayed) the operation, by the simulator's clock.
	Time time.Time `json:"time"`
}

// recordOpLocked appends to the operations log. Call with s.mu held.
func (s *Server) recordOpLocked(api string, k paymentKey, kind string, amount int64, requestID string, replay bool) {
	s.opSeq++
	s.ops = append(s.ops, Operation{Seq: s.opSeq, API: api, MerchantSerialNumber: k.msn, OrderID: k.orderID,
		Kind: kind, Amount: amount, RequestID: requestID, Replay: replay, Time: s.now()})
	// The summary line of the quiet log: one per money operation.
	s.log.Info(kind, "api", api, "order", k.orderID, "amount", amount, "replay", replay)
	if !replay {
		s.ledgerOpLocked(api, k, kind, amount) // captures and refunds are money on the ledger
	}
}

// Operations returns the operations log, oldest first: every money operation applied (initiate, capture,
// refund, cancel, by either API) and every idempotent replay, flagged. orderID filters by eCom orderId or
// ePayment reference; "" returns all.
func (s *Server) Operations(orderID string) []Operation {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Operation{}
	for _, op := range s.ops {
		if orderID == "" || op.OrderID == orderID {
			out = append(out, op)
		}
	}
	return out
}

func (s *Server) operationsRoute(m *http.ServeMux) {
	m.HandleFunc("GET /_sim/operations", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Operations(r.URL.Query().Get("orderId")))
	})
}
