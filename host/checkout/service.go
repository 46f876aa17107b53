// Package checkout owns the checkout service: it turns a canonical checkout into a payment session, asks
// the merchant's payment plugin to build and read every provider request, sends them through the provider
// client, and moves sessions through the one state machine in package payment. It is the only package that
// changes sessions; the HTTP API calls it, and it calls the store, the plugins and the provider client.
package checkout

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/fence"
	"github.com/kassehq/kasse/host/internal/tracing"
	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/provider"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/schemas"
)

// Plugin is a loaded payment plugin: *plugins.Plugin satisfies it.
type Plugin interface {
	Name() string
	Version() string
	// ABIVersion is the plugin ABI version of the module (abi.VersionJSON or abi.VersionBinary): the
	// service encodes the input of Call in it.
	ABIVersion() int
	// Call runs one call; input is an abi.Input in either encoding (a plugin converts one that is not in
	// its own, off the hot path), the output an abi.Output as JSON.
	Call(ctx context.Context, input []byte) ([]byte, error)
}

// Plugins finds the active version of a payment plugin by name.
type Plugins interface {
	Plugin(name string) (Plugin, bool)
}

// VersionedPlugins is optionally implemented by a Plugins that holds several versions of a plugin
// (host/upgrade.Manager). The service then asks it for the version a new checkout uses (a canary share of
// new checkouts may go to a new version) and for the version a session's later operations use: the one that
// created the session while it is loaded, else the active one.
type VersionedPlugins interface {
	Plugins
	PluginForNewCheckout(name, sessionID string) (Plugin, bool)
	PluginVersion(name, version string) (Plugin, bool)
}

// pluginForNew returns the plugin version a new checkout with this session id uses.
func (s *Service) pluginForNew(name, sessionID string) (Plugin, bool) {
	if vp, ok := s.cfg.Plugins.(VersionedPlugins); ok {
		return vp.PluginForNewCheckout(name, sessionID)
	}
	return s.cfg.Plugins.Plugin(name)
}

// pluginFor returns the plugin version that serves an existing session.
func (s *Service) pluginFor(sess *payment.Session) (Plugin, bool) {
	if vp, ok := s.cfg.Plugins.(VersionedPlugins); ok {
		return vp.PluginVersion(sess.Plugin, sess.PluginVersion)
	}
	return s.cfg.Plugins.Plugin(sess.Plugin)
}

// Merchants finds a merchant's current configuration.
type Merchants interface {
	Merchant(id string) (config.Merchant, bool)
}

// Provider sends plugin-built requests to the payment provider; *provider.Client satisfies it.
type Provider interface {
	Do(ctx context.Context, call provider.Call) (*abi.Response, error)
}

// Config holds the settings and collaborators of a Service. Every field without a default is required.
type Config struct {
	Store     store.Store
	Plugins   Plugins
	Merchants Merchants
	Provider  Provider
	Schemas   *schemas.Set
	// PublicURL is the base URL browsers and the provider reach kasse at, without a trailing slash.
	PublicURL string
	// ExpressSegment, if set, gives the secret path segment appended to a merchant's ExpressPrefix.
	ExpressSegment func(merchant string) string
	// SessionTTL is how long a session is kept in the store.
	SessionTTL time.Duration
	// PendingTimeout is how long a session may stay pending before it is expired.
	PendingTimeout time.Duration
	// FirstPoll is how long after initiation the reconciler first asks the provider for the payment's state.
	FirstPoll time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives one line per state change and per failure; default slog.Default().
	Logger *slog.Logger
	// OnChange, if set, is called after every stored change of a session's state or amounts, with the session
	// before and after (for observers such as metrics; before is nil for a session just created). It must not
	// block for long. Shop platforms hear about changes through Relay instead, which cannot lose one.
	OnChange func(ctx context.Context, before, after *payment.Session)
	// OnPluginCall, if set, is told of every plugin call: plugin, version, operation, how long it took and
	// whether it failed (metrics). It must not block.
	OnPluginCall func(plugin, version string, op abi.Op, d time.Duration, err error)
	// Relay, if set, hands notices from a session's outbox to the durable delivery queue. Notices are
	// written to the outbox, in the same store write as the change that causes them, for sessions of
	// merchants with a shop platform; Relay must be idempotent per Notice.DeliveryID (it may see a
	// notice again after a crash).
	Relay func(ctx context.Context, sess *payment.Session, notices []payment.Notice) error
	// RetryInDoubt is how long after an operation went into doubt the reconciler sends it again with
	// the same request id. Default 20s (longer than one provider call, so a live request is not raced).
	RetryInDoubt time.Duration
	// RelayRetry is how long after a change the reconciler relays notices that were not relayed at once.
	// Default 10s.
	RelayRetry time.Duration
	// VerifyAfter is how long after a money operation the reconciler checks that kasse's amounts equal
	// the provider's. Default 1m.
	VerifyAfter time.Duration
	// InitiateGrace is how old an initiate in doubt must be before a status check that finds no payment
	// settles it as never started. Default 45s (three times the provider client's timeout).
	InitiateGrace time.Duration
	// WatchFor is how long after a session's money last moved kasse keeps checking an authorized or
	// captured session against the provider, at growing intervals from VerifyAfter: money can move
	// without kasse (a capture or refund in the merchant's Vipps portal), and a store failover can
	// take back a write (see store.RedisOptions.WaitReplicas). Default 1h.
	WatchFor time.Duration
	// PendingClaimTTL is how long a create's idempotency key stays claimed before its session exists,
	// where the store makes the claim as a write of its own (store.Claim.Pending): a retry after a
	// create that died in between runs again after it. Default store.DefaultPendingClaimTTL.
	PendingClaimTTL time.Duration
}

