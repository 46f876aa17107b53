// Package problem owns how kasse answers with an error: the RFC 9457 problem document every HTTP surface
// (the shop API, the platform hooks, the admin API) sends, and the one mapping from the errors of the
// layers below (schemas, checkout, store, adapters) to a status, a problem type and a text. A surface adds
// only what is its own (an admin refusal, a hook's order conflict) and otherwise calls For, so the same
// failure has the same status everywhere.
package problem

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/host/checkout"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/schemas"
)

// ContentType is the media type of every error kasse answers with (RFC 9457).
const ContentType = "application/problem+json"

// Base prefixes every problem type; Type(kind) is Base + kind.
const Base = "https://kasse.dev/problems/"

// Type returns the problem type URI of kind.
func Type(kind string) string { return Base + kind }

// Problem is an RFC 9457 problem document (schemas/problem.schema.json).
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Errors lists each offending field as a JSON pointer into the request body, with what is wrong.
	Errors []schemas.Violation `json:"errors,omitempty"`
	// Merchant names the merchant the problem concerns, where there is one.
	Merchant string `json:"merchant,omitempty"`
	// ProviderErrors are the payment provider's own error entries, passed on unchanged.
	ProviderErrors []abi.ProviderError `json:"providerErrors,omitempty"`
	// Session and Operation name the checkout session and the provider operation (its request id) a
	// problem is about, where an operation's outcome is not known yet or blocks this request.
	Session   string `json:"session,omitempty"`
	Operation string `json:"operation,omitempty"`

	// RetryAfter, in seconds, is sent as the Retry-After header when positive.
	RetryAfter int `json:"-"`
}

// New returns a problem of kind (see Type) with its status, title and detail.
func New(status int, kind, title, detail string) Problem {
	return Problem{Type: Type(kind), Title: title, Status: status, Detail: detail}
}

// Is reports whether p is of kind.
func (p Problem) Is(kind string) bool { return p.Type == Type(kind) }

