package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kassehq/kasse/host/problem"
	"github.com/kassehq/kasse/host/settlement"
	"github.com/kassehq/kasse/schemas"
)

// SettlementReports builds a merchant's settlement report for a ledger date; *settlement.Follower
// satisfies it. It returns an error wrapping settlement.ErrNoReport when the date has no entries yet.
type SettlementReports interface {
	Report(ctx context.Context, merchant, date string) (*settlement.Report, error)
}

// getSettlement answers GET /v1/settlements/:merchant/:ledgerDate: the day's settlement report as JSON
// (schemas/settlement-report.schema.json), or as CSV with ?format=csv. Authenticated with the merchant's
// API key like the other merchant routes.
func (a *api) getSettlement(c *gin.Context) {
	merchant, date := c.Param("merchant"), c.Param("ledgerDate")
	if _, _, known := a.keys.APIKey(merchant); !known {
		abortProblem(c, problem.Problem{Type: problem.Base + "not-found", Title: "Not found", Status: http.StatusNotFound,
			Detail: "no such merchant", Merchant: merchant})
		return
	}
	if !a.authorize(c, merchant) {
		return
	}
	bad := func(ptr, detail string) {
		abortProblem(c, problem.Problem{Type: problem.Base + "invalid-request", Title: "Invalid request",
			Status: http.StatusBadRequest, Detail: detail, Merchant: merchant,
			Errors: []schemas.Violation{{Pointer: ptr, Detail: detail}}})
	}
	if d, err := time.Parse(time.DateOnly, date); err != nil || d.Format(time.DateOnly) != date {
		bad("/ledgerDate", "must be a date in the form YYYY-MM-DD")
		return
	}
	format := c.DefaultQuery("format", "json")
	if format != "json" && format != "csv" {
		bad("/format", "must be json or csv")
		return
	}
	r, err := a.settlements.Report(c.Request.Context(), merchant, date)
	if errors.Is(err, settlement.ErrNoReport) {
		abortProblem(c, problem.Problem{Type: problem.Base + "not-found", Title: "Not found", Status: http.StatusNotFound,
			Detail:   "the ledger has no entries for " + date + " yet (the day is not closed, or not read yet)",
			Merchant: merchant})
		return
	}
	if err != nil {
		a.log.Error("settlement report", "request", requestID(c), "merchant", merchant, "date", date, "err", err)
		abortProblem(c, problem.Problem{Type: problem.Base + "unavailable", Title: "Service unavailable",
			Status: http.StatusServiceUnavailable, Detail: "the settlement report cannot be built now", RetryAfter: 5})
		return
	}
	if format == "csv" {
		c.Header("Content-Type", "text/csv; charset=utf-8")
		c.Header("Content-Disposition", `attachment; filename="settlement-`+merchant+`-`+date+`.csv"`)
		c.Status(http.StatusOK)
		if err := r.WriteCSV(c.Writer); err != nil {
			a.log.Error("settlement report csv", "request", requestID(c), "err", err)
		}
		return
	}
	c.JSON(http.StatusOK, r)
}
