// Package hooks owns kasse's HTTP endpoints for webshop platforms: POST /hooks/{adapter}/{merchant} for
// webhooks and POST /hooks/{adapter}/{merchant}/checkout for a shop's synchronous checkout step. For
// each delivery it finds the adapter and the merchant, reads the body under a size limit, has the
// adapter verify the signature before anything is parsed, drops repeated deliveries, and turns the
// adapter's event into a call to the checkout service (create, Express create, capture, refund, cancel).
// Errors are RFC 9457 problem documents, in the same shape as host/httpapi.
//
// Adapters in adapters.ModeSync are processed before the answer. Adapters in adapters.ModeAckFirst
// (Shopify) are answered 200 as soon as the delivery is verified, de-duplicated and stored in a durable
// inbox (a host/outbound queue), whose bounded workers do the work after and retry it on failure.
//
// The package holds no payment logic and no platform knowledge; it must not import any adapter.
package hooks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/host/checkout"
	"github.com/kassehq/kasse/host/internal/adapterview"
	"github.com/kassehq/kasse/host/outbound"
	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/problem"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/schemas"
)

// DefaultMaxBodyBytes is the default limit of a delivery body (Shopify orders with many lines are
// large).
const DefaultMaxBodyBytes = 1 << 20

// InboxKind is the outbound.Job kind of deliveries stored for later processing.
const InboxKind = "platform-delivery"

// Claims remembers delivery ids across requests and instances; store.Store satisfies it.
type Claims interface {
	ClaimIdempotencyKey(ctx context.Context, scope, key, value string, ttl time.Duration) (existing string, err error)
	ReleaseIdempotencyKey(ctx context.Context, scope, key, value string) error
	SwapIdempotencyKey(ctx context.Context, scope, key, old, value string, ttl time.Duration) (bool, error)
}

// Deps are what the hooks need. Adapters, Merchants, Checkouts, Claims, Schemas and InboxStorage are
// required.
type Deps struct {
	// Adapters is the snapshot of registered adapters (adapters.Registered()).
	Adapters []adapters.Info
	// Merchants finds a merchant's configuration, its platform settings included.
	Merchants Merchants
	// Checkouts is the checkout service.
	Checkouts Checkouts
	// Claims remembers delivery ids (Shopify's X-Shopify-Webhook-Id, generic signatures).
	Claims Claims
	// Schemas validates the translated checkouts against schemas.Checkout.
	Schemas *schemas.Set
	// InboxStorage keeps deliveries of ModeAckFirst adapters until they are processed:
	// outbound.NewRedisStorage(client, "kasse:inbox:") with Redis, outbound.NewMemoryStorage() without.
	InboxStorage outbound.Storage
	// InboxWorkers is how many stored deliveries are processed at once. Default 2.
	InboxWorkers int
	// InboxMaxAttempts is how many times a stored delivery is tried. Default 8.
	InboxMaxAttempts int
	// MaxBodyBytes limits a delivery's body. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// DedupeTTL is how long a delivery id is remembered once its delivery was processed (or stored in
	// the inbox). Default 72h (Shopify retries for 4 hours).
	DedupeTTL time.Duration
	// PendingClaimTTL is how long a delivery id stays claimed by a delivery still being processed
	// without being renewed (it is renewed every third of it meanwhile): the platform's redelivery after
	// kasse died during the first is processed once it has passed. Default store.DefaultPendingClaimTTL.
	PendingClaimTTL time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives one line per delivery. Default slog.Default().
	Logger *slog.Logger
}

// Hooks serves the platform endpoints. Create it with New.
type Hooks struct {
	adapters  map[string]adapters.Instance
	merchants Merchants
	checkouts Checkouts
	claims    Claims
	schemas   *schemas.Set
	inbox     *outbound.Queue
	maxBody   int64
	dedupeTTL time.Duration
	// pendingTTL is the TTL of a delivery id's claim while the delivery is processed.
	pendingTTL time.Duration
	now        func() time.Time
	log        *slog.Logger
}

