package httpapi

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/kassehq/kasse/host/checkout"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/schemas"
)

// ProblemContentType is the media type of every error kasse answers with (RFC 9457).
const ProblemContentType = "application/problem+json"

// Problem is an RFC 9457 problem document.
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

	// retryAfter, in seconds, is sent as the Retry-After header when positive.
	retryAfter int
}

const problemBase = "https://kasse.dev/problems/"

// problemFor maps an error from the layers below to the problem the client sees. It is the one place
// where errors become HTTP statuses.
func problemFor(err error) Problem {
	var (
		verr   *schemas.ValidationError
		inErr  *checkout.InputError
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
		return Problem{Type: problemBase + "outcome-unknown", Title: "Outcome not known yet",
			Status: http.StatusGatewayTimeout, Session: unk.Session, Operation: unk.Operation, retryAfter: 10,
			Detail: "the payment provider did not answer the " + unk.Kind + " in time, so kasse does not know yet " +
				"whether it happened; kasse keeps sending it with the same request id until it knows, and the " +
				"session shows it under operations. Retry with the same Idempotency-Key, or GET the session"}
	case errors.As(err, &doubt):
		return Problem{Type: problemBase + "operation-in-doubt", Title: "Another operation is in doubt",
			Status: http.StatusConflict, Session: doubt.Session, Operation: doubt.Operation, retryAfter: 10,
			Detail: "the " + doubt.Kind + " " + doubt.Operation + " on this session has no known outcome yet; " +
				"kasse sends nothing else for this payment until it is settled"}
	case errors.Is(err, store.ErrUnavailable):
		return Problem{Type: problemBase + "store-unavailable", Title: "Service temporarily unavailable",
			Status: http.StatusServiceUnavailable, retryAfter: 2,
			Detail: "kasse's session store is not reachable right now; nothing was done, retry shortly"}
	case errors.As(err, &maxErr):
		return Problem{Type: problemBase + "body-too-large", Title: "Request body too large",
			Status: http.StatusRequestEntityTooLarge, Detail: "the request body exceeds the limit of " +
				itoa(maxErr.Limit) + " bytes"}
	case errors.As(err, &verr):
		return Problem{Type: problemBase + "invalid-request", Title: "Request body is invalid",
			Status: http.StatusBadRequest, Detail: "the request body does not match " + verr.Schema,
			Errors: verr.Violations}
	case errors.As(err, &inErr):
		return Problem{Type: problemBase + "invalid-request", Title: "Request body is invalid",
			Status: http.StatusUnprocessableEntity, Detail: inErr.Detail,
			Errors: []schemas.Violation{{Pointer: inErr.Pointer, Detail: inErr.Detail}}}
	case errors.As(err, &exErr):
		return Problem{Type: problemBase + "express-disabled", Title: "Express Checkout is off for this merchant",
			Status: http.StatusForbidden, Detail: "merchant " + quote(exErr.Merchant) +
				" has expressCheckout switched off in kasse's configuration", Merchant: exErr.Merchant}
	case errors.As(err, &merr):
		return Problem{Type: problemBase + "unknown-merchant", Title: "Unknown merchant",
			Status: http.StatusNotFound, Detail: "no merchant " + quote(merr.Merchant) + " is configured",
			Merchant: merr.Merchant}
	case errors.Is(err, store.ErrNotFound):
		return Problem{Type: problemBase + "not-found", Title: "Checkout not found", Status: http.StatusNotFound,
			Detail: "no checkout session with this id"}
	case errors.Is(err, checkout.ErrWebhookUnverified):
		return Problem{Type: problemBase + "unauthorized", Title: "Unauthorized", Status: http.StatusUnauthorized,
			Detail: "the webhook's signature does not verify; the payment's status is checked with Vipps instead"}
	case errors.Is(err, checkout.ErrCallbackUnauthorized):
		return Problem{Type: problemBase + "unauthorized", Title: "Unauthorized", Status: http.StatusUnauthorized,
			Detail: "the Authorization header does not match this payment"}
	case errors.As(err, &sterr):
		return Problem{Type: problemBase + "operation-not-allowed", Title: "Operation not allowed in this state",
			Status: http.StatusConflict, Detail: sterr.Err.Error()}
	case errors.As(err, &iderr):
		if iderr.InProgress {
			return Problem{Type: problemBase + "idempotency-in-progress", Title: "Request in progress",
				Status: http.StatusConflict, Detail: iderr.Detail}
		}
		return Problem{Type: problemBase + "idempotency-key-reused", Title: "Idempotency-Key reused",
			Status: http.StatusUnprocessableEntity, Detail: iderr.Detail}
	case errors.As(err, &perr):
		if perr.Status >= 400 && perr.Status < 500 && perr.Status != http.StatusTooManyRequests {
			return Problem{Type: problemBase + "provider-refused", Title: "The payment provider refused the request",
				Status: http.StatusUnprocessableEntity, Detail: perr.Detail, ProviderErrors: perr.Errors}
		}
		return Problem{Type: problemBase + "provider-unavailable", Title: "The payment provider could not be reached",
			Status: http.StatusBadGateway, Detail: "the payment provider did not answer successfully",
			ProviderErrors: perr.Errors}
	case errors.As(err, &plerr):
		if plerr.Err != nil && plerr.Err.Code == "invalid_input" {
			return Problem{Type: problemBase + "invalid-request", Title: "Request refused by the payment plugin",
				Status: http.StatusUnprocessableEntity, Detail: plerr.Err.Message}
		}
		return Problem{Type: problemBase + "plugin-failed", Title: "The payment plugin failed",
			Status: http.StatusInternalServerError, Detail: "plugin " + plerr.Plugin + "@" + plerr.Version +
				" failed during " + string(plerr.Op) + "; nothing was changed"}
	case errors.As(err, &unerr):
		return Problem{Type: problemBase + "unavailable", Title: "Service unavailable",
			Status: http.StatusServiceUnavailable, Detail: unerr.What + " is not available"}
	}
	return Problem{Type: problemBase + "internal", Title: "Internal error", Status: http.StatusInternalServerError,
		Detail: "an unexpected error occurred; see the server log for this request's id"}
}

// abortProblem writes p (with the request's id as instance) and stops the handler chain.
func abortProblem(c *gin.Context, p Problem) {
	p.Instance = "urn:kasse:request:" + requestID(c)
	if p.retryAfter > 0 {
		c.Header("Retry-After", itoa(int64(p.retryAfter)))
	}
	c.Header("Content-Type", ProblemContentType)
	c.Abort()
	c.PureJSON(p.Status, p)
}