// Service is the checkout service. It is safe for concurrent use, and several instances (in several
// processes) may share one Redis store.
type Service struct {
	cfg      Config
	now      func() time.Time
	log      *slog.Logger
	diverged atomic.Int64
}

// New returns a Service, or an error naming the first missing collaborator.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("checkout: config: Store is required")
	case cfg.Plugins == nil:
		return nil, errors.New("checkout: config: Plugins is required")
	case cfg.Merchants == nil:
		return nil, errors.New("checkout: config: Merchants is required")
	case cfg.Provider == nil:
		return nil, errors.New("checkout: config: Provider is required")
	case cfg.Schemas == nil:
		return nil, errors.New("checkout: config: Schemas is required")
	case cfg.PublicURL == "":
		return nil, errors.New("checkout: config: PublicURL is required")
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 400 * 24 * time.Hour
	}
	if cfg.PendingTimeout <= 0 {
		cfg.PendingTimeout = 10 * time.Minute
	}
	if cfg.FirstPoll <= 0 {
		cfg.FirstPoll = 5 * time.Second
	}
	if cfg.RetryInDoubt <= 0 {
		cfg.RetryInDoubt = 20 * time.Second
	}
	if cfg.RelayRetry <= 0 {
		cfg.RelayRetry = 10 * time.Second
	}
	if cfg.VerifyAfter <= 0 {
		cfg.VerifyAfter = time.Minute
	}
	if cfg.InitiateGrace <= 0 {
		cfg.InitiateGrace = 45 * time.Second
	}
	if cfg.WatchFor <= 0 {
		cfg.WatchFor = time.Hour
	}
	if cfg.PendingClaimTTL <= 0 {
		cfg.PendingClaimTTL = store.DefaultPendingClaimTTL
	}
	s := &Service{cfg: cfg, now: cfg.Now, log: cfg.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s, nil
}

// CallbackPrefix is the callbackPrefix kasse gives the provider for a merchant.
func (s *Service) CallbackPrefix(merchant string) string {
	return s.cfg.PublicURL + "/v1/vipps/" + merchant + "/callback"
}

// FallBack is the URL the customer's browser returns to after paying.
func (s *Service) FallBack(sessionID string) string {
	return s.cfg.PublicURL + "/v1/checkouts/" + sessionID + "/return"
}

// Create starts the payment for a checkout: it asks the merchant's plugin for the initiate request, stores
// a pending session, sends the request and records the redirect URL. With a non-empty idempotencyKey a
// repeated call with the same body returns the first call's session and replayed=true.
func (s *Service) Create(ctx context.Context, co payment.Checkout, idempotencyKey string) (sess *payment.Session, replayed bool, err error) {
	ctx, span := tracing.Start(ctx, "checkout.Create")
	defer func() { tracing.End(span, err) }()
	return s.create(ctx, co, idempotencyKey, false)
}