// New returns the hooks for deps, or an error naming the first missing dependency.
func New(deps Deps) (*Hooks, error) {
	switch {
	case len(deps.Adapters) == 0:
		return nil, errors.New("hooks: deps: no adapters (blank-import adapters/standard)")
	case deps.Merchants == nil:
		return nil, errors.New("hooks: deps: Merchants is required")
	case deps.Checkouts == nil:
		return nil, errors.New("hooks: deps: Checkouts is required")
	case deps.Claims == nil:
		return nil, errors.New("hooks: deps: Claims is required")
	case deps.Schemas == nil:
		return nil, errors.New("hooks: deps: Schemas is required")
	case deps.InboxStorage == nil:
		return nil, errors.New("hooks: deps: InboxStorage is required")
	}
	h := &Hooks{adapters: adapters.Instances(deps.Adapters), merchants: deps.Merchants, checkouts: deps.Checkouts,
		claims: deps.Claims, schemas: deps.Schemas, maxBody: deps.MaxBodyBytes, dedupeTTL: deps.DedupeTTL,
		pendingTTL: deps.PendingClaimTTL, now: deps.Now, log: deps.Logger}
	if h.pendingTTL <= 0 {
		h.pendingTTL = store.DefaultPendingClaimTTL
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.dedupeTTL <= 0 {
		h.dedupeTTL = 72 * time.Hour
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	attempts := deps.InboxMaxAttempts
	if attempts <= 0 {
		attempts = 8
	}
	var err error
	h.inbox, err = outbound.New(outbound.Config{Storage: deps.InboxStorage, Deliver: h.Deliver,
		Workers: deps.InboxWorkers, MaxAttempts: attempts, BaseDelay: 2 * time.Second, MaxDelay: 5 * time.Minute,
		Now: deps.Now, Logger: h.log})
	if err != nil {
		return nil, fmt.Errorf("hooks: inbox: %w", err)
	}
	return h, nil
}

// Mount builds the hooks with New and mounts them on r.
func Mount(r gin.IRouter, deps Deps) (*Hooks, error) {
	h, err := New(deps)
	if err != nil {
		return nil, err
	}
	h.Mount(r)
	return h, nil
}

// Mount adds POST /hooks/:adapter/:merchant and POST /hooks/:adapter/:merchant/checkout to r.
func (h *Hooks) Mount(r gin.IRouter) {
	r.POST("/hooks/:adapter/:merchant", h.handle(false))
	r.POST("/hooks/:adapter/:merchant/checkout", h.handle(true))
}

// Run processes stored deliveries until ctx is done. The host runs it next to the HTTP server.
func (h *Hooks) Run(ctx context.Context) { h.inbox.Run(ctx) }

// InboxStats reports the inbox queue's counters.
func (h *Hooks) InboxStats(ctx context.Context) (outbound.Stats, error) { return h.inbox.Stats(ctx) }

// Result is the JSON body of a successful answer.
type Result struct {
	// Status is what kasse did: "ignored", "accepted" (stored, processed after), "duplicate",
	// "checkout", "express" (an Express Checkout), "capture", "refund", "cancel" or "nothing-to-do".
	Status string `json:"status"`
	// Reason explains ignored and nothing-to-do.
	Reason string `json:"reason,omitempty"`
	// SessionID is the kasse checkout session concerned.
	SessionID string `json:"sessionId,omitempty"`
	// State is the session's payment state afterwards.
	State payment.State `json:"state,omitempty"`
	// RedirectURL is where the shop sends the customer to pay (checkout and express only).
	RedirectURL string `json:"redirectUrl,omitempty"`
}

func requestID(c *gin.Context) string {
	if id := c.GetString("kasse.requestID"); id != "" {
		return id
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	c.Set("kasse.requestID", id)
	c.Header("X-Request-Id", id)
	return id
}

func (h *Hooks) handle(sync bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx := c.Request.Context()
		adapterID, merchantID := c.Param("adapter"), c.Param("merchant")
		log := &deliveryLog{base: h.log, args: []any{"request", requestID(c), "adapter", adapterID, "merchant", merchantID}}
		inst, ok := h.adapters[adapterID]
		if !ok {
			abortProblem(c, problem.Problem{Type: problem.Base + "unknown-adapter", Title: "Unknown platform adapter",
				Status: http.StatusNotFound, Detail: "no platform adapter " + strconv.Quote(adapterID) + " is registered"})
			return
		}
		m, ok := h.merchants.Merchant(merchantID)
		if !ok || m.Platform == nil || m.Platform.Kind != adapterID {
			// The same answer whether the merchant is missing or uses another platform.
			abortProblem(c, problem.Problem{Type: problem.Base + "unknown-merchant", Title: "Unknown merchant",
				Status: http.StatusNotFound, Merchant: merchantID,
				Detail: "no merchant " + strconv.Quote(merchantID) + " is configured for platform " + adapterID})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, h.maxBody))
		if err != nil {
			var maxErr *http.MaxBytesError
			if !errors.As(err, &maxErr) {
				err = &adapters.InputError{Detail: "could not read the body: " + err.Error()}
			}
			log.Info("hooks: body refused", "err", err)
			abortProblem(c, problemFor(err))
			return
		}
		d := &adapters.Delivery{Merchant: adapterview.Merchant(m), Header: c.Request.Header.Clone(), Body: body, Sync: sync, ReceivedAt: h.now()}
		if err := safely(func() error { return inst.Adapter.Verify(d) }); err != nil {
			log.Warn("hooks: delivery refused", "err", err)
			if !errors.Is(err, adapters.ErrUnauthorized) {
				err = fmt.Errorf("%w: %v", adapters.ErrUnauthorized, err)
			}
			abortProblem(c, problemFor(err))
			return
		}
		ev, err := parse(inst.Adapter, d)
		if err != nil {
			log.Info("hooks: delivery not understood", "err", err)
			abortProblem(c, problemFor(err))
			return
		}
		log.with("topic", ev.Topic, "action", ev.Action, "reference", ev.Reference, "delivery", ev.DeliveryID)
		if sync && ev.Action != adapters.ActionCheckout && ev.Action != adapters.ActionExpressCheckout &&
			ev.Action != adapters.ActionPing {
			abortProblem(c, problem.Problem{Type: problem.Base + "not-a-checkout", Title: "Not a checkout",
				Status: http.StatusUnprocessableEntity, Detail: "the checkout hook needs a payable order: " + ev.Reason})
			return
		}
		switch ev.Action {
		case adapters.ActionPing:
			log.Info("hooks: ping")
			c.Status(http.StatusOK) // WooCommerce wants exactly 200.
			return
		case adapters.ActionIgnore:
			log.Info("hooks: ignored", "reason", ev.Reason)
			c.PureJSON(http.StatusOK, Result{Status: "ignored", Reason: ev.Reason})
			return
		}

		// A delivery id is claimed as pending while the delivery is processed, renewed meanwhile, and
		// marked done (kept DedupeTTL) once it was processed or stored in the inbox. A process that dies
		// in between stops renewing, so the platform's redelivery is processed pendingTTL later instead
		// of being dropped as a duplicate for DedupeTTL: the order still gets its checkout, and once only
		// (the order's reference index and the create's key find a session the dead attempt made).
		scope := "hook:" + adapterID + ":" + merchantID
		var claim *deliveryClaim // nil without a delivery id: its methods then do nothing
		if ev.DeliveryID != "" {
			// The claim holds this request's id, so that freeing it never frees another attempt's claim.
			claim = &deliveryClaim{h: h, ctx: context.WithoutCancel(ctx), log: log, scope: scope, id: ev.DeliveryID,
				pending: "p|" + requestID(c), done: "d|" + requestID(c)}
			existing, err := h.claims.ClaimIdempotencyKey(ctx, scope, ev.DeliveryID, claim.pending, h.pendingTTL)
			if err != nil {
				// The claim may have reached the store (an answer lost, a write not replicated): left
				// there, the platform's retry would wait for it to lapse.
				claim.free()
				log.Error("hooks: claim delivery id", "err", err)
				abortProblem(c, problem.Problem{Type: problem.Base + "unavailable", Title: "Service unavailable",
					Status: http.StatusServiceUnavailable, Detail: "the delivery could not be recorded; retry later"})
				return
			}
			if strings.HasPrefix(existing, "p|") {
				// Another attempt is processing it, or died doing so (its claim then lapses): not a
				// duplicate yet, so the platform must try again rather than hear it was done.
				log.Info("hooks: delivery in progress")
				abortProblem(c, problem.Problem{Type: problem.Base + "idempotency-in-progress", Title: "Delivery in progress",
					Status: http.StatusConflict, RetryAfter: 1,
					Detail: "this delivery is being processed by another request; retry shortly"})
				return
			}
			if existing != "" {
				log.Info("hooks: duplicate delivery dropped")
				if inst.Mode == adapters.ModeAckFirst && !sync {
					c.PureJSON(http.StatusOK, Result{Status: "duplicate"})
					return
				}
				abortProblem(c, problem.Problem{Type: problem.Base + "replayed-delivery", Title: "Delivery already received",
					Status: http.StatusConflict, Detail: "this delivery (or its signature) was already received; sign a new one"})
				return
			}
			claim.keep()
			// A panic below (the API's recovery answers 500) frees the id for the platform's retry;
			// otherwise the claim was already marked done or freed, and this does nothing.
			defer claim.release()
		}

		if inst.Mode == adapters.ModeAckFirst && !sync {
			if err := h.store(ctx, adapterID, merchantID, d, ev); err != nil {
				claim.release()
				log.Error("hooks: store delivery", "err", err)
				abortProblem(c, problem.Problem{Type: problem.Base + "unavailable", Title: "Service unavailable",
					Status: http.StatusServiceUnavailable, Detail: "the delivery could not be stored; retry later"})
				return
			}
			claim.finish()
			log.Info("hooks: accepted")
			c.PureJSON(http.StatusOK, Result{Status: "accepted"})
			return
		}

		res, err := h.apply(ctx, adapterID, m.ID, ev)
		if err != nil {
			claim.release()
			p := problemFor(err)
			level := slog.LevelWarn
			if p.Status >= 500 {
				level = slog.LevelError
			}
			log.Log(ctx, level, "hooks: delivery failed", "status", p.Status, "err", err)
			abortProblem(c, p)
			return
		}
		claim.finish()
		log.Info("hooks: done", "result", res.Status, "session", res.SessionID, "state", res.State, "reason", res.Reason)
		c.PureJSON(http.StatusOK, res)
	}
}

// deliveryClaim is a delivery id claimed while its delivery is processed: pending, renewed by keep
// until it ends with finish (done, kept DedupeTTL) or release (freed for the platform's retry). Its
// methods do nothing on a nil claim (a delivery without an id), and only the first ending counts.
type deliveryClaim struct {
	h             *Hooks
	ctx           context.Context // without cancellation: the claim must end even if the platform hung up
	log           *deliveryLog
	scope, id     string
	pending, done string
	stop          func()
	ended         bool
}

// keep starts renewing the claim.
func (dc *deliveryClaim) keep() {
	dc.stop = store.KeepClaimed(dc.ctx, dc.h.claims, dc.scope, dc.id, dc.pending, dc.h.pendingTTL, func(err error) {
		dc.log.Warn("hooks: renew delivery id; once it lapses a redelivery may run beside this one", "err", err)
	})
}

// end stops the renewals; it reports false if the claim had already ended.
func (dc *deliveryClaim) end() bool {
	if dc == nil || dc.ended {
		return false
	}
	dc.ended = true
	if dc.stop != nil {
		dc.stop()
	}
	return true
}

// free deletes the claim if it is still this request's.
func (dc *deliveryClaim) free() {
	if err := dc.h.claims.ReleaseIdempotencyKey(dc.ctx, dc.scope, dc.id, dc.pending); err != nil {
		dc.log.Warn("hooks: release delivery id", "err", err)
	}
}

// release ends the claim by freeing it: the delivery was not processed, and the platform may retry it.
func (dc *deliveryClaim) release() {
	if dc.end() {
		dc.free()
	}
}

// finish ends the claim by marking the delivery done, so that a redelivery is a duplicate.
func (dc *deliveryClaim) finish() {
	if !dc.end() {
		return
	}
	ok, err := dc.h.claims.SwapIdempotencyKey(dc.ctx, dc.scope, dc.id, dc.pending, dc.done, dc.h.dedupeTTL)
	if err == nil && !ok {
		err = store.ErrClaimLost
	}
	if err != nil {
		dc.log.Warn("hooks: mark delivery id done; a redelivery after its claim lapsed is processed again (and finds what this one did)",
			"err", err)
	}
}

// deliveryLog is the logger of one delivery: the delivery's attributes are kept as arguments and
// formatted with the one line a delivery usually writes, where slog.Logger.With would format them
// up front on every request.
type deliveryLog struct {
	base *slog.Logger
	args []any
}

// with adds attributes (key, value pairs) to every later line.
func (l *deliveryLog) with(args ...any) { l.args = append(l.args, args...) }

// Log writes one line with the delivery's attributes first.
func (l *deliveryLog) Log(ctx context.Context, level slog.Level, msg string, args ...any) {
	if !l.base.Enabled(ctx, level) {
		return
	}
	all := make([]any, 0, len(l.args)+len(args))
	l.base.Log(ctx, level, msg, append(append(all, l.args...), args...)...)
}

// Info logs at LevelInfo.
func (l *deliveryLog) Info(msg string, args ...any) {
	l.Log(context.Background(), slog.LevelInfo, msg, args...)
}

// Warn logs at LevelWarn.
func (l *deliveryLog) Warn(msg string, args ...any) {
	l.Log(context.Background(), slog.LevelWarn, msg, args...)
}

// Error logs at LevelError.
func (l *deliveryLog) Error(msg string, args ...any) {
	l.Log(context.Background(), slog.LevelError, msg, args...)
}

// safely runs an adapter call, turning a panic into an error.
func safely(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("adapter panicked: %v", v)
		}
	}()
	return fn()
}

