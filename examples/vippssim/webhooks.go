package vippssim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// The Webhooks API v1 (webhooks-v1.swagger.yaml) and signed delivery of ePayment events.
//
// Register, list and delete work per merchant serial number, with at most 5 registrations per event (the
// spec's limit). Every ePayment event is delivered to each registration of the payment's MSN that
// subscribes to it (epayments.payment.<name>.v1), signed as vipps-reference.md §6.3 describes, with a fresh
// x-ms-date on every attempt. Delivery is at least once and ordered per registration and payment: a failed
// delivery (no 2xx within WebhookTimeout) is retried with exponential backoff, from WebhookRetry up to
// WebhookRetryMax, and holds back the later events of the same payment until it succeeds or WebhookAttempts
// attempts have failed. Vipps retries for up to 7 days; the simulator's defaults are shorter.
//
// The Webhooks API answers 400 for a webhook id it does not know (the spec declares no 404).

// WebhookMode says how the simulator delivers webhook events.
type WebhookMode int

// Webhook modes.
const (
	// WebhookDeliver sends each event once (and again only after a failure). The default.
	WebhookDeliver WebhookMode = iota
	// WebhookDuplicate sends each event twice in a row, as Vipps may ("at least once").
	WebhookDuplicate
	// WebhookHold keeps events queued without sending them, like an outage on Vipps's side; they are sent
	// in order once the mode changes.
	WebhookHold
)

// Defaults of the delivery schedule.
const (
	defaultWebhookTimeout  = 10 * time.Second
	defaultWebhookRetry    = 100 * time.Millisecond
	defaultWebhookRetryMax = 5 * time.Second
	defaultWebhookAttempts = 30
	maxWebhooksPerEvent    = 5
)

// webhookEvents are the event names the Webhooks API accepts for ePayment.
var webhookEvents = map[string]string{
	"epayments.payment.created.v1": epCreated, "epayments.payment.aborted.v1": epAborted,
	"epayments.payment.expired.v1": epExpired, "epayments.payment.cancelled.v1": evCancelled,
	"epayments.payment.captured.v1": evCaptured, "epayments.payment.refunded.v1": evRefunded,
	"epayments.payment.authorized.v1": epAuthorized, "epayments.payment.terminated.v1": epTerminated,
}

// DeliveredWebhook is one delivery attempt of a webhook event.
type DeliveredWebhook struct {
	WebhookID string `json:"webhookId"`
	URL       string `json:"url"`
	Reference string `json:"reference"`
	// Event is the event name, e.g. AUTHORIZED.
	Event   string `json:"event"`
	Attempt int    `json:"attempt"`
	// StatusCode is kasse's answer, 0 if none came (Err says why).
	StatusCode int         `json:"statusCode"`
	Err        string      `json:"error,omitempty"`
	Header     http.Header `json:"header"`
	Body       []byte      `json:"body"`
	At         time.Time   `json:"at"`
}

// Delivered reports whether the attempt got a 2xx answer.
func (d DeliveredWebhook) Delivered() bool { return d.StatusCode >= 200 && d.StatusCode < 300 }

type webhookReg struct {
	id, msn, url, secret string
	events               []string
}

// queueKey orders deliveries per registration and payment.
type queueKey struct{ webhookID, reference string }

type delivery struct {
	event string
	body  []byte
}

// epaymentSim is the ePayment and Webhooks state of a Server, guarded by Server.mu.
type epaymentSim struct {
	payments   map[paymentKey]*epPayment
	landing    map[string]paymentKey
	createIdem map[string]idemRecord
	webhooks   map[string]*webhookReg
	order      []string // webhook ids in registration order
	queues     map[queueKey][]delivery
	running    map[queueKey]bool
	deliveries []DeliveredWebhook
	mode       WebhookMode
	wake       chan struct{} // closed and replaced when the mode changes
	active     sync.WaitGroup
	stop       chan struct{}
}

func newEPaymentSim() *epaymentSim {
	return &epaymentSim{
		payments: map[paymentKey]*epPayment{}, landing: map[string]paymentKey{}, createIdem: map[string]idemRecord{},
		webhooks: map[string]*webhookReg{}, queues: map[queueKey][]delivery{}, running: map[queueKey]bool{},
		wake: make(chan struct{}), stop: make(chan struct{}),
	}
}

