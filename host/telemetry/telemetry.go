// Package telemetry owns what kasse tells operators about itself as it runs, apart from logs: a
// Prometheus registry per Server (never the global default registry) with the HTTP, plugin, provider,
// checkout and reconciler instruments and the Go and process collectors, served as /metrics; and the
// OpenTelemetry tracer provider, configured by the standard OTEL_* environment variables and off (no-op)
// by default. Its gin middleware measures every request by route template and status and, when tracing
// is on, starts the request's root span, under which host/internal/tracing hangs the checkout, plugin,
// provider and store spans. It holds no payment logic and reads nothing from the sessions but ids, merchant
// ids, states and statuses: no secrets and no personal data reach a label or an attribute.
package telemetry

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/kassehq/kasse/host/internal/tracing"
)

// Unmatched is the route label of a request no route matched, so that probes of random paths cannot grow
// the number of series.
const Unmatched = "unmatched"

// Telemetry is one Server's metrics registry, instruments and tracer. It is safe for concurrent use.
type Telemetry struct {
	reg *prometheus.Registry

	httpDuration     *prometheus.HistogramVec
	pluginDuration   *prometheus.HistogramVec
	providerDuration *prometheus.HistogramVec
	transitions      *prometheus.CounterVec
	authFailures     *prometheus.CounterVec
	reconcilerPasses *prometheus.HistogramVec
	polls            prometheus.Counter

	tracer     trace.Tracer
	tracing    bool
	propagator propagation.TextMapPropagator
}

// Options configure New.
type Options struct {
	// TracerProvider makes the request spans; nil or a no-op provider turns tracing off.
	TracerProvider trace.TracerProvider
}

// New returns a Telemetry with a fresh registry holding kasse's instruments and the Go and process
// collectors.
func New(opts Options) *Telemetry {
	tp := opts.TracerProvider
	_, isNoop := tp.(noop.TracerProvider)
	if tp == nil {
		tp, isNoop = noop.NewTracerProvider(), true
	}
	t := &Telemetry{
		reg: prometheus.NewRegistry(),
		// Latency buckets from 1 ms to 10 s: a plugin call is about 0.1 ms to a few ms, a provider call
		// tens to hundreds of ms, a timeout seconds.
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kasse_http_request_duration_seconds",
			Help:    "HTTP requests served, by listener (public, ops), method, route template and status; _count is the number of requests.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"listener", "method", "route", "status"}),
		pluginDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kasse_plugin_call_duration_seconds",
			Help:    "Payment plugin calls, by plugin, version, operation and result (ok, error).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"plugin", "version", "operation", "result"}),
		providerDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kasse_provider_request_duration_seconds",
			Help:    "Requests to the payment provider (Vipps), by operation (method and path template) and status (the HTTP status, or error when no answer came).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"operation", "status"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kasse_checkout_transitions_total",
			Help: "Checkout sessions entering a state (pending when created), by merchant and state (this instance).",
		}, []string{"merchant", "state"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kasse_auth_failures_total",
			Help: "Requests refused for a missing or wrong API key, by route.",
		}, []string{"route"}),
		reconcilerPasses: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kasse_reconciler_pass_duration_seconds",
			Help:    "Reconciler passes (claim the sessions due, poll each), by whether they polled any; kasse_reconciler_polls_total counts the sessions polled.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 30},
		}, []string{"polled"}),
		polls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kasse_reconciler_polls_total",
			Help: "Sessions the reconciler polled at the provider (this instance).",
		}),
		tracer:     tp.Tracer(tracing.Scope),
		tracing:    !isNoop,
		propagator: propagation.TraceContext{},
	}
	t.reg.MustRegister(t.httpDuration, t.pluginDuration, t.providerDuration, t.transitions, t.authFailures,
		t.reconcilerPasses, t.polls,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return t
}

// Register adds c to the registry, e.g. a collector that reads figures other parts keep.
func (t *Telemetry) Register(c prometheus.Collector) error { return t.reg.Register(c) }

