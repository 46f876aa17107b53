package hooks

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/problem"
	"github.com/kassehq/kasse/schemas"
)

// kindConflictError is an Express Checkout request for an order that already has a live regular payment.
type kindConflictError struct {
	Reference string
	Session   string
	State     payment.State
}

func (e *kindConflictError) Error() string {
	return fmt.Sprintf("hooks: order %s already has a live regular payment, session[%s] (%s)", e.Reference, e.Session, e.State)
}

// problemFor maps an error from an adapter or the checkout service to the problem the platform sees: the
// hooks' own cases here, everything else as on every surface (problem.For).
func problemFor(err error) problem.Problem {
	var (
		verr  *schemas.ValidationError
		kcErr *kindConflictError
	)
	switch {
	case errors.As(err, &kcErr):
		return problem.New(http.StatusConflict, "payment-kind-conflict", "Order already has a regular payment",
			"order "+strconv.Quote(kcErr.Reference)+" already has a live regular payment (state "+string(kcErr.State)+
				"); an Express Checkout needs an order reference of its own")
	case errors.As(err, &verr):
		// The delivery was understood, but the checkout the adapter made of it is not valid: the order
		// cannot be paid as it is, which is not the platform's request being malformed.
		p := problem.New(http.StatusUnprocessableEntity, "invalid-request", "Checkout is invalid",
			"the checkout translated from the delivery does not match "+verr.Schema)
		p.Errors = verr.Violations
		return p
	}
	return problem.For(err)
}

// permanent reports whether retrying the work that failed with err cannot help.
func permanent(err error) bool { return problem.Permanent(problemFor(err)) }

// abortProblem writes p, with the request's id as instance, and stops the handler chain.
func abortProblem(c *gin.Context, p problem.Problem) { problem.Abort(c, requestID(c), p) }
