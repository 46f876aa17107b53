// Package notify owns kasse's status updates to webshop platforms: it decides which session changes a
// platform must hear about (paid, captured, failed, cancelled, refunded), queues each one in a durable
// host/outbound queue, and delivers it by having the merchant's adapter render the HTTP requests and
// sending them. A platform that is down or answers 5xx or 429 is retried with back-off, across restarts
// when the queue is in Redis; one that refuses the request (4xx) or stays down is given up on visibly:
// an error log line, the GivenUp counter, and the OnGiveUp callback that the host uses to record the
// failure in the session's history.
//
// Just before an update is sent it is checked against the order's current session (the one the shop's
// order reference points at, Config.CurrentSession): an outcome where no money moved from a session that
// no longer speaks for the order is withheld, so an abandoned checkout cannot mark an order failed that a
// newer checkout paid (Withhold).
//
// Requests are rendered at delivery time from the merchant's current config, so credentials are never
// stored in the queue and a rotated key applies to updates already queued. When an update needs several
// requests and a later one fails, the retry sends them all again: adapters make them safe to repeat.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/internal/adapterview"
	"github.com/kassehq/kasse/host/outbound"
	"github.com/kassehq/kasse/host/payment"
)

// JobKind is the outbound.Job kind of status updates.
const JobKind = "platform-status"

// Config holds a Notifier's settings and collaborators. Adapters, Merchants and Storage are required.
type Config struct {
	// Adapters is the snapshot of registered adapters (adapters.Registered()).
	Adapters []adapters.Info
	// Merchants finds a merchant's current configuration.
	Merchants Merchants
	// Storage keeps queued updates: outbound.NewRedisStorage(client, "kasse:outbound:") with Redis,
	// outbound.NewMemoryStorage() without (updates are then lost on restart).
	Storage outbound.Storage
	// Client sends the requests. Default: 15 s timeout, redirects not followed.
	Client *http.Client
	// MaxAttempts is how many times an update is tried. Default 12 (about two hours with the defaults).
	MaxAttempts int
	// BaseDelay is the first retry delay, doubled per failure. Default 5s.
	BaseDelay time.Duration
	// MaxDelay caps the retry delay. Default 30m.
	MaxDelay time.Duration
	// Workers is how many updates are sent at once. Default 2.
	Workers int
	// OnDelivered is called once per update the platform accepted. Optional.
	OnDelivered func(ctx context.Context, merchant string, u adapters.StatusUpdate)
	// OnGiveUp is called once per update given up on, with the last error. Optional.
	OnGiveUp func(ctx context.Context, merchant string, u adapters.StatusUpdate, err error)
	// CurrentSession returns the session the shop's order reference (merchant, reference) points at now:
	// the order's newest checkout (store.GetByReference), or nil, nil if none does. Optional: without it
	// every update is sent. With it, Deliver withholds an update about an outcome where no money moved
	// from a session that no longer speaks for the order (Withhold), and reports a payment by such a
	// session (OnStalePayment).
	CurrentSession func(ctx context.Context, merchant, reference string) (*payment.Session, error)
	// OnWithheld is called once per update withheld, with why. Optional.
	OnWithheld func(ctx context.Context, merchant string, u adapters.StatusUpdate, why string)
	// OnStalePayment is called before a paid update is sent from a session that is not the order's
	// current one (current), so that both sessions can record it before the shop hears of it; an error
	// makes the delivery be tried again. Optional.
	OnStalePayment func(ctx context.Context, merchant string, u adapters.StatusUpdate, current *payment.Session) error
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives one line per update sent, retried or given up. Default slog.Default().
	Logger *slog.Logger
}