func parse(a adapters.Adapter, d *adapters.Delivery) (*adapters.Event, error) {
	var ev *adapters.Event
	err := safely(func() error {
		var err error
		ev, err = a.Parse(d)
		return err
	})
	if err == nil && ev == nil {
		err = errors.New("adapter returned no event")
	}
	if err != nil {
		var ie *adapters.InputError
		if !errors.As(err, &ie) {
			err = &adapters.InputError{Detail: err.Error()}
		}
		return nil, err
	}
	return ev, nil
}

// stored is an inbox job's payload: the verified delivery, to be parsed again when processed.
type stored struct {
	Adapter    string      `json:"adapter"`
	Merchant   string      `json:"merchant"`
	Header     http.Header `json:"header"`
	Body       []byte      `json:"body"`
	ReceivedAt time.Time   `json:"receivedAt"`
}

// droppedHeaders are request headers an inbox job does not keep: credentials and cookies.
var droppedHeaders = []string{"Authorization", "Cookie", "Proxy-Authorization"}

func (h *Hooks) store(ctx context.Context, adapterID, merchantID string, d *adapters.Delivery, ev *adapters.Event) error {
	header := d.Header.Clone()
	for _, k := range droppedHeaders {
		header.Del(k)
	}
	payload, err := json.Marshal(stored{Adapter: adapterID, Merchant: merchantID, Header: header, Body: d.Body,
		ReceivedAt: d.ReceivedAt.UTC()})
	if err != nil {
		return fmt.Errorf("encode delivery: %w", err)
	}
	id := ev.DeliveryID
	if id == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = "r" + hex.EncodeToString(b[:])
	}
	return h.inbox.Enqueue(ctx, outbound.Job{ID: adapterID + ":" + merchantID + ":" + id, Kind: InboxKind,
		Merchant: merchantID, Payload: payload})
}

