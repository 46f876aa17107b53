package plugintest

import (
	"slices"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/sdk"
)

// SplitReport separates the cases of the report operations (abi.ReportOps), which speak the Vipps Report
// API, from the others, which speak the plugin's payment API: each part is checked against its own
// OpenAPI description.
func SplitReport(cases []Case) (payment, report []Case) {
	for _, c := range cases {
		if slices.Contains(abi.ReportOps, c.In.Op) {
			report = append(report, c)
		} else {
			payment = append(payment, c)
		}
	}
	return payment, report
}

// ReportOffSpec lists the report vectors (the same in every Vipps plugin) whose Vipps answer deliberately
// differs from report-v2.yaml, each with the reason.
var ReportOffSpec = map[string]string{
	"read_ledgers-last-page":              "ledgerId as a number",
	"read_report_feed-guide-funds":        "the guide's worked example writes times as +0200, not RFC 3339",
	"read_report_feed-amount-fraction":    "an amount that is not whole",
	"read_report_feed-bad-time":           "a time that is not a date-time",
	"read_report_feed-502-html":           "a proxy's HTML page",
	"read_report_feed-not-object":         "not a JSON object",
	"read_report_feed-unknown-entry-type": "an entry type the spec's enum does not list yet (the API adds types without warning)",
	"read_report_by_date-guide-funds":     "the guide's worked example writes times as +0200, not RFC 3339",
	"read_report_by_date-guide-fees":      "the guide's worked example writes times as +0200, not RFC 3339",
	"read_report_by_date-not-closed-404":  "the spec's 404 has no body",
}

// ReportSpec returns the Spec that checks the report cases of a Vipps plugin against report-v2.yaml (the
// loaded document, as vippsspec loads it): every request is a GET without a body to one of its operations,
// every recorded answer validates, except the ones in ReportOffSpec.
func ReportSpec(t testing.TB, doc *openapi3.T, handle sdk.HandlerFunc) *Spec {
	t.Helper()
	router, err := legacy.NewRouter(doc, openapi3.DisableExamplesValidation())
	if err != nil {
		t.Fatal(err)
	}
	return &Spec{
		Doc:     "report-v2.yaml",
		Router:  router,
		BaseURL: "https://api.vipps.no",
		Handle:  handle,
		BuildFor: map[abi.Op]abi.Op{abi.OpReadLedgers: abi.OpBuildLedgers, abi.OpReadReportFeed: abi.OpBuildReportFeed,
			abi.OpReadReportByDate: abi.OpBuildReportByDate},
		MediaTypes: []string{"application/json", "application/problem+json"},
		What:       "Vipps Report API answer",
		OffSpec:    ReportOffSpec,
		CheckRequest: func(t *testing.T, s *Spec, r *abi.Request) {
			t.Helper()
			op := s.Route(t, r).Operation
			if r.Method != "GET" || len(r.Body) != 0 || len(r.Inject) != 0 || r.IdempotencyHeader != "" {
				t.Errorf("%s: want a plain GET, got %s with body %q, inject %v, idempotency header %q",
					op.OperationID, r.Method, r.Body, r.Inject, r.IdempotencyHeader)
			}
		},
	}
}