// close stops the delivery workers and waits for them. Call without s.mu held.
func (s *Server) closeWebhooks() {
	s.mu.Lock()
	select {
	case <-s.ep.stop:
	default:
		close(s.ep.stop)
	}
	s.mu.Unlock()
	s.ep.active.Wait()
}

// SetWebhookMode changes how events are delivered from now on.
func (s *Server) SetWebhookMode(m WebhookMode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ep.mode = m
	close(s.ep.wake)
	s.ep.wake = make(chan struct{})
}

// Webhooks returns every webhook delivery attempt so far, oldest first.
func (s *Server) Webhooks() []DeliveredWebhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]DeliveredWebhook, len(s.ep.deliveries))
	for i, d := range s.ep.deliveries {
		d.Header = d.Header.Clone()
		d.Body = bytes.Clone(d.Body)
		out[i] = d
	}
	return out
}

// FlushWebhooks waits until no event is queued, being delivered or held back by faults, or timeout passes;
// it reports whether the queues are empty.
func (s *Server) FlushWebhooks(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		n := len(s.ep.queues) + s.fs.pendingOut
		s.mu.Unlock()
		if n == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// RegisteredWebhook is a registration as the simulator keeps it, with its secret, for tests.
type RegisteredWebhook struct {
	ID, MerchantSerialNumber, URL, Secret string
	Events                                []string
}

// RegisteredWebhooks returns every registration, in registration order.
func (s *Server) RegisteredWebhooks() []RegisteredWebhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []RegisteredWebhook
	for _, id := range s.ep.order {
		if w, ok := s.ep.webhooks[id]; ok {
			out = append(out, RegisteredWebhook{ID: w.id, MerchantSerialNumber: w.msn, URL: w.url, Secret: w.secret,
				Events: append([]string(nil), w.events...)})
		}
	}
	return out
}

// webhookEvent is the ePayment WebhookEvent.
type webhookEvent struct {
	MSN            string       `json:"msn"`
	Reference      string       `json:"reference"`
	PspReference   string       `json:"pspReference"`
	Name           string       `json:"name"`
	Amount         epAmountJSON `json:"amount"`
	Timestamp      string       `json:"timestamp"`
	IdempotencyKey *string      `json:"idempotencyKey"`
	Success        bool         `json:"success"`
}

