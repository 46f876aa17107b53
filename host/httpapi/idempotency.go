package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/kassehq/kasse/host/problem"
	"github.com/kassehq/kasse/host/store"
)

// IdempotencyStore keeps the answers of requests sent with an Idempotency-Key; store.Store satisfies it.
type IdempotencyStore interface {
	ClaimIdempotencyKey(ctx context.Context, scope, key, value string, ttl time.Duration) (string, error)
	ReleaseIdempotencyKey(ctx context.Context, scope, key, value string) error
	SwapIdempotencyKey(ctx context.Context, scope, key, old, value string, ttl time.Duration) (bool, error)
}

// IdempotencyTTL is how long kasse remembers a request sent with an Idempotency-Key and its answer. A
// request still running holds its key for Config.PendingClaimTTL at a time instead.
const IdempotencyTTL = 24 * time.Hour

// maxIdempotencyKey bounds the Idempotency-Key header (the IETF draft and Stripe allow 255).
const maxIdempotencyKey = 255

// recorded is the answer kept for an Idempotency-Key.
type recorded struct {
	Status      int    `json:"status"`
	ContentType string `json:"contentType,omitempty"`
	Location    string `json:"location,omitempty"`
	Body        []byte `json:"body,omitempty"`
}

// recorder keeps a copy of what the handler writes.
type recorder struct {
	gin.ResponseWriter
	body bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

func (r *recorder) WriteString(s string) (int, error) {
	r.body.WriteString(s)
	return r.ResponseWriter.WriteString(s)
}

// idempotent makes every mutating request that carries an Idempotency-Key answer exactly once: the
// first request's answer (status, body, Location) is recorded in the store, and a retry with the same key
// and the same body gets that answer again, from any instance and after a restart, with
// Idempotent-Replayed: true. The same key with another body is 422; a retry while the first is still
// running is 409, and a retry after kasse died while running it runs again once the first's claim has
// lapsed (Config.PendingClaimTTL). Answers that say "try again" (5xx, 409, 429) are not recorded, so
// the retry runs again; a retry after an outcome-unknown answer finds the operation the first request
// recorded in the session and settles it, never starting a second one (see checkout.Service.Modify).
//
// Keys are scoped to the caller's credentials and the route: two merchants, or two endpoints, never
// share a key.
func (a *api) idempotent(c *gin.Context) {
	key := c.GetHeader("Idempotency-Key")
	if key == "" || a.idem == nil || c.Request.Method != http.MethodPost ||
		strings.HasPrefix(c.Request.URL.Path, "/v1/vipps/") || strings.HasPrefix(c.Request.URL.Path, "/admin/") {
		c.Next()
		return
	}
	if len(key) > maxIdempotencyKey {
		abortProblem(c, problem.Problem{Type: problem.Base + "invalid-request", Title: "Invalid Idempotency-Key",
			Status: http.StatusBadRequest, Detail: "the Idempotency-Key header is longer than 255 characters"})
		return
	}
	body, err := a.readBody(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Request.Body = io.NopCloser(bytes.NewReader(body))
	ctx := c.Request.Context()
	scope := "http:" + digest(c.GetHeader("Authorization")) + ":" + c.Request.URL.Path
	fingerprint := digest(string(body))
	// The request id makes this request's claim its own, so that freeing it never frees another's. The
	// claim lives pendingTTL and is renewed while the handler runs: a request that takes long keeps it,
	// and one whose process died (kill -9, OOM, a lost node) leaves a key that is free again pendingTTL
	// later, not "in progress" until IdempotencyTTL. A retry then runs again and meets what the first
	// attempt recorded in the session (checkout.Service.Modify): money still moves once.
	pending := "p|" + fingerprint + "|" + requestID(c)
	existing, err := a.idem.ClaimIdempotencyKey(ctx, scope, key, pending, a.pendingTTL)
	if err != nil {
		// The claim may have reached the store (an answer lost, a write not replicated): left there,
		// every retry would be "in progress" until it expires.
		if err := a.idem.ReleaseIdempotencyKey(context.WithoutCancel(ctx), scope, key, pending); err != nil {
			a.log.Warn("httpapi: could not free an Idempotency-Key after a failed claim; a retry may answer 409 until it expires",
				"request", requestID(c), "err", err)
		}
		a.fail(c, err)
		return
	}
	if existing != "" {
		a.replay(c, existing, fingerprint)
		return
	}
	reqID := requestID(c) // read here: the renewals run on a timer's goroutine
	stop := store.KeepClaimed(ctx, a.idem, scope, key, pending, a.pendingTTL, func(err error) {
		a.log.Warn("httpapi: could not renew an Idempotency-Key's claim; once it lapses a retry may run beside this request",
			"request", reqID, "err", err)
	})
	// The answer must be recorded (or the key freed) even if the client hung up.
	free := func() {
		if err := a.idem.ReleaseIdempotencyKey(context.WithoutCancel(ctx), scope, key, pending); err != nil {
			a.log.Warn("httpapi: could not free an Idempotency-Key; a retry answers 409 until its claim expires",
				"request", requestID(c), "err", err)
		}
	}
	finished := false
	defer func() {
		if !finished {
			// The handler panicked (a.recover answers 500): stop renewing, and free the key for a retry.
			stop()
			free()
		}
	}()
	rec := &recorder{ResponseWriter: c.Writer}
	c.Writer = rec
	c.Next()
	finished = true
	stop()

	status := rec.Status()
	if status >= 500 || status == http.StatusConflict || status == http.StatusTooManyRequests {
		free()
		return
	}
	raw, _ := json.Marshal(recorded{Status: status, ContentType: rec.Header().Get("Content-Type"),
		Location: rec.Header().Get("Location"), Body: rec.body.Bytes()})
	swapped, err := a.idem.SwapIdempotencyKey(context.WithoutCancel(ctx), scope, key, pending, "r|"+fingerprint+"|"+string(raw), IdempotencyTTL)
	switch {
	case err != nil:
		a.log.Warn("httpapi: could not record the answer of an Idempotency-Key request", "request", requestID(c), "err", err)
	case !swapped:
		// The claim lapsed while the request ran (the store was unreachable for longer than its TTL, or
		// the process stood still): a retry may have run too, and its answer is the one kept.
		a.log.Warn("httpapi: the Idempotency-Key's claim lapsed before the answer was recorded", "request", requestID(c))
	}
}

// replay answers a request whose Idempotency-Key is known.
func (a *api) replay(c *gin.Context, existing, fingerprint string) {
	kind, rest, _ := strings.Cut(existing, "|")
	prevFingerprint, answer, _ := strings.Cut(rest, "|")
	if prevFingerprint != fingerprint {
		abortProblem(c, problem.Problem{Type: problem.Base + "idempotency-key-reused", Title: "Idempotency-Key reused",
			Status: http.StatusUnprocessableEntity,
			Detail: "this Idempotency-Key was already used with a different request body"})
		return
	}
	var r recorded
	if kind != "r" || json.Unmarshal([]byte(answer), &r) != nil {
		c.Header("Retry-After", "1")
		abortProblem(c, problem.Problem{Type: problem.Base + "idempotency-in-progress", Title: "Request in progress",
			Status: http.StatusConflict, Detail: "a request with this Idempotency-Key is still being processed; retry shortly"})
		return
	}
	c.Header("Idempotent-Replayed", "true")
	if r.Location != "" {
		c.Header("Location", r.Location)
	}
	c.Data(r.Status, r.ContentType, r.Body)
	c.Abort()
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}
