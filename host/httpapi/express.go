package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/kassehq/kasse/host/checkout"
	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/problem"
	"github.com/kassehq/kasse/schemas"
)

// expressRoutes adds the Express Checkout routes: the shop's Express initiate and its probe of the
// merchant's toggle, and the three requests Vipps sends under the merchant's Express prefix
// (checkout.Service.ExpressPrefix, which ends in the merchant's secret segment): the shipping question, the
// Express transaction callback and consent removal. The userId of consent removal is a catch-all: Vipps URL-encodes it, and a decoded "/" must not
// split it.
func (a *api) expressRoutes(r *gin.Engine) {
	r.GET("/v1/express/:merchant", a.expressStatus)
	r.POST("/v1/express/:merchant", a.createExpress)
	x := r.Group("/v1/vipps/:merchant/express/:segment/v2", a.checkSegment)
	x.POST("/payments/:orderId/shippingDetails", a.shippingDetails)
	x.POST("/payments/:orderId", a.expressCallback)
	x.DELETE("/consents/*userId", a.removeConsent)
}

// checkSegment answers 404, like an unknown route, unless the path carries the merchant's secret segment.
func (a *api) checkSegment(c *gin.Context) {
	if a.segments == nil || !a.segments.Valid(c.Param("merchant"), c.Param("segment")) {
		abortProblem(c, problem.Problem{Type: problem.Base + "not-found", Title: "Not found", Status: http.StatusNotFound,
			Detail: "no route " + c.Request.Method + " " + c.Request.URL.Path})
		return
	}
	c.Next()
}

// expressFail is fail for the errors only Express requests have.
func (a *api) expressFail(c *gin.Context, err error) {
	var off *checkout.ExpressDisabledError
	switch {
	case errors.As(err, &off):
		a.log.Info("request failed", "request", requestID(c), "method", c.Request.Method, "path", c.Request.URL.Path,
			"status", http.StatusForbidden, "err", err)
		abortProblem(c, problem.Problem{Type: problem.Base + "express-disabled", Title: "Express Checkout is off",
			Status: http.StatusForbidden, Merchant: off.Merchant,
			Detail: "merchant " + quote(off.Merchant) + " has Express Checkout off: set expressCheckout: true (with shipping) " +
				"for merchant " + quote(off.Merchant) + " in kasse's config file to offer it"})
	case errors.Is(err, checkout.ErrNotExpress):
		abortProblem(c, problem.Problem{Type: problem.Base + "not-express", Title: "Not an Express Checkout payment",
			Status: http.StatusNotFound, Detail: "this payment was not started with Express Checkout"})
	default:
		a.fail(c, err)
	}
}

// expressStatusView is the answer of GET /v1/express/{merchant}.
type expressStatusView struct {
	Merchant        string `json:"merchant"`
	ExpressCheckout bool   `json:"expressCheckout"`
}

// expressStatus tells the merchant's shop whether to show the Express button: the running config's
// expressCheckout, so a reload switches it without a restart.
func (a *api) expressStatus(c *gin.Context) {
	merchant := c.Param("merchant")
	on, err := a.svc.ExpressEnabled(merchant)
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.authorize(c, merchant) {
		return
	}
	c.Header("Cache-Control", "no-store")
	c.PureJSON(http.StatusOK, expressStatusView{Merchant: merchant, ExpressCheckout: on})
}

// createExpress is POST /v1/express/{merchant}: the checkout body of POST /v1/checkouts, whose merchant
// must be the one in the path.
func (a *api) createExpress(c *gin.Context) {
	merchant := c.Param("merchant")
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
	if co.Merchant != merchant {
		a.fail(c, &checkout.InputError{Pointer: "/merchant", Detail: "must be the merchant in the path, " + quote(merchant)})
		return
	}
	if !a.authorize(c, merchant) {
		return
	}
	sess, replayed, err := a.svc.CreateExpress(c.Request.Context(), co, c.GetHeader("Idempotency-Key"))
	if err != nil {
		a.expressFail(c, err)
		return
	}
	if replayed {
		c.Header("Idempotent-Replayed", "true")
	}
	c.Header("Location", "/v1/checkouts/"+sess.ID)
	writeSession(c, http.StatusCreated, sess)
}

// shippingDetails answers Vipps's Express shipping question with the plugin's options; a body its schema
// refuses (checkout.Service.ShippingDetails) gets a 400 problem naming each field.
func (a *api) shippingDetails(c *gin.Context) {
	body, err := a.readBody(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	status, reply, err := a.svc.ShippingDetails(c.Request.Context(), c.Param("merchant"), c.Param("orderId"),
		c.GetHeader("Authorization"), body)
	if err != nil {
		a.expressFail(c, err)
		return
	}
	c.Data(status, "application/json", reply)
}

// expressCallback is the transaction callback of an Express payment.
func (a *api) expressCallback(c *gin.Context) {
	body, err := a.readBody(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	if _, err := a.svc.ExpressCallback(c.Request.Context(), c.Param("merchant"), c.Param("orderId"),
		c.GetHeader("Authorization"), body); err != nil {
		a.expressFail(c, err)
		return
	}
	c.Status(http.StatusOK)
}

// removeConsent erases a Vipps user's personal data and answers 200, also for a user kasse never saw.
func (a *api) removeConsent(c *gin.Context) {
	userID := strings.TrimPrefix(c.Param("userId"), "/")
	if _, err := a.svc.RemoveConsent(c.Request.Context(), c.Param("merchant"), userID); err != nil {
		a.expressFail(c, err)
		return
	}
	c.Status(http.StatusOK)
}
