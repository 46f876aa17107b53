// Package httpapi owns kasse's HTTP surface: the gin routes of the checkout API, the provider callback and
// return endpoints, health checks, request limits and authentication, and the mapping of every error to an
// RFC 9457 problem document. It validates request bodies (JSON only, valid UTF-8) against the JSON Schemas
// and then calls the checkout service; it holds no payment logic. It also serves kasse's OpenAPI document
// (GET /openapi.json, schemas/openapi.json) and the JSON Schemas it refers to (GET /schemas/{file}). New
// is the public handler; NewOps is the operations handler (metrics, admin, detailed readiness), served on
// a separate listener.
package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	gojson "github.com/goccy/go-json"

	"github.com/kassehq/kasse/host/checkout"
	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/problem"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/host/webhooks"
	"github.com/kassehq/kasse/schemas"
)

// MaxBodyBytes is the largest request body any endpoint reads.
const MaxBodyBytes = 64 << 10

// APIKeys says which API key a merchant's shop must present. open=true means the merchant runs without
// one (insecureNoAuth, which the config allows only on a loopback-only kasse); ok=false means the merchant
// is unknown.
type APIKeys interface {
	APIKey(merchant string) (key string, open, ok bool)
}

// Config holds the API's collaborators.
type Config struct {
	Service *checkout.Service
	Schemas *schemas.Set
	APIKeys APIKeys
	// Ready reports whether the service can take traffic (store reachable, plugins loaded).
	Ready  func(ctx context.Context) error
	Logger *slog.Logger
	// Mount, if set, adds more routes (the platform hooks) to the router.
	Mount func(r gin.IRouter)
	// Webhooks verifies Vipps webhook deliveries (ePayment merchants).
	Webhooks checkout.WebhookVerifier
	// Idempotency keeps the answers of requests sent with an Idempotency-Key, so a retry gets the first
	// answer. Nil turns answer replay off.
	Idempotency IdempotencyStore
	// PendingClaimTTL is how long an Idempotency-Key stays claimed by a request still running without
	// being renewed (it is renewed every third of it while the request runs): a retry after kasse died
	// during the request runs again after it. Default store.DefaultPendingClaimTTL.
	PendingClaimTTL time.Duration
	// OnAuthFailure, if set, is called once per refused API key, with the route (e.g.
	// "/v1/checkouts/:id"), to count them.
	OnAuthFailure func(route string)
	// Middleware runs first on every request, unknown routes included (telemetry: metrics and the
	// request's root span).
	Middleware []gin.HandlerFunc
	// URLSegments checks the secret segment of the Express shipping-details and consent-removal URLs.
	// Required for the Express routes that Vipps calls; without it they answer 404.
	URLSegments URLSegments
	// Settlements serves the settlement reports (GET /v1/settlements/{merchant}/{ledgerDate}); nil
	// leaves the route out (settlement following off).
	Settlements SettlementReports
}

// URLSegments checks the unguessable per-merchant path segment of the URLs that Vipps calls without
// authentication (consent removal) or that reveal a cart (shipping details).
type URLSegments interface {
	Valid(merchant, segment string) bool
}

type api struct {
	webhooks checkout.WebhookVerifier
	svc      *checkout.Service
	schemas  *schemas.Set
	keys     APIKeys
	ready    func(ctx context.Context) error
	log      *slog.Logger
	idem     IdempotencyStore
	// pendingTTL is the TTL of an Idempotency-Key's claim while its request runs.
	pendingTTL time.Duration
	onAuth     func(route string)
	segments   URLSegments
	// settlements serves the settlement reports; nil when settlement following is off.
	settlements SettlementReports
}

