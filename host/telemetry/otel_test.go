package telemetry

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// TestTracerProviderFromEnv: tracing is off unless the OTEL_* variables ask for OTLP, and what kasse cannot
// do is an error, not silence. Nothing is sent: the exporter is built but no span is ended.
func TestTracerProviderFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string // "noop", "sdk" or "error"
	}{
		{"nothing set", nil, "noop"},
		{"exporter none", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, "noop"},
		{"sdk disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, "noop"},
		{"endpoint set", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, "sdk"},
		{"traces endpoint set", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, "sdk"},
		{"exporter otlp", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, "sdk"},
		{"exporter zipkin", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, "error"},
		{"grpc", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp, shutdown, err := TracerProviderFromEnv(context.Background(), func(k string) string { return tc.env[k] }, "test")
			got := "error"
			switch tp.(type) {
			case noop.TracerProvider:
				got = "noop"
			case *sdktrace.TracerProvider:
				got = "sdk"
			}
			if err != nil {
				got = "error"
			}
			if got != tc.want {
				t.Fatalf("got %s (%T, %v), want %s", got, tp, err, tc.want)
			}
			if shutdown != nil {
				if err := shutdown(context.Background()); err != nil {
					t.Errorf("shutdown: %v", err)
				}
			}
		})
	}
}