// Deliver processes one stored delivery: the inbox queue's Deliver function. Errors that a retry cannot
// fix (the merchant was removed, the order is invalid) are permanent; the rest are retried.
func (h *Hooks) Deliver(ctx context.Context, job outbound.Job) error {
	var s stored
	if err := json.Unmarshal(job.Payload, &s); err != nil {
		return outbound.Permanent(fmt.Errorf("hooks: decode stored delivery: %w", err))
	}
	inst, ok := h.adapters[s.Adapter]
	if !ok {
		return outbound.Permanent(fmt.Errorf("hooks: adapter %s is no longer registered", s.Adapter))
	}
	m, ok := h.merchants.Merchant(s.Merchant)
	if !ok || m.Platform == nil || m.Platform.Kind != s.Adapter {
		return outbound.Permanent(fmt.Errorf("hooks: merchant %s no longer uses %s", s.Merchant, s.Adapter))
	}
	ev, err := parse(inst.Adapter, &adapters.Delivery{Merchant: adapterview.Merchant(m), Header: s.Header, Body: s.Body, ReceivedAt: s.ReceivedAt})
	if err != nil {
		return outbound.Permanent(err)
	}
	res, err := h.apply(ctx, s.Adapter, m.ID, ev)
	if err != nil {
		if permanent(err) {
			return outbound.Permanent(err)
		}
		return err
	}
	h.log.Info("hooks: stored delivery done", "adapter", s.Adapter, "merchant", s.Merchant, "topic", ev.Topic,
		"reference", ev.Reference, "result", res.Status, "session", res.SessionID, "reason", res.Reason)
	return nil
}

