package vippssim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// CallbackMode says what happens to callbacks.
type CallbackMode int

const (
	// CallbackDeliver sends every callback once (the default).
	CallbackDeliver CallbackMode = iota
	// CallbackDrop records callbacks without sending them, as when Vipps's
	// single attempt is lost: Vipps never retries, so the merchant must poll.
	CallbackDrop
)

// String returns "deliver" or "drop".
func (m CallbackMode) String() string {
	switch m {
	case CallbackDeliver:
		return "deliver"
	case CallbackDrop:
		return "drop"
	default:
		return "unknown"
	}
}

// ParseCallbackMode parses "deliver" or "drop".
func ParseCallbackMode(s string) (CallbackMode, bool) {
	switch s {
	case "deliver":
		return CallbackDeliver, true
	case "drop":
		return CallbackDrop, true
	}
	return 0, false
}

// DeliveredCallback records one callback attempt.
type DeliveredCallback struct {
	// MerchantSerialNumber and OrderID identify the payment.
	MerchantSerialNumber string `json:"merchantSerialNumber"`
	OrderID              string `json:"orderId"`
	// Status is the callback's transactionInfo.status: RESERVED, CANCELLED or REJECTED.
	Status string `json:"status"`
	// URL is {callbackPrefix}/v2/payments/{orderId}.
	URL string `json:"url"`
	// Header holds the request headers sent (Authorization is the payment's
	// authToken, present only if one was given at initiate).
	Header http.Header `json:"header"`
	// Body is the raw JSON body.
	Body json.RawMessage `json:"body"`
	// Sent is false when the callback was dropped (CallbackDrop or a drop
	// fault) or the simulator was closed.
	Sent bool `json:"sent"`
	// StatusCode is the merchant's HTTP status; 0 if there was no answer.
	StatusCode int `json:"statusCode"`
	// Err describes a transport failure (timeout, refused connection) or why
	// nothing was sent.
	Err string `json:"error,omitempty"`
	// At is when the callback was created.
	At time.Time `json:"at"`
}

// SetCallbackMode sets what happens to callbacks from now on.
func (s *Server) SetCallbackMode(m CallbackMode) {
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
}

// Callbacks returns every finished callback attempt in the order the
// callbacks were sent (or dropped); faults that delay or reorder callbacks
// change that order, and a duplicated callback is listed twice. Callbacks still in flight are not included;
// [Server.Flush] waits for them.
func (s *Server) Callbacks() []DeliveredCallback {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]DeliveredCallback, 0, len(s.callbacks))
	for _, e := range s.callbacks {
		if !e.done {
			continue
		}
		c := e.rec
		c.Header = c.Header.Clone()
		c.Body = append(json.RawMessage(nil), c.Body...)
		out = append(out, c)
	}
	return out
}

// callbackEntry is a callback record, in creation order; done once the
// attempt is over.
type callbackEntry struct {
	rec  DeliveredCallback
	done bool
}

type callbackInfo struct {
	status    string
	txID      string
	at        time.Time
	errorInfo *vippsError
}

// callbackBody is ms_import.yaml's RegularCheckOutPaymentRequest.
type callbackBody struct {
	MerchantSerialNumber string              `json:"merchantSerialNumber"`
	OrderID              string              `json:"orderId"`
	TransactionInfo      callbackTransaction `json:"transactionInfo"`
	ErrorInfo            *vippsError         `json:"errorInfo,omitempty"`
	// ShippingDetails and UserDetails make it ExpressCheckOutPaymentRequest (express.go).
	ShippingDetails any `json:"shippingDetails,omitempty"`
	UserDetails     any `json:"userDetails,omitempty"`
}

type callbackTransaction struct {
	Amount        int64  `json:"amount"`
	Status        string `json:"status"`
	TimeStamp     string `json:"timeStamp"`
	TransactionID string `json:"transactionId,omitempty"`
}

// sendCallbackLocked records or starts the callback for p. Call with s.mu held.
func (s *Server) sendCallbackLocked(p *payment, info callbackInfo) {
	shipping, user := p.expressCallbackFields()
	body, _ := json.Marshal(callbackBody{ // plain struct: cannot fail
		ShippingDetails:      shipping,
		UserDetails:          user,
		MerchantSerialNumber: p.key.msn,
		OrderID:              p.key.orderID,
		TransactionInfo: callbackTransaction{
			Amount: p.amount, Status: info.status, TimeStamp: timeStamp(info.at), TransactionID: info.txID,
		},
		ErrorInfo: info.errorInfo,
	})
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "vippssim")
	if p.authToken != "" {
		h.Set("Authorization", p.authToken) // the bare token, exactly as given
	}
	rec := DeliveredCallback{
		MerchantSerialNumber: p.key.msn,
		OrderID:              p.key.orderID,
		Status:               info.status,
		URL:                  p.callbackPrefix + "/v2/payments/" + p.key.orderID,
		Header:               h,
		Body:                 body,
		At:                   info.at,
	}
	switch {
	case s.closed:
		s.callbacks = append(s.callbacks, &callbackEntry{rec: withErr(rec, "not sent: simulator closed"), done: true})
		return
	case s.mode == CallbackDrop:
		s.callbacks = append(s.callbacks, &callbackEntry{rec: withErr(rec, "not sent: callback mode is drop"), done: true})
		s.log.Info("callback not sent: callback mode is drop", "status", info.status, "order", p.key.orderID)
		return
	}
	s.dispatchLocked(outgoing{
		send: func() {
			if s.closed { // released by Close from a delay or a reorder batch
				s.callbacks = append(s.callbacks, &callbackEntry{rec: withErr(rec, "not sent: simulator closed"), done: true})
				return
			}
			entry := &callbackEntry{rec: rec}
			entry.rec.Header = rec.Header.Clone()
			s.callbacks = append(s.callbacks, entry)
			s.inflight++
			go s.deliver(entry, entry.rec)
		},
		drop: func(reason string) {
			s.callbacks = append(s.callbacks, &callbackEntry{rec: withErr(rec, reason), done: true})
			s.log.Info("callback not sent", "status", info.status, "order", p.key.orderID, "reason", reason)
		},
	})
}

func withErr(rec DeliveredCallback, reason string) DeliveredCallback {
	rec.Header = rec.Header.Clone()
	rec.Err = reason
	return rec
}

// deliver makes the single attempt Vipps makes, then completes entry.
// rec is a copy of entry.rec, owned by this goroutine.
func (s *Server) deliver(entry *callbackEntry, rec DeliveredCallback) {
	ctx, cancel := context.WithTimeout(context.Background(), callbackTimeout)
	defer cancel()
	rec.Sent = true
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rec.URL, bytes.NewReader(rec.Body))
	if err != nil {
		rec.Sent = false
		rec.Err = "build request: " + err.Error()
	} else {
		req.Header = rec.Header.Clone()
		resp, err := s.cfg.CallbackClient.Do(req)
		if err != nil {
			rec.Err = err.Error()
		} else {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
			rec.StatusCode = resp.StatusCode
		}
	}
	s.logSent("callback", rec.StatusCode, rec.Err, "status", rec.Status, "order", rec.OrderID)

	s.mu.Lock()
	entry.rec = rec
	entry.done = true
	s.inflight--
	s.signalIdleLocked()
	s.mu.Unlock()
}