// create is Create and, with express set, CreateExpress.
func (s *Service) create(ctx context.Context, co payment.Checkout, idempotencyKey string, express bool) (sess *payment.Session, replayed bool, err error) {
	m, ok := s.cfg.Merchants.Merchant(co.Merchant)
	if !ok {
		return nil, false, &UnknownMerchantError{Merchant: co.Merchant}
	}
	if express && (!m.ExpressCheckout || m.Shipping == nil) {
		return nil, false, &ExpressDisabledError{Merchant: co.Merchant}
	}
	if !returnURLAllowed(m, co.ReturnURL) {
		return nil, false, &InputError{Pointer: "/returnUrl", Detail: fmt.Sprintf(
			"must start with one of merchant %q's returnUrlPrefixes", co.Merchant)}
	}
	if express {
		if err := checkCart(co); err != nil {
			return nil, false, err
		}
	}
	id := newID()
	plugin, ok := s.pluginForNew(m.Plugin, id)
	if !ok {
		return nil, false, &UnavailableError{What: "payment plugin " + m.Plugin}
	}
	kind := "checkout"
	if express {
		kind = "express checkout"
	}

	// The idempotency key is claimed in the same write that creates the session where the store can (see
	// store.IndexingCreator): a key another request holds is answered from that request's session.
	var claim *store.Claim
	if idempotencyKey != "" {
		scope := "checkout:" + co.Merchant
		if express {
			scope = "express:" + co.Merchant
		}
		fingerprint, err := fingerprintOf(co)
		if err != nil {
			return nil, false, err
		}
		claim = &store.Claim{Scope: scope, Key: idempotencyKey, Value: id + "|" + fingerprint, TTL: 24 * time.Hour,
			Pending: s.cfg.PendingClaimTTL}
	}

	now := s.now().UTC()
	requestID := newRequestID()
	draft := &payment.Session{
		ID: id, Merchant: co.Merchant, Reference: co.Reference, State: payment.StatePending,
		Amount: co.Amount, Currency: co.Currency, Description: co.Description, ReturnURL: co.ReturnURL,
		Customer: co.Customer, Lines: co.Lines, UserFlow: co.UserFlow, Express: express,
		Plugin: plugin.Name(), PluginVersion: plugin.Version(),
		ProviderReference: id, CallbackToken: newToken(),
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(s.cfg.PendingTimeout),
		History: []payment.Event{{At: now, To: payment.StatePending, Cause: kind + " created", Amount: co.Amount}},
		// The initiate is recorded before it is sent, and the session is on the poll schedule from its
		// first write: whatever happens after, the reconciler finds it and settles it.
		Operations: []payment.ProviderOp{{ID: requestID, Kind: payment.OpKindInitiate, Amount: co.Amount,
			Status: payment.OpInDoubt, Attempts: 1, At: now, Key: keyDigest(idempotencyKey)}},
		NextCheckAt: now.Add(s.cfg.FirstPoll),
	}

	// Build first: a plugin that fails here leaves nothing behind.
	in := s.input(abi.OpBuildInitiate, m, draft, nil)
	if express {
		if in, err = s.expressInput(abi.OpBuildInitiate, m, draft); err != nil {
			return nil, false, err
		}
	}
	req, err := s.buildFrom(ctx, plugin, in)
	if err != nil {
		return nil, false, err
	}
	// The claim, the session and the index from the shop's order reference to it, in one write where the
	// store can.
	var indexErr *store.IndexError
	existing, err := store.CreateIndexed(ctx, s.cfg.Store, draft, s.cfg.SessionTTL, claim)
	switch {
	case errors.As(err, &indexErr):
		// The session exists: go on; only lookups by the shop's reference miss it.
		s.log.Error("checkout: index shop reference", "session", id, "reference", co.Reference, "err", err)
	case err != nil:
		return nil, false, fmt.Errorf("checkout: create session[%s]: %w", id, err)
	case existing != "":
		return s.replay(ctx, claim, existing)
	}
	sess = draft
	s.notify(ctx, nil, draft) // before is nil: the session is new
	// From here on the payment may come to exist at the provider: finish sending and recording it even if
	// the caller goes away (a client that disconnects, an inbox worker stopped by shutdown). Cancelling
	// would mark the session failed, and tell the shop's platform so, while Vipps may hold the payment.
	// The provider client's timeout bounds it.
	ctx = context.WithoutCancel(ctx)

	resp, sendErr := s.send(ctx, plugin, m, req, requestID, draft)
	var pay *abi.Payment
	if sendErr == nil {
		pay, sendErr = s.read(ctx, plugin, abi.OpReadInitiate, m, draft, nil, resp)
	}
	if sendErr == nil { // fence: the customer goes only where the merchant's provider lives
		if err := fence.Redirect(abi.OpReadInitiate, pay.RedirectURL, fence.AllowFor(m.Vipps.BaseURL, m.Vipps.RedirectHosts, m.Vipps.RedirectSchemes)); err != nil {
			fence.Report(plugin, err)
			sendErr = &PluginError{Plugin: plugin.Name(), Version: plugin.Version(), Op: abi.OpReadInitiate, Cause: err}
		}
	}
	// draft is what Create stored: the settling update starts from it (store.SnapshotUpdater).
	settled, err := s.settle(ctx, m, id, draft, requestID, pay, sendErr)
	if settled != nil {
		sess = settled
	}
	if err != nil {
		s.log.Warn(kind+" initiate failed", "session", id, "merchant", co.Merchant, "err", err)
		return sess, false, err
	}
	s.log.Info(kind+" created", "session", id, "merchant", co.Merchant, "amount", co.Amount,
		"plugin", plugin.Name()+"@"+plugin.Version())
	return sess, false, nil
}

// replay answers a create whose idempotency key another request claimed first (existing is the value it
// claimed the key with: its session id and its request's fingerprint) with that request's session.
func (s *Service) replay(ctx context.Context, claim *store.Claim, existing string) (*payment.Session, bool, error) {
	prevID, prevFingerprint, _ := strings.Cut(existing, "|")
	_, fingerprint, _ := strings.Cut(claim.Value, "|")
	if prevFingerprint != fingerprint {
		return nil, false, &IdempotencyError{Detail: "Idempotency-Key was already used with a different request body"}
	}
	prev, err := s.cfg.Store.Get(ctx, prevID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, &IdempotencyError{InProgress: true,
			Detail: "a request with this Idempotency-Key is still being processed; retry shortly"}
	}
	if err != nil {
		return nil, false, fmt.Errorf("checkout: idempotent replay: %w", err)
	}
	if op := prev.InDoubt(); op != nil && op.Kind == payment.OpKindInitiate {
		if prev, err = s.resolve(ctx, prev, op.ID); err != nil {
			return prev, false, err
		}
	}
	return prev, true, nil
}

