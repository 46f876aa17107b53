package telemetry

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkMiddleware is the cost the middleware adds to a request, with tracing off (the default) and on.
func BenchmarkMiddleware(b *testing.B) {
	gin.SetMode(gin.ReleaseMode)
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{"no-middleware", Options{}},
		{"tracing-off", Options{}},
		{"tracing-on", Options{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tel := New(bc.opts)
			r := gin.New()
			if bc.name != "no-middleware" {
				r.Use(tel.Middleware("public"))
			}
			r.GET("/v1/checkouts/:id", func(c *gin.Context) { c.Status(http.StatusOK) })
			req := httptest.NewRequest("GET", "/v1/checkouts/abc", nil)
			b.ReportAllocs()
			for b.Loop() {
				r.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}

// TestMiddlewareLabels: the route label is the template, unknown paths share one label, and odd methods
// share "other", so no request can add series.
func TestMiddlewareLabels(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	tel := New(Options{})
	r := gin.New()
	r.Use(tel.Middleware("public"))
	r.GET("/v1/checkouts/:id", func(c *gin.Context) { c.Status(http.StatusOK) })
	for _, req := range []*http.Request{
		httptest.NewRequest("GET", "/v1/checkouts/abc", nil),
		httptest.NewRequest("GET", "/v1/checkouts/def", nil),
		httptest.NewRequest("GET", "/random/1", nil),
		httptest.NewRequest("GET", "/random/2", nil),
		httptest.NewRequest("BREW", "/v1/checkouts/abc", nil),
	} {
		r.ServeHTTP(httptest.NewRecorder(), req)
	}
	fams, err := tel.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, f := range fams {
		if f.GetName() != "kasse_http_request_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			key := ""
			for _, l := range m.GetLabel() {
				key += l.GetName() + "=" + l.GetValue() + " "
			}
			got[key] = m.GetHistogram().GetSampleCount()
		}
	}
	for key, n := range map[string]uint64{
		"listener=public method=GET route=/v1/checkouts/:id status=200 ": 2,
		"listener=public method=GET route=unmatched status=404 ":         2,
		"listener=public method=other route=unmatched status=404 ":       1,
	} {
		if got[key] != n {
			t.Errorf("%s= %d, want %d (all: %v)", key, got[key], n, got)
		}
	}
}
