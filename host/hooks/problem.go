package hooks

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/host/checkout"
	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/schemas"
)

// ProblemContentType is the media type of every error the hooks answer with (RFC 9457), as in
// host/httpapi.
const ProblemContentType = "application/problem+json"

const problemBase = "https://kasse.dev/problems/"

// Problem is an RFC 9457 problem document, the same shape host/httpapi answers with.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Errors lists each offending field as a JSON pointer into the delivery body, with what is wrong.
	Errors []schemas.Violation `json:"errors,omitempty"`
	// Merchant names the merchant the problem concerns, where there is one.
	Merchant string `json:"merchant,omitempty"`
}

// kindConflictError is an Express Checkout request for an order that already has a live regular payment.
type kindConflictError struct {
	Reference string
	Session   string
	State     payment.State
}

func (e *kindConflictError) Error() string {
	return fmt.Sprintf("hooks: order %s already has a live regular payment, session[%s] (%s)", e.Reference, e.Session, e.State)
}

// problemFor maps an error from an adapter or the checkout service to the problem the platform sees.
func problemFor(err error) Problem {
	var (
		maxErr *http.MaxBytesError
		verr   *schemas.ValidationError
		aerr   *adapters.InputError
		inErr  *checkout.InputError
		merr   *checkout.UnknownMerchantError
		iderr  *checkout.IdempotencyError
		perr   *checkout.ProviderError
		plerr  *checkout.PluginError
		unerr  *checkout.UnavailableError
		exErr  *checkout.ExpressDisabledError
		kcErr  *kindConflictError
		doubt  *checkout.InDoubtError
		unk    *checkout.OutcomeUnknownError
	)
	switch {
	case errors.As(err, &unk):
		// The same types and statuses as host/httpapi: the platform retries the delivery, and the retry
		// settles the operation kasse recorded instead of starting another.
		return Problem{Type: problemBase + "outcome-unknown", Title: "Outcome not known yet",
			Status: http.StatusGatewayTimeout, Detail: "the payment provider did not answer the " + unk.Kind +
				" in time; kasse retries it with the same request id until its outcome is known"}
	case errors.As(err, &doubt):
		return Problem{Type: problemBase + "operation-in-doubt", Title: "Another operation is in doubt",
			Status: http.StatusConflict, Detail: "the " + doubt.Kind + " " + doubt.Operation +
				" on this payment has no known outcome yet; retry later"}
	case errors.Is(err, store.ErrUnavailable):
		return Problem{Type: problemBase + "store-unavailable", Title: "Service temporarily unavailable",
			Status: http.StatusServiceUnavailable,
			Detail: "kasse's session store is not reachable right now; nothing was done, retry shortly"}
	case errors.As(err, &maxErr):
		return Problem{Type: problemBase + "body-too-large", Title: "Request body too large",
			Status: http.StatusRequestEntityTooLarge,
			Detail: "the request body exceeds the limit of " + strconv.FormatInt(maxErr.Limit, 10) + " bytes"}
	case errors.Is(err, adapters.ErrUnauthorized):
		return Problem{Type: problemBase + "unauthorized", Title: "Unauthorized", Status: http.StatusUnauthorized,
			Detail: "the delivery's signature is missing or does not match its body"}
	case errors.As(err, &aerr):
		return Problem{Type: problemBase + "invalid-request", Title: "Delivery body is invalid",
			Status: http.StatusBadRequest, Detail: aerr.Detail,
			Errors: []schemas.Violation{{Pointer: aerr.Pointer, Detail: aerr.Detail}}}
	case errors.As(err, &verr):
		return Problem{Type: problemBase + "invalid-request", Title: "Checkout is invalid",
			Status: http.StatusUnprocessableEntity,
			Detail: "the checkout translated from the delivery does not match " + verr.Schema,
			Errors: verr.Violations}
	case errors.As(err, &inErr):
		return Problem{Type: problemBase + "invalid-request", Title: "Checkout is invalid",
			Status: http.StatusUnprocessableEntity, Detail: inErr.Detail,
			Errors: []schemas.Violation{{Pointer: inErr.Pointer, Detail: inErr.Detail}}}
	case errors.As(err, &exErr):
		// The same type and status as POST /v1/express/{merchant} (host/httpapi).
		return Problem{Type: problemBase + "express-disabled", Title: "Express Checkout is off for this merchant",
			Status: http.StatusForbidden, Merchant: exErr.Merchant, Detail: "merchant " + strconv.Quote(exErr.Merchant) +
				" has Express Checkout off: set expressCheckout: true (with shipping) for merchant " +
				strconv.Quote(exErr.Merchant) + " in kasse's config file to offer it"}
	case errors.As(err, &kcErr):
		return Problem{Type: problemBase + "payment-kind-conflict", Title: "Order already has a regular payment",
			Status: http.StatusConflict, Detail: "order " + strconv.Quote(kcErr.Reference) + " already has a live regular " +
				"payment (state " + string(kcErr.State) + "); an Express Checkout needs an order reference of its own"}
	case errors.As(err, &merr):
		return Problem{Type: problemBase + "unknown-merchant", Title: "Unknown merchant", Status: http.StatusNotFound,
			Detail: "no merchant " + strconv.Quote(merr.Merchant) + " is configured", Merchant: merr.Merchant}
	case errors.Is(err, store.ErrNotFound):
		return Problem{Type: problemBase + "not-found", Title: "Checkout not found", Status: http.StatusNotFound,
			Detail: "no checkout session for this order"}
	case errors.As(err, &iderr):
		if iderr.InProgress {
			return Problem{Type: problemBase + "idempotency-in-progress", Title: "Request in progress",
				Status: http.StatusConflict, Detail: iderr.Detail}
		}
		return Problem{Type: problemBase + "idempotency-key-reused", Title: "Idempotency key reused",
			Status: http.StatusUnprocessableEntity, Detail: iderr.Detail}
	case errors.As(err, &perr):
		if perr.Status >= 400 && perr.Status < 500 && perr.Status != http.StatusTooManyRequests {
			return Problem{Type: problemBase + "provider-refused", Title: "The payment provider refused the request",
				Status: http.StatusUnprocessableEntity, Detail: perr.Detail}
		}
		return Problem{Type: problemBase + "provider-unavailable", Title: "The payment provider could not be reached",
			Status: http.StatusBadGateway, Detail: "the payment provider did not answer successfully; retry later"}
	case errors.As(err, &plerr):
		if plerr.Err != nil && plerr.Err.Code == "invalid_input" {
			return Problem{Type: problemBase + "invalid-request", Title: "Request refused by the payment plugin",
				Status: http.StatusUnprocessableEntity, Detail: plerr.Err.Message}
		}
		return Problem{Type: problemBase + "plugin-failed", Title: "The payment plugin failed",
			Status: http.StatusInternalServerError, Detail: "the payment plugin failed; nothing was changed"}
	case errors.As(err, &unerr):
		return Problem{Type: problemBase + "unavailable", Title: "Service unavailable",
			Status: http.StatusServiceUnavailable, Detail: unerr.What + " is not available"}
	}
	return Problem{Type: problemBase + "internal", Title: "Internal error", Status: http.StatusInternalServerError,
		Detail: "an unexpected error occurred; see the server log for this request's id"}
}

// permanent reports whether retrying the work that failed with err cannot help.
func permanent(err error) bool {
	switch p := problemFor(err); {
	case p.Type == problemBase+"idempotency-in-progress":
		return false // in progress: try again
	case p.Status >= 400 && p.Status < 500:
		return true
	}
	return false
}

// abortProblem writes p, with the request's id as instance, and stops the handler chain.
func abortProblem(c *gin.Context, p Problem) {
	p.Instance = "urn:kasse:request:" + requestID(c)
	c.Header("Content-Type", ProblemContentType)
	c.Abort()
	c.PureJSON(p.Status, p)
}