// For maps an error from the layers below to the problem a client sees. It is the one place where those
// errors become HTTP statuses; anything it does not know is 500 "internal", whose detail reveals nothing.
func For(err error) Problem {
	var (
		verr   *schemas.ValidationError
		inErr  *checkout.InputError
		aerr   *adapters.InputError
		merr   *checkout.UnknownMerchantError
		sterr  *checkout.StateError
		iderr  *checkout.IdempotencyError
		perr   *checkout.ProviderError
		plerr  *checkout.PluginError
		unerr  *checkout.UnavailableError
		maxErr *http.MaxBytesError
		exErr  *checkout.ExpressDisabledError
		doubt  *checkout.InDoubtError
		unk    *checkout.OutcomeUnknownError
	)
	switch {
	case errors.As(err, &unk):
		p := New(http.StatusGatewayTimeout, "outcome-unknown", "Outcome not known yet",
			"the payment provider did not answer the "+unk.Kind+" in time, so kasse does not know yet "+
				"whether it happened; kasse keeps sending it with the same request id until it knows, and the "+
				"session shows it under operations. Retry with the same Idempotency-Key, or GET the session")
		p.Session, p.Operation, p.RetryAfter = unk.Session, unk.Operation, 10
		return p
	case errors.As(err, &doubt):
		p := New(http.StatusConflict, "operation-in-doubt", "Another operation is in doubt",
			"the "+doubt.Kind+" "+doubt.Operation+" on this session has no known outcome yet; "+
				"kasse sends nothing else for this payment until it is settled")
		p.Session, p.Operation, p.RetryAfter = doubt.Session, doubt.Operation, 10
		return p
	case errors.Is(err, store.ErrUnavailable):
		p := New(http.StatusServiceUnavailable, "store-unavailable", "Service temporarily unavailable",
			"kasse's session store is not reachable right now, or could not keep the change safe in time; "+
				"retry shortly (with the same Idempotency-Key): a change that reached the store is finished by kasse, never made twice")
		p.RetryAfter = 2
		return p
	case errors.As(err, &maxErr):
		return New(http.StatusRequestEntityTooLarge, "body-too-large", "Request body too large",
			"the request body exceeds the limit of "+strconv.FormatInt(maxErr.Limit, 10)+" bytes")
	case errors.Is(err, adapters.ErrUnauthorized):
		return New(http.StatusUnauthorized, "unauthorized", "Unauthorized",
			"the delivery's signature is missing or does not match its body")
	case errors.As(err, &aerr):
		p := New(http.StatusBadRequest, "invalid-request", "Delivery body is invalid", aerr.Detail)
		p.Errors = []schemas.Violation{{Pointer: aerr.Pointer, Detail: aerr.Detail}}
		return p
	case errors.As(err, &verr):
		p := New(http.StatusBadRequest, "invalid-request", "Request body is invalid",
			"the request body does not match "+verr.Schema)
		p.Errors = verr.Violations
		return p
	case errors.As(err, &inErr):
		p := New(http.StatusUnprocessableEntity, "invalid-request", "Request body is invalid", inErr.Detail)
		p.Errors = []schemas.Violation{{Pointer: inErr.Pointer, Detail: inErr.Detail}}
		return p
	case errors.As(err, &exErr):
		p := New(http.StatusForbidden, "express-disabled", "Express Checkout is off for this merchant",
			"merchant "+strconv.Quote(exErr.Merchant)+" has Express Checkout off: set expressCheckout: true "+
				"(with shipping) for this merchant in kasse's config file to offer it")
		p.Merchant = exErr.Merchant
		return p
	case errors.As(err, &merr):
		p := New(http.StatusNotFound, "unknown-merchant", "Unknown merchant",
			"no merchant "+strconv.Quote(merr.Merchant)+" is configured")
		p.Merchant = merr.Merchant
		return p
	case errors.Is(err, store.ErrNotFound):
		return New(http.StatusNotFound, "not-found", "Checkout not found", "no checkout session found")
	case errors.Is(err, checkout.ErrWebhookUnverified):
		return New(http.StatusUnauthorized, "unauthorized", "Unauthorized",
			"the webhook's signature does not verify; the payment's status is checked with Vipps instead")
	case errors.Is(err, checkout.ErrCallbackUnauthorized):
		return New(http.StatusUnauthorized, "unauthorized", "Unauthorized",
			"the Authorization header does not match this payment")
	case errors.As(err, &sterr):
		return New(http.StatusConflict, "operation-not-allowed", "Operation not allowed in this state", sterr.Err.Error())
	case errors.As(err, &iderr):
		if iderr.InProgress {
			return New(http.StatusConflict, "idempotency-in-progress", "Request in progress", iderr.Detail)
		}
		return New(http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency-Key reused", iderr.Detail)
	case errors.As(err, &perr):
		if perr.Status >= 400 && perr.Status < 500 && perr.Status != http.StatusTooManyRequests {
			p := New(http.StatusUnprocessableEntity, "provider-refused", "The payment provider refused the request", perr.Detail)
			p.ProviderErrors = perr.Errors
			return p
		}
		p := New(http.StatusBadGateway, "provider-unavailable", "The payment provider could not be reached",
			"the payment provider did not answer successfully; retry later")
		p.ProviderErrors = perr.Errors
		return p
	case errors.As(err, &plerr):
		if plerr.Err != nil && plerr.Err.Code == "invalid_input" {
			return New(http.StatusUnprocessableEntity, "invalid-request", "Request refused by the payment plugin", plerr.Err.Message)
		}
		return New(http.StatusInternalServerError, "plugin-failed", "The payment plugin failed",
			"plugin "+plerr.Plugin+"@"+plerr.Version+" failed during "+string(plerr.Op)+"; nothing was changed")
	case errors.As(err, &unerr):
		return New(http.StatusServiceUnavailable, "unavailable", "Service unavailable", unerr.What+" is not available")
	}
	return New(http.StatusInternalServerError, "internal", "Internal error",
		"an unexpected error occurred; see the server log for this request's id")
}

// Permanent reports whether retrying the work that failed with p cannot help: a 4xx answer other than
// "in progress" and "in doubt", which a retry settles.
func Permanent(p Problem) bool {
	if p.Is("idempotency-in-progress") || p.Is("operation-in-doubt") {
		return false
	}
	return p.Status >= 400 && p.Status < 500
}

// Abort writes p, with requestID as its instance, and stops the gin handler chain.
func Abort(c *gin.Context, requestID string, p Problem) {
	if requestID != "" {
		p.Instance = "urn:kasse:request:" + requestID
	}
	if p.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	c.Header("Content-Type", ContentType)
	c.Status(p.Status)
	c.Abort()
	_, _ = c.Writer.Write(Marshal(p))
}

// Marshal encodes p as JSON with '&', '<' and '>' kept as they are (a URL in a detail stays copyable) and a
// trailing newline.
func Marshal(p Problem) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return []byte(`{"type":"` + Type("internal") + `","title":"Internal error","status":500}` + "\n")
	}
	return buf.Bytes()
}