// enqueueWebhookLocked queues e for every subscribed registration of p's MSN. Call with s.mu held.
func (s *Server) enqueueWebhookLocked(p *epPayment, e EPaymentEvent) {
	ev := webhookEvent{MSN: p.key.msn, Reference: p.key.orderID, PspReference: e.PspReference, Name: e.Name,
		Amount: epAmountJSON{p.currency, e.Amount}, Timestamp: timeStamp(e.Time), Success: e.Success}
	if e.IdempotencyKey != "" {
		k := e.IdempotencyKey
		ev.IdempotencyKey = &k
	}
	body, _ := marshal(ev) // plain struct: cannot fail
	name := "epayments.payment." + strings.ToLower(e.Name) + ".v1"
	for _, id := range s.ep.order {
		w, ok := s.ep.webhooks[id]
		if !ok || w.msn != p.key.msn || !contains(w.events, name) {
			continue
		}
		k := queueKey{webhookID: id, reference: p.key.orderID}
		d := delivery{event: e.Name, body: body}
		s.dispatchLocked(outgoing{
			send: func() {
				if s.closed {
					s.ep.deliveries = append(s.ep.deliveries, DeliveredWebhook{WebhookID: w.id, URL: w.url,
						Reference: k.reference, Event: d.event, Err: "not sent: simulator closed", Body: d.body, At: s.now()})
					return
				}
				s.ep.queues[k] = append(s.ep.queues[k], d)
				if !s.ep.running[k] {
					s.ep.running[k] = true
					s.ep.active.Add(1)
					go s.runQueue(k)
				}
			},
			drop: func(reason string) {
				s.ep.deliveries = append(s.ep.deliveries, DeliveredWebhook{WebhookID: w.id, URL: w.url,
					Reference: k.reference, Event: d.event, Err: reason, Body: d.body, At: s.now()})
				s.log.Info("webhook not sent", "webhook", w.id, "event", d.event, "reference", k.reference, "reason", reason)
			},
		})
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// runQueue delivers one queue's events in order until it is empty.
func (s *Server) runQueue(k queueKey) {
	defer s.ep.active.Done()
	for {
		s.mu.Lock()
		q := s.ep.queues[k]
		w, registered := s.ep.webhooks[k.webhookID]
		if len(q) == 0 || !registered {
			delete(s.ep.queues, k)
			delete(s.ep.running, k)
			s.mu.Unlock()
			return
		}
		mode, wake, stop := s.ep.mode, s.ep.wake, s.ep.stop
		s.mu.Unlock()
		if mode == WebhookHold {
			select {
			case <-wake:
				continue
			case <-stop:
				s.dropQueue(k)
				return
			}
		}
		d := q[0]
		sends := 1
		if mode == WebhookDuplicate {
			sends = 2
		}
		ok := false
		for attempt := 1; attempt <= s.cfg.WebhookAttempts; attempt++ {
			for i := 0; i < sends; i++ {
				if s.sendWebhook(w, k.reference, d, attempt) {
					ok = true
				}
			}
			if ok {
				break
			}
			backoff := s.cfg.WebhookRetry << min(attempt-1, 20)
			if backoff > s.cfg.WebhookRetryMax || backoff <= 0 {
				backoff = s.cfg.WebhookRetryMax
			}
			select {
			case <-time.After(backoff):
			case <-stop:
				s.dropQueue(k)
				return
			}
			s.mu.Lock()
			_, still := s.ep.webhooks[k.webhookID]
			s.mu.Unlock()
			if !still {
				break
			}
		}
		if !ok {
			s.log.Warn("webhook event dropped", "webhook", w.id, "event", d.event, "reference", k.reference, "attempts", s.cfg.WebhookAttempts)
		}
		s.mu.Lock()
		if q := s.ep.queues[k]; len(q) > 0 {
			s.ep.queues[k] = q[1:]
		}
		s.mu.Unlock()
	}
}

func (s *Server) dropQueue(k queueKey) {
	s.mu.Lock()
	delete(s.ep.queues, k)
	delete(s.ep.running, k)
	s.mu.Unlock()
}

// sendWebhook makes one signed delivery attempt and records it; it reports whether kasse answered 2xx.
func (s *Server) sendWebhook(w *webhookReg, reference string, d delivery, attempt int) bool {
	rec := DeliveredWebhook{WebhookID: w.id, URL: w.url, Reference: reference, Event: d.event, Attempt: attempt,
		Body: d.body, At: s.now()}
	u, err := url.Parse(w.url)
	if err != nil {
		rec.Err = "bad url"
		s.recordWebhook(rec)
		return false
	}
	date := s.now().Format(http.TimeFormat)
	sum := sha256.Sum256(d.body)
	hash := base64.StdEncoding.EncodeToString(sum[:])
	mac := hmac.New(sha256.New, []byte(w.secret))
	mac.Write([]byte("POST\n" + u.RequestURI() + "\n" + date + ";" + u.Host + ";" + hash))
	sig := base64.StdEncoding.EncodeToString(mac.Sum(nil))

	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(d.body))
	if err != nil {
		rec.Err = "build request: " + err.Error()
		s.recordWebhook(rec)
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vippssim-webhooks")
	req.Header.Set("x-ms-date", date)
	req.Header.Set("x-ms-content-sha256", hash)
	req.Header.Set("Authorization", "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature="+sig)
	rec.Header = req.Header.Clone()
	resp, err := s.cfg.CallbackClient.Do(req)
	if err != nil {
		rec.Err = err.Error()
	} else {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		rec.StatusCode = resp.StatusCode
	}
	s.logSent("webhook", rec.StatusCode, rec.Err, "webhook", w.id, "event", d.event, "reference", reference, "attempt", attempt)
	s.recordWebhook(rec)
	return rec.Delivered()
}

func (s *Server) recordWebhook(rec DeliveredWebhook) {
	s.mu.Lock()
	s.ep.deliveries = append(s.ep.deliveries, rec)
	s.mu.Unlock()
}

// newWebhookSecret returns a random secret shaped like Vipps's (base64 of 64 bytes).
func newWebhookSecret() string {
	var b [64]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// webhookProblem is the Webhooks API's ProblemDetails.
func writeWebhookProblem(w http.ResponseWriter, status int, detail string, extra ...extraDetail) {
	body, _ := marshal(struct {
		Type         string        `json:"type"`
		Title        string        `json:"title"`
		Status       int           `json:"status"`
		Detail       string        `json:"detail"`
		TraceID      string        `json:"traceId"`
		ExtraDetails []extraDetail `json:"extraDetails,omitempty"`
	}{"https://developer.vippsmobilepay.com/docs/APIs/webhooks-api/", http.StatusText(status), status, detail, newUUID(), extra})
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// handleWebhookRegister serves POST /webhooks/v1/webhooks (RegisterRequest -> 201 RegisterResponse).
func (s *Server) handleWebhookRegister(w http.ResponseWriter, r *http.Request) {
	t, ok := s.epAuthorize(w, r)
	if !ok {
		return
	}
	body, _, pe := readEPBody(w, r, true)
	if pe != nil {
		writeWebhookProblem(w, http.StatusBadRequest, pe.Detail)
		return
	}
	var f fields
	for k := range body {
		if k != "url" && k != "events" {
			f.invalid(k, "unknown property")
		}
	}
	u, okURL := f.str(body, "url", "url", true, 0)
	if okURL {
		s.checkURL(&f, "url", u, urlRule{})
	}
	var events []string
	if v, ok := f.get(body, "events", "events", true); ok {
		list, isList := v.([]any)
		if !isList || len(list) == 0 {
			f.invalid("events", "must be a non-empty array of event names")
		}
		for _, e := range list {
			name, isStr := e.(string)
			if _, known := webhookEvents[name]; !isStr || !known {
				f.invalid("events", "unknown event %v", e)
				break
			}
			if !contains(events, name) {
				events = append(events, name)
			}
		}
	}
	if e := f.err(); e != nil {
		p := problemFromFields(e)
		writeWebhookProblem(w, http.StatusBadRequest, p.Detail, p.ExtraDetails...)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range events {
		n := 0
		for _, reg := range s.ep.webhooks {
			if reg.msn == t.MerchantSerialNumber && contains(reg.events, name) {
				n++
			}
		}
		if n >= maxWebhooksPerEvent {
			writeWebhookProblem(w, http.StatusBadRequest, fmt.Sprintf("at most %d webhooks can be registered per event (%s)", maxWebhooksPerEvent, name))
			return
		}
	}
	reg := &webhookReg{id: newUUID(), msn: t.MerchantSerialNumber, url: u, secret: newWebhookSecret(), events: events}
	s.ep.webhooks[reg.id] = reg
	s.ep.order = append(s.ep.order, reg.id)
	writeJSONPlain(w, http.StatusCreated, map[string]string{"id": reg.id, "secret": reg.secret})
}

// handleWebhookList serves GET /webhooks/v1/webhooks (QueryResponse).
func (s *Server) handleWebhookList(w http.ResponseWriter, r *http.Request) {
	t, ok := s.epAuthorize(w, r)
	if !ok {
		return
	}
	type item struct {
		ID     string   `json:"id"`
		URL    string   `json:"url"`
		Events []string `json:"events"`
	}
	out := struct {
		Webhooks []item `json:"webhooks"`
	}{Webhooks: []item{}}
	s.mu.Lock()
	for _, id := range s.ep.order {
		if reg, ok := s.ep.webhooks[id]; ok && reg.msn == t.MerchantSerialNumber {
			out.Webhooks = append(out.Webhooks, item{reg.id, reg.url, append([]string(nil), reg.events...)})
		}
	}
	s.mu.Unlock()
	writeJSONPlain(w, http.StatusOK, out)
}

// handleWebhookDelete serves DELETE /webhooks/v1/webhooks/{id} (204).
func (s *Server) handleWebhookDelete(w http.ResponseWriter, r *http.Request) {
	t, ok := s.epAuthorize(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	reg, found := s.ep.webhooks[id]
	if !found || reg.msn != t.MerchantSerialNumber {
		s.mu.Unlock()
		writeWebhookProblem(w, http.StatusBadRequest, "no webhook with this id for this merchant serial number")
		return
	}
	delete(s.ep.webhooks, id)
	for i, x := range s.ep.order {
		if x == id {
			s.ep.order = append(s.ep.order[:i:i], s.ep.order[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}