// Registry is the registry /metrics serves; tests gather from it.
func (t *Telemetry) Registry() *prometheus.Registry { return t.reg }

// Handler serves the registry in the Prometheus text format (GET /metrics). A collector that fails is
// left out of the answer and the rest is served.
func (t *Telemetry) Handler() http.Handler {
	return promhttp.HandlerFor(t.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Tracing reports whether request spans are recorded.
func (t *Telemetry) Tracing() bool { return t.tracing }

// PluginCall records one plugin call.
func (t *Telemetry) PluginCall(plugin, version, operation string, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	t.pluginDuration.WithLabelValues(plugin, version, operation, result).Observe(d.Seconds())
}

// ProviderCall records one request to the provider; status 0 means no answer came.
func (t *Telemetry) ProviderCall(operation string, status int, d time.Duration) {
	s := "error"
	if status > 0 {
		s = strconv.Itoa(status)
	}
	t.providerDuration.WithLabelValues(operation, s).Observe(d.Seconds())
}

// Transition counts a session of merchant entering state.
func (t *Telemetry) Transition(merchant, state string) {
	t.transitions.WithLabelValues(merchant, state).Inc()
}

// AuthFailure counts a refused API key on route.
func (t *Telemetry) AuthFailure(route string) { t.authFailures.WithLabelValues(route).Inc() }

// ReconcilerPass records one reconciler pass that polled n sessions in d.
func (t *Telemetry) ReconcilerPass(n int, d time.Duration) {
	polled := "yes"
	if n == 0 {
		polled = "no"
	}
	t.reconcilerPasses.WithLabelValues(polled).Observe(d.Seconds())
	if n > 0 {
		t.polls.Add(float64(n))
	}
}

// methods bounds the method label: anything else is "other".
var methods = map[string]string{http.MethodGet: http.MethodGet, http.MethodPost: http.MethodPost,
	http.MethodPut: http.MethodPut, http.MethodDelete: http.MethodDelete, http.MethodHead: http.MethodHead,
	http.MethodPatch: http.MethodPatch, http.MethodOptions: http.MethodOptions}

// Middleware measures every request of listener ("public", "ops") and, with tracing on, makes it the root
// span of its trace (continuing a W3C traceparent the caller sent) with the request id, route template
// and status as attributes. Install it first, so it sees the whole request.
func (t *Telemetry) Middleware(listener string) gin.HandlerFunc {
	// The histogram of each (method, route, status) is looked up once: WithLabelValues hashes four
	// labels on every call. The keys are bounded (methods, route templates, statuses), as the series are.
	type series struct {
		method, route string
		status        int
	}
	var observers sync.Map // series -> prometheus.Observer
	observer := func(method, route string, status int) prometheus.Observer {
		k := series{method, route, status}
		if o, ok := observers.Load(k); ok {
			return o.(prometheus.Observer)
		}
		o := t.httpDuration.WithLabelValues(listener, method, route, strconv.Itoa(status))
		observers.Store(k, o)
		return o
	}
	return func(c *gin.Context) {
		start := time.Now()
		var span trace.Span
		if t.tracing {
			ctx := t.propagator.Extract(c.Request.Context(), propagation.HeaderCarrier(c.Request.Header))
			ctx, span = t.tracer.Start(ctx, c.Request.Method, trace.WithSpanKind(trace.SpanKindServer))
			c.Request = c.Request.WithContext(ctx)
		}
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = Unmatched
		}
		method, ok := methods[c.Request.Method]
		if !ok {
			method = "other"
		}
		status := c.Writer.Status()
		observer(method, route, status).Observe(time.Since(start).Seconds())
		if span != nil {
			span.SetName(method + " " + route)
			// The route template, never the path: a path may carry a Vipps user id (consent removal).
			span.SetAttributes(attribute.String("http.request.method", method), attribute.String("http.route", route),
				attribute.Int("http.response.status_code", status), attribute.String("kasse.listener", listener),
				attribute.String("kasse.request_id", c.GetString("kasse.requestID")))
			if status >= 500 {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
			span.End()
		}
	}
}
