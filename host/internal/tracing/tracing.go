// Package tracing starts the child spans of kasse's request traces (checkout, plugin call, provider call,
// store) from the span already in the context, with that span's own tracer provider. kasse keeps no
// global tracer: the HTTP middleware of host/telemetry starts the root span with the Server's provider,
// and everything below inherits it through the context. With tracing off there is no span in the
// context, and Start returns at once without allocating.
//
// Attributes never carry secrets or personal data: ids, names, operations and statuses only. Callers set
// them after Start, guarded by span.IsRecording(), so that building them costs nothing when off.
package tracing

import (
	"context"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Scope is the instrumentation scope of kasse's spans.
const Scope = "github.com/kassehq/kasse"

// Start starts a span named name as a child of the span in ctx. Without a recording span in ctx it
// returns ctx and that (non-recording) span unchanged.
func Start(ctx context.Context, name string) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, parent
	}
	return parent.TracerProvider().Tracer(Scope).Start(ctx, name)
}

// End ends span, marking it failed when err is not nil. The error's text is not recorded: a provider's
// or platform's answer quoted in it may carry personal data.
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.SetStatus(codes.Error, "failed")
	}
	span.End()
}