// apply carries out a verified event against the checkout service.
func (h *Hooks) apply(ctx context.Context, adapterID, merchant string, ev *adapters.Event) (*Result, error) {
	switch ev.Action {
	case adapters.ActionPing:
		return &Result{Status: "ignored", Reason: "ping"}, nil
	case adapters.ActionIgnore:
		return &Result{Status: "ignored", Reason: ev.Reason}, nil
	case adapters.ActionCheckout, adapters.ActionExpressCheckout:
		return h.checkout(ctx, adapterID, merchant, ev)
	case adapters.ActionCapture, adapters.ActionCancel, adapters.ActionRefund:
		return h.modify(ctx, adapterID, merchant, ev)
	}
	return nil, &adapters.InputError{Detail: "adapter produced an unknown action " + strconv.Quote(string(ev.Action))}
}

// retryable lists the final states after which an order may be paid again with a new session.
func retryable(s payment.State) bool {
	return s == payment.StateFailed || s == payment.StateRejected || s == payment.StateExpired || s == payment.StateCancelled
}

// checkout starts the payment of a checkout or, for adapters.ActionExpressCheckout, an Express Checkout.
// An order with a live session gets that session, except an Express request for an order whose live
// session is a regular payment: that is a conflict, since the regular payment asks for no address.
func (h *Hooks) checkout(ctx context.Context, adapterID, merchant string, ev *adapters.Event) (*Result, error) {
	express := ev.Action == adapters.ActionExpressCheckout
	status, create := "checkout", h.checkouts.Create
	if express {
		status, create = "express", h.checkouts.CreateExpress
	}
	if ev.Checkout == nil {
		return nil, &adapters.InputError{Detail: status + " event without a checkout"}
	}
	if err := h.schemas.ValidateCheckout(ev.Checkout); err != nil {
		return nil, err
	}
	// One live session per order: a repeated delivery, or the webhook after the synchronous hook, gets
	// the session already created. An order whose payment failed may be paid again.
	after := "first"
	prev, err := h.checkouts.Lookup(ctx, merchant, ev.Checkout.Reference)
	switch {
	case err == nil && !retryable(prev.State) && express && !prev.Express:
		// A regular payment would skip the address and shipping the Express order needs.
		return nil, &kindConflictError{Reference: ev.Checkout.Reference, Session: prev.ID, State: prev.State}
	case err == nil && !retryable(prev.State):
		return sessionResult(status, prev), nil
	case err == nil:
		after = prev.ID
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("hooks: look up order %s: %w", ev.Checkout.Reference, err)
	}
	key := adapterID + ":order:" + ev.Checkout.Reference + ":after:" + after
	if ev.Key != "" {
		key = adapterID + ":key:" + ev.Key + ":after:" + after
	}
	sess, _, err := create(ctx, *ev.Checkout, key)
	if err != nil {
		var iderr *checkout.IdempotencyError
		if errors.As(err, &iderr) && !iderr.InProgress {
			// The same order arrived with other contents (edited meanwhile): keep the first session.
			if again, lerr := h.checkouts.Lookup(ctx, merchant, ev.Checkout.Reference); lerr == nil && (!express || again.Express) {
				return sessionResult(status, again), nil
			}
		}
		return nil, err
	}
	return sessionResult(status, sess), nil
}