// New returns the HTTP handler of the kasse API.
func New(cfg Config) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	a := &api{webhooks: cfg.Webhooks, svc: cfg.Service, schemas: cfg.Schemas, keys: cfg.APIKeys, ready: cfg.Ready,
		log: cfg.Logger, onAuth: cfg.OnAuthFailure, segments: cfg.URLSegments, idem: cfg.Idempotency,
		settlements: cfg.Settlements, pendingTTL: cfg.PendingClaimTTL}
	if a.pendingTTL <= 0 {
		a.pendingTTL = store.DefaultPendingClaimTTL
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.ready == nil {
		a.ready = func(context.Context) error { return nil }
	}
	r := a.engine(cfg.Middleware)
	// requireJSON first: a body of the wrong type must not claim an Idempotency-Key.
	r.Use(a.requireJSON, a.idempotent)

	// The public probes reveal nothing: the detailed readiness is on the operations listener (NewOps).
	r.GET("/healthz", func(c *gin.Context) { c.PureJSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", a.bareReadyz)
	serveSpec(r)

	v1 := r.Group("/v1")
	v1.POST("/checkouts", a.createCheckout)
	v1.GET("/checkouts/:id", a.getCheckout)
	v1.POST("/checkouts/:id/capture", a.modify(checkout.OpCapture))
	v1.POST("/checkouts/:id/refund", a.modify(checkout.OpRefund))
	v1.POST("/checkouts/:id/cancel", a.modify(checkout.OpCancel))
	v1.GET("/checkouts/:id/return", a.returnFromProvider)
	v1.POST("/vipps/:merchant/callback/v2/payments/:orderId", a.vippsCallback)
	if a.settlements != nil && a.keys != nil {
		v1.GET("/settlements/:merchant/:ledgerDate", a.getSettlement)
	}
	a.expressRoutes(r)
	if a.webhooks != nil {
		v1.POST("/vipps/:merchant/webhooks", a.vippsWebhook)
	}
	if cfg.Mount != nil {
		cfg.Mount(r)
	}
	return r
}

// OpsConfig holds what the operations listener serves.
type OpsConfig struct {
	// Ready reports whether the service can take traffic; its error text is shown on /readyz.
	Ready  func(ctx context.Context) error
	Logger *slog.Logger
	// Mount adds the operations routes (/metrics, /admin/v1).
	Mount func(r gin.IRouter)
	// Middleware runs first on every request, as in Config.
	Middleware []gin.HandlerFunc
}

// NewOps returns the handler of the operations listener: /healthz, a /readyz that says what is not
// ready, and the routes cfg.Mount adds. It must not be reachable from the internet.
func NewOps(cfg OpsConfig) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	a := &api{ready: cfg.Ready, log: cfg.Logger}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.ready == nil {
		a.ready = func(context.Context) error { return nil }
	}
	r := a.engine(cfg.Middleware)
	r.GET("/healthz", func(c *gin.Context) { c.PureJSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", a.readyz)
	if cfg.Mount != nil {
		cfg.Mount(r)
	}
	return r
}

// engine is a gin engine with mw first, then request ids, panic recovery and problem answers for unknown
// routes.
func (a *api) engine(mw []gin.HandlerFunc) *gin.Engine {
	r := gin.New()
	r.Use(mw...)
	r.Use(a.requestIDs, a.recover)
	r.NoRoute(func(c *gin.Context) {
		abortProblem(c, problem.Problem{Type: problem.Base + "not-found", Title: "Not found", Status: http.StatusNotFound,
			Detail: "no route " + c.Request.Method + " " + c.Request.URL.Path})
	})
	r.HandleMethodNotAllowed = true
	r.NoMethod(func(c *gin.Context) {
		abortProblem(c, problem.Problem{Type: problem.Base + "method-not-allowed", Title: "Method not allowed",
			Status: http.StatusMethodNotAllowed, Detail: c.Request.Method + " is not allowed on " + c.Request.URL.Path})
	})
	return r
}

func (a *api) requestIDs(c *gin.Context) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	c.Set("kasse.requestID", id)
	c.Header("X-Request-Id", id)
	c.Next()
}

func requestID(c *gin.Context) string { return c.GetString("kasse.requestID") }

func (a *api) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			a.log.Error("httpapi: panic", "request", requestID(c), "path", c.Request.URL.Path, "panic", v)
			abortProblem(c, problemFor(errors.New("panic")))
		}
	}()
	c.Next()
}

// fail logs err with the request id and answers with its problem.
func (a *api) fail(c *gin.Context, err error) {
	p := problemFor(err)
	level := slog.LevelInfo
	if p.Status >= 500 {
		level = slog.LevelError
	}
	a.log.Log(c.Request.Context(), level, "request failed", "request", requestID(c), "method", c.Request.Method,
		"path", c.Request.URL.Path, "status", p.Status, "err", err)
	abortProblem(c, p)
}