// Notifier queues and sends status updates. It is safe for concurrent use.
type Notifier struct {
	adapters    map[string]adapters.Instance
	merchants   Merchants
	client      *http.Client
	onGiveUp    func(ctx context.Context, merchant string, u adapters.StatusUpdate, err error)
	onDelivered func(ctx context.Context, merchant string, u adapters.StatusUpdate)
	current     func(ctx context.Context, merchant, reference string) (*payment.Session, error)
	onWithheld  func(ctx context.Context, merchant string, u adapters.StatusUpdate, why string)
	onStalePaid func(ctx context.Context, merchant string, u adapters.StatusUpdate, current *payment.Session) error
	log         *slog.Logger
	q           *outbound.Queue
}

// New returns a Notifier, or an error naming the first missing collaborator.
func New(cfg Config) (*Notifier, error) {
	switch {
	case len(cfg.Adapters) == 0:
		return nil, errors.New("notify: config: no adapters")
	case cfg.Merchants == nil:
		return nil, errors.New("notify: config: Merchants is required")
	case cfg.Storage == nil:
		return nil, errors.New("notify: config: Storage is required")
	}
	n := &Notifier{adapters: adapters.Instances(cfg.Adapters), merchants: cfg.Merchants, client: cfg.Client,
		onGiveUp: cfg.OnGiveUp, onDelivered: cfg.OnDelivered, current: cfg.CurrentSession,
		onWithheld: cfg.OnWithheld, onStalePaid: cfg.OnStalePayment, log: cfg.Logger}
	if n.client == nil {
		n.client = &http.Client{Timeout: 15 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if n.log == nil {
		n.log = slog.Default()
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 12
	}
	if cfg.BaseDelay <= 0 {
		cfg.BaseDelay = 5 * time.Second
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = 30 * time.Minute
	}
	var err error
	n.q, err = outbound.New(outbound.Config{Storage: cfg.Storage, Deliver: n.Deliver, OnGiveUp: n.gaveUp,
		MaxAttempts: cfg.MaxAttempts, BaseDelay: cfg.BaseDelay, MaxDelay: cfg.MaxDelay, Workers: cfg.Workers,
		Now: cfg.Now, Logger: n.log})
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	return n, nil
}

// Run sends queued updates until ctx is done.
func (n *Notifier) Run(ctx context.Context) { n.q.Run(ctx) }

// RunOnce sends up to limit due updates in this goroutine and returns how many it tried (for tests and
// for hosts that drive the queue themselves).
func (n *Notifier) RunOnce(ctx context.Context, limit int) (int, error) {
	return n.q.RunOnce(ctx, limit)
}

// Stats reports the queue's counters: updates enqueued, delivered, retried, given up and pending.
func (n *Notifier) Stats(ctx context.Context) (outbound.Stats, error) { return n.q.Stats(ctx) }

// Updates returns the status updates the change of a session from before to after means for its
// platform, in order. before may be nil for a new session.
func Updates(before, after *payment.Session) []adapters.StatusUpdate {
	var b payment.Session
	if before != nil {
		b = *before
	} else {
		b.State = payment.StatePending
	}
	mk := func(st adapters.Status, amount int64) adapters.StatusUpdate {
		return adapters.StatusUpdate{Status: st, Reference: after.Reference, Session: after.ID,
			ProviderReference: after.ProviderReference, Amount: amount, Currency: after.Currency}
	}
	var out []adapters.StatusUpdate
	wasReserved := b.State != payment.StatePending && !b.State.Final() || b.AuthorizedAmount > 0
	isReserved := after.AuthorizedAmount > 0 || after.State == payment.StateAuthorized ||
		after.State == payment.StateCaptured || after.State == payment.StateRefunded
	if !wasReserved && isReserved {
		out = append(out, mk(adapters.StatusPaid, max(after.AuthorizedAmount, after.Amount)))
	}
	if d := after.CapturedAmount - b.CapturedAmount; d > 0 {
		out = append(out, mk(adapters.StatusCaptured, d))
	}
	if d := after.RefundedAmount - b.RefundedAmount; d > 0 {
		out = append(out, mk(adapters.StatusRefunded, d))
	}
	if after.State == payment.StateCancelled && b.State != payment.StateCancelled {
		out = append(out, mk(adapters.StatusCancelled, after.CancelledAmount))
	}
	switch after.State {
	case payment.StateRejected, payment.StateExpired, payment.StateFailed:
		if b.State == payment.StatePending {
			u := mk(adapters.StatusFailed, after.Amount)
			u.Reason = after.Reason
			if u.Reason == "" {
				u.Reason = string(after.State)
			}
			out = append(out, u)
		}
	}
	return out
}

// payload is a queued update.
type payload struct {
	Merchant string                `json:"merchant"`
	Update   adapters.StatusUpdate `json:"update"`
}

// SessionChanged queues the updates the change from before to after means, if the session's merchant
// has a platform. The host calls it after every stored change of a session (before nil for a new one).
// It returns the first enqueue error. Updates are identified by session, status and cumulative amount:
// calling it twice for the same change queues the update once while the first is still queued.
func (n *Notifier) SessionChanged(ctx context.Context, before, after *payment.Session) error {
	if after == nil {
		return nil
	}
	m, ok := n.merchants.Merchant(after.Merchant)
	if !ok || m.Platform == nil {
		return nil
	}
	for _, u := range Updates(before, after) {
		cumulative := u.Amount
		switch u.Status {
		case adapters.StatusCaptured:
			cumulative = after.CapturedAmount
		case adapters.StatusRefunded:
			cumulative = after.RefundedAmount
		}
		if err := n.Notify(ctx, after.Merchant, u, strconv.FormatInt(cumulative, 10)); err != nil {
			return err
		}
	}
	return nil
}

// StateChanged is SessionChanged for a host that knows only the state a session had before the stored
// change (checkout.Config.OnStateChange). It rebuilds the session as it was from the state and the
// newest history event, which records the amount the change moved. Amount changes that keep the state
// (a second partial capture, a partial refund) do not reach it; SessionChanged sees those too.
func (n *Notifier) StateChanged(ctx context.Context, from payment.State, sess *payment.Session) error {
	if sess == nil {
		return nil
	}
	return n.SessionChanged(ctx, Before(from, sess), sess)
}

// Before rebuilds the session as it was in state from, just before the change that led to sess.
func Before(from payment.State, sess *payment.Session) *payment.Session {
	b := *sess
	b.State = from
	var moved int64
	if h := sess.History; len(h) > 0 && h[len(h)-1].From == from && h[len(h)-1].To == sess.State {
		moved = h[len(h)-1].Amount
	}
	switch from {
	case payment.StatePending:
		b.AuthorizedAmount, b.CapturedAmount, b.RefundedAmount, b.CancelledAmount = 0, 0, 0, 0
	case payment.StateAuthorized:
		b.CapturedAmount, b.RefundedAmount, b.CancelledAmount = 0, 0, 0
	case payment.StateCaptured:
		if sess.State == payment.StateRefunded {
			b.RefundedAmount = max(0, sess.RefundedAmount-moved)
		}
	}
	return &b
}

// Relay queues the session's notices (written to its outbox with the changes that caused them) for
// delivery: checkout.Config.Relay. Each notice becomes one update with the notice's delivery id,
// sequence number and absolute totals, queued under the delivery id, so relaying a notice again while it
// is queued changes nothing, and a receiver drops a repeated delivery by its id.
func (n *Notifier) Relay(ctx context.Context, sess *payment.Session, notices []payment.Notice) error {
	m, ok := n.merchants.Merchant(sess.Merchant)
	if !ok || m.Platform == nil {
		return nil
	}
	for _, nt := range notices {
		totals := nt.Totals
		u := adapters.StatusUpdate{Status: adapters.Status(nt.Status), Reference: sess.Reference,
			Session: sess.ID, ProviderReference: sess.ProviderReference, Amount: nt.Amount,
			Currency: sess.Currency, Reason: nt.Reason, DeliveryID: nt.DeliveryID, Sequence: nt.Seq,
			State: nt.State, Totals: &totals, Settlement: nt.Settlement}
		b, err := json.Marshal(payload{Merchant: sess.Merchant, Update: u})
		if err != nil {
			return fmt.Errorf("notify: encode update: %w", err)
		}
		job := outbound.Job{ID: "notice:" + nt.DeliveryID, Kind: JobKind, Merchant: sess.Merchant,
			Session: sess.ID, Payload: b}
		if err := n.q.Enqueue(ctx, job); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
	}
	return nil
}

// Notify queues one update for the merchant's platform. discriminator tells apart updates of the same
// session and status (the cumulative amount, say); the same (session, status, discriminator) is queued
// once.
func (n *Notifier) Notify(ctx context.Context, merchant string, u adapters.StatusUpdate, discriminator string) error {
	b, err := json.Marshal(payload{Merchant: merchant, Update: u})
	if err != nil {
		return fmt.Errorf("notify: encode update: %w", err)
	}
	id := "status:" + merchant + ":" + u.Session + ":" + string(u.Status) + ":" + discriminator
	if err := n.q.Enqueue(ctx, outbound.Job{ID: id, Kind: JobKind, Merchant: merchant, Session: u.Session, Payload: b}); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

func (n *Notifier) gaveUp(ctx context.Context, job outbound.Job, err error) {
	if n.onGiveUp == nil {
		return
	}
	var p payload
	if json.Unmarshal(job.Payload, &p) != nil {
		return
	}
	n.onGiveUp(ctx, p.Merchant, p.Update, err)
}

// Deliver sends one queued update: the queue's Deliver function.
func (n *Notifier) Deliver(ctx context.Context, job outbound.Job) error {
	var p payload
	if err := json.Unmarshal(job.Payload, &p); err != nil {
		return outbound.Permanent(fmt.Errorf("notify: decode update: %w", err))
	}
	m, ok := n.merchants.Merchant(p.Merchant)
	if !ok || m.Platform == nil {
		return outbound.Permanent(fmt.Errorf("notify: merchant %s has no platform", p.Merchant))
	}
	inst, ok := n.adapters[m.Platform.Kind]
	if !ok {
		return outbound.Permanent(fmt.Errorf("notify: no adapter %s", m.Platform.Kind))
	}
	if send, err := n.speaksForOrder(ctx, p.Merchant, p.Update); err != nil || !send {
		return err
	}
	reqs, err := inst.Adapter.Render(adapterview.Merchant(m), p.Update)
	if err != nil {
		return outbound.Permanent(fmt.Errorf("notify: render %s update: %w", p.Update.Status, err))
	}
	for i, r := range reqs {
		if p.Update.DeliveryID != "" {
			r.Header = r.Header.Clone()
			if r.Header == nil {
				r.Header = http.Header{}
			}
			r.Header.Set("Kasse-Delivery-Id", p.Update.DeliveryID)
			r.Header.Set("Kasse-Sequence", strconv.FormatInt(p.Update.Sequence, 10))
		}
		if err := n.send(ctx, r); err != nil {
			return fmt.Errorf("notify: %s %s for order %s (request %d of %d): %w",
				m.Platform.Kind, p.Update.Status, p.Update.Reference, i+1, len(reqs), err)
		}
	}
	if n.onDelivered != nil {
		n.onDelivered(ctx, p.Merchant, p.Update)
	}
	return nil
}

// speaksForOrder reports whether u may change the order on the platform now. It is asked at delivery,
// not when the update is queued: an update waits in the queue (a platform that is down, back-off of up
// to hours), and the order may get a newer checkout in the meantime. A withheld update is logged and
// handed to OnWithheld, and counts as done. A paid update from a session that is not the order's current
// one is sent (money moved), after OnStalePayment has recorded it.
func (n *Notifier) speaksForOrder(ctx context.Context, merchant string, u adapters.StatusUpdate) (bool, error) {
	if n.current == nil || u.Reference == "" || u.Session == "" || !(noMoney(u) || u.Status == adapters.StatusPaid) {
		return true, nil
	}
	cur, err := n.current(ctx, merchant, u.Reference)
	if err != nil {
		return false, fmt.Errorf("notify: %s update %s: find order %s's current session: %w", u.Status, u.DeliveryID,
			u.Reference, err)
	}
	if why := Withhold(u, cur); why != "" {
		n.log.Warn("platform update withheld", "merchant", merchant, "reference", u.Reference,
			"session", u.Session, "status", string(u.Status), "deliveryId", u.DeliveryID, "why", why)
		if n.onWithheld != nil {
			n.onWithheld(ctx, merchant, u, why)
		}
		return false, nil
	}
	if u.Status == adapters.StatusPaid && cur != nil && cur.ID != u.Session {
		n.log.Warn("payment by a session that is not the order's current one", "merchant", merchant,
			"reference", u.Reference, "session", u.Session, "current", cur.ID, "currentState", string(cur.State))
		if n.onStalePaid != nil {
			if err := n.onStalePaid(ctx, merchant, u, cur); err != nil {
				return false, fmt.Errorf("notify: paid update %s: record the payment outside the order's current session: %w",
					u.DeliveryID, err)
			}
		}
	}
	return true, nil
}

// noMoney reports whether u is an outcome in which no money moved: a failed payment, or a cancel with
// nothing captured. A cancel without totals (an update queued by Notify) is not known to be one.
func noMoney(u adapters.StatusUpdate) bool {
	switch u.Status {
	case adapters.StatusFailed:
		return true
	case adapters.StatusCancelled:
		return u.Totals != nil && u.Totals.Captured == 0
	}
	return false
}

// Withhold says why the update u must not change its order on the platform, given the session the
// order's reference points at now (cur, nil if none), or "" if it may. Only outcomes where no money
// moved (failed; cancelled with nothing captured) are ever withheld: from a session that is no longer
// the order's current one, since the order has a newer checkout that speaks for it (which may be paid:
// a failed older checkout would mark a paid order failed); and from the current session when another
// session of the order took money (payment.CauseOrderPaidElsewhere in its history), since the order is
// paid. Money (paid, captured, refunded, settled) always reaches the platform.
func Withhold(u adapters.StatusUpdate, cur *payment.Session) string {
	if cur == nil || !noMoney(u) {
		return ""
	}
	if cur.ID != u.Session {
		return fmt.Sprintf("session %s (%s) is the order's current checkout", cur.ID, cur.State)
	}
	for _, e := range cur.History {
		if e.Cause == payment.CauseOrderPaidElsewhere {
			return e.Detail
		}
	}
	return ""
}

// send sends one request. Network errors, 408, 425, 429 and 5xx are retried; other answers outside 2xx
// are permanent. The error never shows the request's headers (they carry credentials).
func (n *Notifier) send(ctx context.Context, r adapters.Request) error {
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return outbound.Permanent(fmt.Errorf("build request: %w", err))
	}
	req.Header = r.Header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("User-Agent", "kasse")
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: platform unreachable: %w", r.Method, req.URL.Redacted(), errors.Unwrap(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		if r.Accept != nil {
			if err := r.Accept(s, body); err != nil {
				if errors.Is(err, adapters.ErrRetry) {
					return err
				}
				return outbound.Permanent(err)
			}
		}
		return nil
	case s == http.StatusRequestTimeout || s == http.StatusTooEarly || s == http.StatusTooManyRequests || s >= 500:
		return fmt.Errorf("%s %s: platform answered %d", r.Method, req.URL.Redacted(), s)
	default:
		return outbound.Permanent(fmt.Errorf("%s %s: platform refused with %d: %s", r.Method, req.URL.Redacted(), s, snippet(body)))
	}
}

func snippet(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return string(bytes.ToValidUTF8(b, []byte("?")))
}

// Merchants finds a merchant's current configuration; *config.Config satisfies it. The notifier hands
// an adapter only adapterview.Merchant of it.
type Merchants interface {
	Merchant(id string) (config.Merchant, bool)
}