func (h *Hooks) modify(ctx context.Context, adapterID, merchant string, ev *adapters.Event) (*Result, error) {
	sess, err := h.checkouts.Lookup(ctx, merchant, ev.Reference)
	if errors.Is(err, store.ErrNotFound) {
		return &Result{Status: "ignored", Reason: "no kasse payment for order " + ev.Reference}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hooks: look up order %s: %w", ev.Reference, err)
	}
	amount := ev.Amount
	if ev.Action == adapters.ActionRefund && ev.AmountIsTotal {
		amount = ev.Amount - sess.RefundedAmount
		if amount <= 0 {
			return &Result{Status: "nothing-to-do", Reason: "already refunded " + strconv.FormatInt(sess.RefundedAmount, 10),
				SessionID: sess.ID, State: sess.State}, nil
		}
	}
	key := ev.Key
	if key == "" {
		key = string(ev.Action)
	}
	key = adapterID + ":" + key
	// One store read for the whole capture: the operation starts from the session just looked up, and
	// its conditional write still refuses to overwrite a session that changed since.
	out, err := h.checkouts.ModifyFrom(ctx, sess, string(ev.Action), amount, ev.Text, key)
	if errors.Is(err, payment.ErrTransition) {
		return &Result{Status: "nothing-to-do", Reason: err.Error(), SessionID: sess.ID, State: sess.State}, nil
	}
	if err != nil {
		return nil, err
	}
	return sessionResult(string(ev.Action), out), nil
}

func sessionResult(status string, s *payment.Session) *Result {
	return &Result{Status: status, SessionID: s.ID, State: s.State, RedirectURL: s.RedirectURL}
}

// RunInboxOnce processes up to limit stored deliveries that are due, in this goroutine, and returns how
// many it tried (for tests and for hosts that drive the inbox themselves).
func (h *Hooks) RunInboxOnce(ctx context.Context, limit int) (int, error) {
	return h.inbox.RunOnce(ctx, limit)
}