func (a *api) readBody(c *gin.Context) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes))
}

func (a *api) readyz(c *gin.Context) {
	if err := a.ready(c.Request.Context()); err != nil {
		abortProblem(c, problem.Problem{Type: problem.Base + "not-ready", Title: "Not ready",
			Status: http.StatusServiceUnavailable, Detail: err.Error()})
		return
	}
	c.PureJSON(http.StatusOK, gin.H{"status": "ready"})
}

// bareReadyz is the public readiness probe: 200 or 503, without saying why (the reason may name the
// store's address; the operations listener's /readyz shows it).
func (a *api) bareReadyz(c *gin.Context) {
	if err := a.ready(c.Request.Context()); err != nil {
		c.Header("Cache-Control", "no-store")
		c.PureJSON(http.StatusServiceUnavailable, gin.H{"status": "not ready"})
		return
	}
	c.PureJSON(http.StatusOK, gin.H{"status": "ready"})
}

// keyOK checks the shop's API key for merchant. Only a merchant configured with insecureNoAuth needs none.
// A refusal is logged (merchant, route, remote address; never the key presented) and counted.
func (a *api) keyOK(c *gin.Context, merchant string) bool {
	if a.keys == nil {
		return false
	}
	want, open, known := a.keys.APIKey(merchant)
	if known && open {
		return true
	}
	got, found := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if known && found && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1 {
		return true
	}
	route := c.FullPath()
	a.log.Warn("authentication failed", "request", requestID(c), "merchant", merchant, "method", c.Request.Method,
		"route", route, "remote", c.Request.RemoteAddr, "keyPresented", found && got != "")
	if a.onAuth != nil {
		a.onAuth(route)
	}
	return false
}

// authorize checks the shop's API key for merchant and answers 401 when it is wrong. Use it where the
// caller named the merchant; for a checkout id use session, which answers 404 instead.
func (a *api) authorize(c *gin.Context, merchant string) bool {
	if a.keys != nil {
		if _, _, known := a.keys.APIKey(merchant); !known {
			return true // the service answers 404 for an unknown merchant; there is nothing to protect
		}
	}
	if a.keyOK(c, merchant) {
		return true
	}
	c.Header("WWW-Authenticate", `Bearer realm="kasse"`)
	abortProblem(c, problem.Problem{Type: problem.Base + "unauthorized", Title: "Unauthorized",
		Status: http.StatusUnauthorized, Detail: "send the merchant's API key as Authorization: Bearer <key>",
		Merchant: merchant})
	return false
}

