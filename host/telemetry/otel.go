package telemetry

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// TracerProviderFromEnv configures tracing from the standard OpenTelemetry variables, read through
// getenv. Tracing is off (a no-op provider, nothing recorded, nothing sent) unless OTEL_TRACES_EXPORTER
// is "otlp", or it is unset and OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set;
// OTEL_SDK_DISABLED=true and OTEL_TRACES_EXPORTER=none turn it off. The exporter is OTLP over HTTP
// (protobuf); its endpoint, headers, timeout and TLS come from the OTEL_EXPORTER_OTLP_* variables, the
// sampler from OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, the batching from OTEL_BSP_*, and the
// resource from OTEL_SERVICE_NAME (default "kasse") and OTEL_RESOURCE_ATTRIBUTES. The returned shutdown
// flushes the spans still queued; it is never nil.
func TracerProviderFromEnv(ctx context.Context, getenv func(string) string, version string) (trace.TracerProvider, func(context.Context) error, error) {
	off := func(context.Context) error { return nil }
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return noop.NewTracerProvider(), off, nil
	}
	switch exporter := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))); exporter {
	case "none":
		return noop.NewTracerProvider(), off, nil
	case "":
		if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return noop.NewTracerProvider(), off, nil
		}
	case "otlp":
	default:
		return nil, nil, fmt.Errorf("telemetry: OTEL_TRACES_EXPORTER=%q: kasse supports otlp and none", exporter)
	}
	protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if protocol != "" && protocol != "http/protobuf" {
		return nil, nil, fmt.Errorf("telemetry: OTLP protocol %q: kasse exports traces over http/protobuf only", protocol)
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry: OTLP trace exporter: %w", err)
	}
	// Later detectors win: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override kasse's defaults.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "kasse"), attribute.String("service.version", version)),
		resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}
