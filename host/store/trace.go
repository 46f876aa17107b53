package store

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/kassehq/kasse/host/internal/tracing"
)

// span starts the span of one session store operation (store.get, store.update, ...) under the request's
// span, naming the store kind (memory, redis). Without a recording span in ctx it costs a check.
func span(ctx context.Context, op, kind string) (context.Context, trace.Span) {
	ctx, sp := tracing.Start(ctx, "store."+op)
	if sp.IsRecording() {
		sp.SetAttributes(attribute.String("db.system.name", kind))
	}
	return ctx, sp
}