func (a *api) createCheckout(c *gin.Context) {
	body, err := a.readBody(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	if err := a.schemas.Validate(schemas.Checkout, body); err != nil {
		a.fail(c, err)
		return
	}
	var co payment.Checkout
	if err := json.Unmarshal(body, &co); err != nil {
		a.fail(c, &schemas.ValidationError{Schema: schemas.Checkout,
			Violations: []schemas.Violation{{Pointer: "", Detail: err.Error()}}})
		return
	}
	if !a.authorize(c, co.Merchant) {
		return
	}
	sess, replayed, err := a.svc.Create(c.Request.Context(), co, c.GetHeader("Idempotency-Key"))
	if err != nil {
		a.fail(c, err)
		return
	}
	if replayed {
		c.Header("Idempotent-Replayed", "true")
	}
	c.Header("Location", "/v1/checkouts/"+sess.ID)
	writeSession(c, http.StatusCreated, sess)
}

// session loads the checkout named in the path for a caller holding its merchant's key. An unknown id and
// an id the caller may not see get the same 404, so ids cannot be probed, nor their merchants learnt.
func (a *api) session(c *gin.Context) (*payment.Session, bool) {
	sess, err := a.svc.Get(c.Request.Context(), c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return nil, false
	}
	if !a.keyOK(c, sess.Merchant) {
		abortProblem(c, problemFor(store.ErrNotFound))
		return nil, false
	}
	return sess, true
}

func (a *api) getCheckout(c *gin.Context) {
	sess, ok := a.session(c)
	if !ok {
		return
	}
	writeSession(c, http.StatusOK, sess)
}

// operationRequest is the optional body of capture, refund and cancel.
type operationRequest struct {
	// Amount in minor units; omitted or 0 means everything that is left.
	Amount int64  `json:"amount"`
	Text   string `json:"text"`
}

func (a *api) modify(op checkout.Operation) gin.HandlerFunc {
	return func(c *gin.Context) {
		body, err := a.readBody(c)
		if err != nil {
			a.fail(c, err)
			return
		}
		var req operationRequest
		if len(strings.TrimSpace(string(body))) > 0 {
			if err := a.schemas.Validate(schemas.Operation, body); err != nil {
				a.fail(c, err)
				return
			}
			if err := json.Unmarshal(body, &req); err != nil {
				a.fail(c, &schemas.ValidationError{Schema: schemas.Operation,
					Violations: []schemas.Violation{{Pointer: "", Detail: err.Error()}}})
				return
			}
		}
		sess, ok := a.session(c)
		if !ok {
			return
		}
		// The session just read for the key check is where the operation starts: one read, not two.
		sess, err = a.svc.ModifyFrom(c.Request.Context(), sess, op, req.Amount, req.Text, c.GetHeader("Idempotency-Key"))
		if err != nil {
			a.fail(c, err)
			return
		}
		writeSession(c, http.StatusOK, sess)
	}
}

func (a *api) returnFromProvider(c *gin.Context) {
	sess, err := a.svc.Return(c.Request.Context(), c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	target, err := url.Parse(sess.ReturnURL)
	if err != nil {
		a.fail(c, err)
		return
	}
	q := target.Query()
	q.Set("kasse_checkout", sess.ID)
	q.Set("kasse_state", string(sess.State))
	target.RawQuery = q.Encode()
	c.Redirect(http.StatusSeeOther, target.String())
}

func (a *api) vippsCallback(c *gin.Context) {
	body, err := a.readBody(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	_, err = a.svc.Callback(c.Request.Context(), c.Param("merchant"), c.Param("orderId"),
		c.GetHeader("Authorization"), body)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusOK)
}

// writeSession answers with the session as the API shows it (view), encoded as gin's PureJSON would
// (no HTML escaping, a final newline) but with goccy/go-json, which writes the same bytes
// (TestSessionAnswerIsPureJSON) in about half the time of encoding/json: every GET pays for it.
func writeSession(c *gin.Context, status int, sess *payment.Session) {
	b, err := encodeView(view(sess))
	if err != nil {
		c.PureJSON(status, view(sess))
		return
	}
	c.Data(status, "application/json; charset=utf-8", b)
}

// encodeView is the body writeSession sends.
func encodeView(v *payment.Session) ([]byte, error) {
	b, err := gojson.MarshalWithOption(v, gojson.DisableHTMLEscape())
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// view is the session as the API shows it: without the callback token and the internal bookkeeping
// (outbox, next check, the digests of shop idempotency keys and of applied provider messages).
func view(s *payment.Session) *payment.Session {
	v := *s
	v.CallbackToken = ""
	v.Outbox, v.NoticeSeq, v.NextCheckAt, v.Applied = nil, 0, time.Time{}, nil
	if len(s.Operations) > 0 {
		v.Operations = make([]payment.ProviderOp, len(s.Operations))
		for i, op := range s.Operations {
			op.Key = ""
			v.Operations[i] = op
		}
	}
	if s.Settlement != nil {
		// The ledger entry ids are the follower's bookkeeping; the report lists the entries themselves.
		st := *s.Settlement
		st.Entries = nil
		v.Settlement = &st
	}
	return &v
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func quote(s string) string { return strconv.Quote(s) }

// vippsWebhook takes a Vipps Webhooks API delivery (ePayment). It answers 204 when the event was applied
// or deliberately ignored, and a problem otherwise, which makes Vipps retry: 401 when the signature does
// not verify (nothing changes; kasse checks the payment's status with Vipps instead).
func (a *api) vippsWebhook(c *gin.Context) {
	body, err := a.readBody(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	_, err = a.svc.Webhook(c.Request.Context(), a.webhooks, c.Param("merchant"), webhooks.RequestFrom(c.Request, body))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