// Get returns a session.
func (s *Service) Get(ctx context.Context, id string) (*payment.Session, error) {
	ctx, span := tracing.Start(ctx, "checkout.Get")
	defer span.End()
	sess, err := s.cfg.Store.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("checkout: get session[%s]: %w", id, err)
	}
	return sess, nil
}

// Lookup returns the newest session created for the shop's order reference at merchant.
func (s *Service) Lookup(ctx context.Context, merchant, reference string) (*payment.Session, error) {
	sess, err := s.cfg.Store.GetByReference(ctx, merchant, reference)
	if err != nil {
		return nil, fmt.Errorf("checkout: lookup %s/%s: %w", merchant, reference, err)
	}
	return sess, nil
}

func (s *Service) notify(ctx context.Context, before, after *payment.Session) {
	if s.cfg.OnChange != nil {
		s.cfg.OnChange(context.WithoutCancel(ctx), before, after)
	}
}

// Note appends an event to a session's history without changing its state, e.g. that the shop's
// platform could not be told about a payment.
func (s *Service) Note(ctx context.Context, id, cause, detail string) error {
	_, err := s.cfg.Store.Update(ctx, id, func(cur *payment.Session) (bool, error) {
		now := s.now().UTC()
		cur.History = append(cur.History, payment.Event{At: now, From: cur.State, To: cur.State, Cause: cause, Detail: detail})
		cur.UpdatedAt = now
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("checkout: note on session[%s]: %w", id, err)
	}
	return nil
}

// NoteOnce is Note, unless the session's history already has an event with this cause and detail: for
// records made by work that may run again (a status update delivered at least once). It reports
// whether it added the event.
func (s *Service) NoteOnce(ctx context.Context, id, cause, detail string) (bool, error) {
	added := false
	_, err := s.cfg.Store.Update(ctx, id, func(cur *payment.Session) (bool, error) {
		added = false
		for _, e := range cur.History {
			if e.Cause == cause && e.Detail == detail {
				return false, nil
			}
		}
		added = true
		now := s.now().UTC()
		cur.History = append(cur.History, payment.Event{At: now, From: cur.State, To: cur.State, Cause: cause, Detail: detail})
		cur.UpdatedAt = now
		return true, nil
	})
	if err != nil {
		return false, fmt.Errorf("checkout: note on session[%s]: %w", id, err)
	}
	return added, nil
}

// Operation names a merchant-initiated change.
type Operation string

// The merchant operations.
const (
	OpCapture Operation = "capture"
	OpRefund  Operation = "refund"
	OpCancel  Operation = "cancel"
)

// Modify captures, refunds or cancels. amount 0 means "all that is left" for capture and refund; it is
// ignored for cancel. The operation is recorded in the session before it is sent, with the request id
// the provider deduplicates on; if its outcome cannot be known now the error is an *OutcomeUnknownError
// and kasse keeps retrying it with the same id. While an operation is in doubt, a new one is refused
// with an *InDoubtError. With a non-empty idempotencyKey, a retried call finds the operation the first
// call recorded and never starts another.
func (s *Service) Modify(ctx context.Context, id string, op Operation, amount int64, text, idempotencyKey string) (*payment.Session, error) {
	return s.modify(ctx, id, nil, op, amount, text, idempotencyKey)
}

// ModifyFrom is Modify for sess, the session as the caller has just read it from the store (the API
// reads it to check the shop's key): the operation starts from it rather than reading it again, and the
// store's write still checks that it has not changed (store.SnapshotUpdater). sess must not have been
// changed since it was read.
func (s *Service) ModifyFrom(ctx context.Context, sess *payment.Session, op Operation, amount int64, text, idempotencyKey string) (*payment.Session, error) {
	return s.modify(ctx, sess.ID, sess, op, amount, text, idempotencyKey)
}

// modify is Modify starting from snap when it is not nil.
func (s *Service) modify(ctx context.Context, id string, snap *payment.Session, op Operation, amount int64, text, idempotencyKey string) (*payment.Session, error) {
	ctx, span := tracing.Start(ctx, "checkout.Modify")
	defer span.End()
	var check func(cur *payment.Session) (int64, error)
	switch op {
	case OpCapture:
		check = func(cur *payment.Session) (int64, error) { return cur.CheckCapture(amount) }
	case OpRefund:
		check = func(cur *payment.Session) (int64, error) { return cur.CheckRefund(amount) }
	case OpCancel:
		check = func(cur *payment.Session) (int64, error) { return 0, cur.CheckCancel() }
	default:
		return nil, fmt.Errorf("checkout: unknown operation %q", op)
	}
	return s.operate(ctx, id, snap, string(op), amount, text, keyDigest(idempotencyKey), check)
}

// Callback handles a provider callback for the merchant's payment providerRef. authorization is the
// callback's Authorization header; it must equal the session's callback token.
func (s *Service) Callback(ctx context.Context, merchant, providerRef, authorization string, body []byte) (*payment.Session, error) {
	ctx, span := tracing.Start(ctx, "checkout.Callback")
	defer span.End()
	m, ok := s.cfg.Merchants.Merchant(merchant)
	if !ok {
		return nil, &UnknownMerchantError{Merchant: merchant}
	}
	sess, err := s.cfg.Store.GetByProviderReference(ctx, merchant, providerRef)
	if err != nil {
		return nil, fmt.Errorf("checkout: callback for %s/%s: %w", merchant, providerRef, err)
	}
	token := strings.TrimPrefix(authorization, "Bearer ")
	if sess.CallbackToken == "" || subtle.ConstantTimeCompare([]byte(token), []byte(sess.CallbackToken)) != 1 {
		return nil, ErrCallbackUnauthorized
	}
	// An authenticated callback byte for byte the same as one already applied has had its effect: it
	// was checked and read then, and reading it again could only give the same observation.
	digest := payment.MessageDigest("callback", body)
	if sess.HasApplied(digest) {
		return s.repeated(ctx, sess, "callback"), nil
	}
	if err := s.cfg.Schemas.Validate(schemas.VippsEcomCallback, body); err != nil {
		return nil, err
	}
	plugin, ok := s.pluginFor(sess)
	if !ok {
		return nil, &UnavailableError{What: "payment plugin " + sess.Plugin}
	}
	in := s.input(abi.OpReadCallback, m, sess, nil)
	in.Callback = json.RawMessage(body)
	out, err := s.call(ctx, plugin, in)
	if err != nil {
		return nil, err
	}
	if !out.OK {
		return nil, &PluginError{Plugin: plugin.Name(), Op: abi.OpReadCallback, Err: out.Error}
	}
	return s.applyMessage(ctx, sess.ID, sess, out.Payment, "callback", digest)
}

// Refresh is the reconciler's look at a session: it settles an operation in doubt, relays notices not
// yet handed to the delivery queue, asks the provider for the payment's state and folds it in (a
// session still pending after its expiry time is expired), and, once a money operation is over, checks
// that kasse's amounts equal the provider's. It clears NextCheckAt when nothing more is needed.
func (s *Service) Refresh(ctx context.Context, id string) (*payment.Session, error) {
	sess, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if op := sess.InDoubt(); op != nil {
		return s.resolve(ctx, sess, op.ID)
	}
	sess = s.relay(ctx, sess)
	if len(sess.Outbox) > 0 {
		return sess, nil // relay failed; logged, retried at NextCheckAt
	}
	verify := !sess.NextCheckAt.IsZero() && sess.State != payment.StatePending
	if sess.State.Final() && !verify {
		return s.done(ctx, sess)
	}
	m, ok := s.cfg.Merchants.Merchant(sess.Merchant)
	if !ok {
		return nil, &UnknownMerchantError{Merchant: sess.Merchant}
	}
	plugin, ok := s.pluginFor(sess)
	if !ok {
		return nil, &UnavailableError{What: "payment plugin " + sess.Plugin}
	}
	req, err := s.build(ctx, plugin, abi.OpBuildDetails, m, sess, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.send(ctx, plugin, m, req, "", sess)
	if err != nil {
		return nil, err
	}
	pay, err := s.read(ctx, plugin, abi.OpReadDetails, m, sess, nil, resp)
	if err != nil {
		return nil, err
	}
	if verify {
		return s.converge(ctx, m, id, pay, len(sess.Operations))
	}
	sess, err = s.apply(ctx, id, nil, pay, "status check")
	if err != nil {
		return nil, err
	}
	if sess.State == payment.StatePending && !s.now().Before(sess.ExpiresAt) {
		return s.apply(ctx, id, sess, &abi.Payment{State: string(payment.StateExpired), AuthorizedAmount: -1,
			CapturedAmount: -1, RefundedAmount: -1, CancelledAmount: -1,
			Reason: "the customer did not complete the payment in time"}, "expired")
	}
	if sess.State != payment.StatePending {
		return s.done(ctx, sess)
	}
	return sess, nil
}

// done clears the NextCheckAt of a session that needs nothing more from the reconciler.
func (s *Service) done(ctx context.Context, sess *payment.Session) (*payment.Session, error) {
	if sess.NextCheckAt.IsZero() {
		return sess, nil
	}
	return s.cfg.Store.Update(ctx, sess.ID, func(cur *payment.Session) (bool, error) {
		next := s.nextCheck(cur, s.now(), false)
		if next.Equal(cur.NextCheckAt) {
			return false, nil
		}
		cur.NextCheckAt = next
		return true, nil
	})
}

// converge makes the session's amounts equal the provider's after a money operation, recording a
// divergence in the history, the log and the Diverged counter, and ends the check. pay is the provider's
// answer to a question asked when the session held asked operations.
func (s *Service) converge(ctx context.Context, m config.Merchant, id string, pay *abi.Payment, asked int) (*payment.Session, error) {
	known := pay.AuthorizedAmount >= 0 && pay.CapturedAmount >= 0 && pay.RefundedAmount >= 0 && pay.CancelledAmount >= 0
	var before payment.Session
	diverged := false
	sess, err := s.cfg.Store.Update(ctx, id, func(cur *payment.Session) (bool, error) {
		if cur.InDoubt() != nil || len(cur.Operations) != asked {
			// An operation in doubt may not show at the provider yet; one recorded since the question
			// was asked may be missing from its answer (a slow answer to an early question once took a
			// second capture back). Either way the answer proves nothing: the session stays scheduled
			// and the next look asks again.
			return false, nil
		}
		before = *cur
		now := s.now().UTC()
		diverged = false
		changed := false
		if known {
			provider := payment.Amounts{Authorized: pay.AuthorizedAmount, Captured: pay.CapturedAmount,
				Refunded: pay.RefundedAmount, Cancelled: pay.CancelledAmount}
			if diverged = cur.Converge(provider, payment.State(pay.State), now); diverged && s.notices(m) {
				cur.RecordNotices(&before, now)
			}
			changed = diverged
		} else {
			changed = s.record(m, cur, observationOf(pay), "status check", now)
		}
		if next := s.nextCheck(cur, now, false); !next.Equal(cur.NextCheckAt) {
			cur.NextCheckAt = next
			changed = true
		}
		return changed, nil
	})
	if err != nil {
		return nil, fmt.Errorf("checkout: check amounts of session[%s]: %w", id, err)
	}
	if diverged {
		s.diverged.Add(1)
		s.log.Error("checkout: kasse's amounts differed from the provider's; took the provider's",
			"session", id, "kasse", before.Amounts().String(), "provider", sess.Amounts().String())
		s.notify(ctx, &before, sess)
	}
	return s.relay(ctx, sess), nil
}

// Diverged counts the sessions whose amounts were found to differ from the provider's and were made
// equal to them, since the service started.
func (s *Service) Diverged() int64 { return s.diverged.Load() }

// Return settles a session when the customer's browser comes back from the provider: if no callback has
// arrived yet it asks the provider directly. It returns the session; the caller redirects to its ReturnURL.
func (s *Service) Return(ctx context.Context, id string) (*payment.Session, error) {
	ctx, span := tracing.Start(ctx, "checkout.Return")
	defer span.End()
	sess, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if sess.State != payment.StatePending {
		return sess, nil
	}
	refreshed, err := s.Refresh(ctx, id)
	if err != nil {
		// The customer still goes back to the shop; the reconciler keeps trying.
		s.log.Warn("checkout: status check on return failed", "session", id, "err", err)
		return sess, nil
	}
	return refreshed, nil
}

func (s *Service) apply(ctx context.Context, id string, snap *payment.Session, pay *abi.Payment, cause string) (*payment.Session, error) {
	return s.applyMessage(ctx, id, snap, pay, cause, "")
}

// applyMessage is apply for an observation read from a provider message with the given digest
// (payment.MessageDigest; "" for none): the digest is recorded in the session in the same write as the
// observation's effect, even when the effect is nothing, so that the same message again is answered by
// repeated.
func (s *Service) applyMessage(ctx context.Context, id string, snap *payment.Session, pay *abi.Payment, cause, digest string) (*payment.Session, error) {
	obs := observationOf(pay)
	var before payment.Session
	changed := false
	// Starting from the session the caller just read saves a read (see store.SnapshotUpdater); a session
	// changed meanwhile is read again.
	sess, err := store.UpdateFrom(ctx, s.cfg.Store, id, snap, func(cur *payment.Session) (bool, error) {
		before = *cur
		m, _ := s.cfg.Merchants.Merchant(cur.Merchant)
		now := s.now().UTC()
		// Express details (customer, address, shipping) may arrive by poll when the callback is lost.
		details := ApplyExpressDetails(cur, pay)
		// A callback or a status answer for the payment means the provider has it: an initiate whose
		// answer was lost happened. Settling it here frees the session for capture and cancel.
		settled := false
		if op := cur.InDoubt(); op != nil && op.Kind == payment.OpKindInitiate {
			settled = cur.SettleOp(op.ID, payment.OpSucceeded, "the provider reported the payment ("+cause+")", now)
		}
		changed = s.record(m, cur, obs, cause, now)
		marked := cur.MarkApplied(digest)
		if !changed && !details && !settled {
			return marked, nil
		}
		cur.NextCheckAt = s.nextCheck(cur, now, false)
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("checkout: apply %s to session[%s]: %w", cause, id, err)
	}
	s.IndexContact(ctx, sess)
	if changed {
		if sess.State != before.State {
			s.log.Info("checkout state changed", "session", id, "from", before.State, "to", sess.State, "cause", cause)
		}
		s.notify(ctx, &before, sess)
	}
	return s.afterApply(ctx, sess, cause), nil
}

// repeated answers a provider message already applied to sess (its digest is in sess.Applied): the
// message changes nothing, so only what apply does after its write is done again, which retries a
// relay or a late release that failed the first time.
func (s *Service) repeated(ctx context.Context, sess *payment.Session, cause string) *payment.Session {
	return s.afterApply(ctx, sess, cause)
}

// afterApply relays the session's notices and releases a reservation that came after the session
// ended; it returns the session as it is after them.
func (s *Service) afterApply(ctx context.Context, sess *payment.Session, cause string) *payment.Session {
	sess = s.relay(ctx, sess)
	if cause != causeLateRelease {
		if late := s.releaseLateReservation(ctx, sess); late != nil {
			sess = late
		}
	}
	return sess
}

// causeLateRelease is the history cause of releaseLateReservation's change.
const causeLateRelease = "late reservation released"

// releaseLateReservation cancels money that the provider reserved for a session kasse had already ended
// (expired, rejected or failed): the customer approved after the shop was told the payment did not happen,
// so nobody will ever capture it and the reservation would only hold the customer's money. It returns the
// session after the release, or nil when there was nothing to release or the release failed (logged; the
// merchant sees the reserved amount on the session and can cancel it).
func (s *Service) releaseLateReservation(ctx context.Context, sess *payment.Session) *payment.Session {
	switch sess.State {
	case payment.StateExpired, payment.StateRejected, payment.StateFailed:
	default:
		return nil
	}
	if sess.AuthorizedAmount-sess.CapturedAmount-sess.CancelledAmount <= 0 {
		return nil
	}
	fail := func(err error) *payment.Session {
		s.log.Error("checkout: could not release a reservation made after the session ended; cancel it by hand",
			"session", sess.ID, "state", sess.State, "reserved", sess.AuthorizedAmount, "err", err)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The reason goes into the history before the cancel, so that whoever sees the cancelled amount also
	// sees why (two writes: the cancel is a provider operation with its own record).
	if err := s.Note(ctx, sess.ID, causeLateRelease, "a reservation made after the session ended is cancelled at the provider"); err != nil {
		return fail(err)
	}
	released, err := s.operate(ctx, sess.ID, nil, payment.OpKindCancel, 0,
		"Order "+sess.Reference+" was not completed in time", "", func(cur *payment.Session) (int64, error) {
			if cur.AuthorizedAmount-cur.CapturedAmount-cur.CancelledAmount <= 0 {
				return 0, fmt.Errorf("nothing reserved: %w", payment.ErrTransition)
			}
			return 0, nil
		})
	if err != nil {
		_ = s.Note(ctx, sess.ID, "late reservation not released", "the cancel failed: cancel it by hand")
		return fail(err)
	}
	s.log.Warn("checkout: released a reservation made after the session ended", "session", sess.ID,
		"state", sess.State, "amount", released.CancelledAmount)
	return released
}

func (s *Service) input(op abi.Op, m config.Merchant, sess *payment.Session, opIn *abi.Operation) *abi.Input {
	in := &abi.Input{
		Op: op,
		Merchant: abi.Merchant{
			ID: m.ID, MerchantSerialNumber: m.Vipps.MerchantSerialNumber,
			CallbackPrefix: s.CallbackPrefix(m.ID), FallBack: s.FallBack(sess.ID),
			TransactionTextPrefix: m.TransactionTextPrefix,
		},
		Session: abi.Session{
			ID: sess.ID, Reference: sess.Reference, ProviderReference: sess.ProviderReference,
			State: string(sess.State), Amount: sess.Amount, Currency: sess.Currency,
			Description: sess.Description, AuthorizedAmount: sess.AuthorizedAmount,
			CapturedAmount: sess.CapturedAmount, RefundedAmount: sess.RefundedAmount,
			CancelledAmount: sess.CancelledAmount, UserFlow: sess.UserFlow,
		},
		Operation: opIn,
	}
	if sess.Customer != nil {
		in.Session.CustomerPhone = sess.Customer.PhoneNumber
	}
	for _, l := range sess.Lines {
		in.Session.Lines = append(in.Session.Lines, abi.Line{SKU: l.SKU, Name: l.Name, Quantity: l.Quantity, UnitPrice: l.UnitPrice})
	}
	return in
}

// call runs one plugin operation through the plugin boundary (callPlugin).
func (s *Service) call(ctx context.Context, plugin Plugin, in *abi.Input) (*abi.Output, error) {
	ctx, span := tracing.Start(ctx, "plugin.call")
	if span.IsRecording() {
		span.SetAttributes(attribute.String("kasse.plugin", plugin.Name()), attribute.String("kasse.plugin.version", plugin.Version()),
			attribute.String("kasse.plugin.operation", string(in.Op)), attribute.String("kasse.session", in.Session.ID))
	}
	start := time.Now()
	out, err := callPlugin(ctx, plugin, in)
	if s.cfg.OnPluginCall != nil {
		s.cfg.OnPluginCall(plugin.Name(), plugin.Version(), in.Op, time.Since(start), err)
	}
	tracing.End(span, err)
	return out, err
}

// callPlugin is the host's side of the plugin boundary: it encodes in, runs the plugin and checks its output
// against the output schema's rules while decoding it (decodeOutput). Every failure is a *PluginError
// naming the plugin, version and operation.
func callPlugin(ctx context.Context, plugin Plugin, in *abi.Input) (*abi.Output, error) {
	raw, err := encodeInputFor(plugin.ABIVersion(), in)
	if err != nil {
		return nil, fmt.Errorf("checkout: encode plugin input: %w", err)
	}
	outRaw, err := plugin.Call(ctx, raw)
	if err != nil {
		return nil, &PluginError{Plugin: plugin.Name(), Version: plugin.Version(), Op: in.Op, Cause: err}
	}
	out, err := decodeOutput(outRaw)
	if err != nil {
		return nil, &PluginError{Plugin: plugin.Name(), Version: plugin.Version(), Op: in.Op,
			Cause: fmt.Errorf("output fails its schema: %w", err)}
	}
	return out, nil
}

func (s *Service) build(ctx context.Context, plugin Plugin, op abi.Op, m config.Merchant, sess *payment.Session, opIn *abi.Operation) (*abi.Request, error) {
	return s.buildFrom(ctx, plugin, s.input(op, m, sess, opIn))
}

// buildFrom runs a build operation on a prepared input and returns the request it built.
func (s *Service) buildFrom(ctx context.Context, plugin Plugin, in *abi.Input) (*abi.Request, error) {
	op := in.Op
	out, err := s.call(ctx, plugin, in)
	if err != nil {
		return nil, err
	}
	if !out.OK {
		return nil, &PluginError{Plugin: plugin.Name(), Version: plugin.Version(), Op: op, Err: out.Error}
	}
	if out.Request == nil {
		return nil, &PluginError{Plugin: plugin.Name(), Version: plugin.Version(), Op: op,
			Cause: errors.New("output has no request")}
	}
	if err := fence.Request(in, out.Request); err != nil { // fence: kasse's values reach the provider unchanged
		fence.Report(plugin, err)
		return nil, &PluginError{Plugin: plugin.Name(), Version: plugin.Version(), Op: op, Cause: err}
	}
	return out.Request, nil
}

func (s *Service) read(ctx context.Context, plugin Plugin, op abi.Op, m config.Merchant, sess *payment.Session, opIn *abi.Operation, resp *abi.Response) (*abi.Payment, error) {
	in := s.input(op, m, sess, opIn)
	in.Response = resp
	out, err := s.call(ctx, plugin, in)
	if err != nil {
		return nil, err
	}
	if !out.OK {
		if out.Error != nil && out.Error.Code == "provider_error" {
			return nil, &ProviderError{Status: out.Error.ProviderStatus, Detail: out.Error.Message,
				Errors: out.Error.ProviderErrors, Retryable: out.Error.Retryable}
		}
		return nil, &PluginError{Plugin: plugin.Name(), Version: plugin.Version(), Op: op, Err: out.Error}
	}
	if out.Payment == nil {
		return nil, &PluginError{Plugin: plugin.Name(), Version: plugin.Version(), Op: op,
			Cause: errors.New("output has no payment")}
	}
	return out.Payment, nil
}

func (s *Service) send(ctx context.Context, plugin Plugin, m config.Merchant, req *abi.Request, requestID string, sess *payment.Session) (*abi.Response, error) {
	if req.IdempotencyHeader != "" && requestID == "" {
		requestID = newRequestID()
	}
	resp, err := s.cfg.Provider.Do(ctx, provider.Call{
		Endpoint: provider.Endpoint{
			MerchantID: m.ID, BaseURL: m.Vipps.BaseURL, MerchantSerialNumber: m.Vipps.MerchantSerialNumber,
			ClientID: m.Vipps.ClientID, ClientSecret: m.Vipps.ClientSecret, SubscriptionKey: m.Vipps.SubscriptionKey,
		},
		Request:        req,
		IdempotencyKey: requestID,
		Inject:         map[string]string{abi.InjectCallbackToken: sess.CallbackToken},
		PluginName:     plugin.Name(),
		PluginVersion:  plugin.Version(),
	})
	if err != nil {
		var reqErr *provider.RequestError
		var tokErr *provider.TokenError
		switch {
		case errors.As(err, &reqErr):
			// The plugin built a request the host will not send: a plugin fault, not the provider's.
			fence.Report(plugin, err)
			return nil, &PluginError{Plugin: plugin.Name(), Version: plugin.Version(), Op: "send", Cause: err}
		case errors.As(err, &tokErr) && tokErr.Status >= 400 && tokErr.Status < 500:
			return nil, &ProviderError{Detail: "Vipps refused kasse's credentials for merchant " + m.ID +
				" (access token answered " + strconv.Itoa(tokErr.Status) + "); check clientId and the secrets",
				Cause: err}
		}
		return nil, &ProviderError{Detail: err.Error(), Retryable: true, Cause: err}
	}
	return resp, nil
}

func returnURLAllowed(m config.Merchant, u string) bool {
	for _, p := range m.ReturnURLPrefixes {
		if strings.HasPrefix(u, p) {
			return true
		}
	}
	return false
}

func defaultText(op Operation, sess *payment.Session) string {
	switch op {
	case OpCapture:
		return "Order " + sess.Reference + " shipped"
	case OpRefund:
		return "Refund for order " + sess.Reference
	default:
		return "Order " + sess.Reference + " cancelled"
	}
}

func fingerprintOf(co payment.Checkout) (string, error) {
	b, err := json.Marshal(co)
	if err != nil {
		return "", fmt.Errorf("checkout: fingerprint: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16]), nil
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns a session id that is also a valid provider reference: 26 lowercase letters and digits
// (Vipps eCom orderId allows [a-zA-Z0-9-]{1,50}, ePayment reference [a-zA-Z0-9-]{8,50}).
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "k" + idEncoding.EncodeToString(b[:])[:25]
}

// newToken returns a 256-bit random callback token.
func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newRequestID returns a provider idempotency key: 32 hex characters, within eCom's 40-character limit.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
