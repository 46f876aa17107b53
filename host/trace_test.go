package host_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// spanTree is the spans of one trace, by span id.
type spanTree struct {
	root  tracetest.SpanStub
	spans map[trace.SpanID]tracetest.SpanStub
}

// requestTrace waits until the root span of the request with this X-Request-Id has ended and returns its
// trace. The root span ends after the answer is written, so it may come a moment after the answer.
func requestTrace(t *testing.T, exp *tracetest.InMemoryExporter, requestID string) spanTree {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		spans := exp.GetSpans()
		for _, sp := range spans {
			if attr(sp, "kasse.request_id") != requestID || sp.SpanKind != trace.SpanKindServer {
				continue
			}
			tree := spanTree{root: sp, spans: map[trace.SpanID]tracetest.SpanStub{}}
			for _, o := range spans {
				if o.SpanContext.TraceID() == sp.SpanContext.TraceID() {
					tree.spans[o.SpanContext.SpanID()] = o
				}
			}
			return tree
		}
		if time.Now().After(deadline) {
			t.Fatalf("no root span with kasse.request_id=%s among %d spans", requestID, len(spans))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func attr(sp tracetest.SpanStub, key string) string {
	for _, kv := range sp.Attributes {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// path is the chain of span names from the root down to sp, e.g. "POST /v1/checkouts > checkout.Create".
func (tr spanTree) path(sp tracetest.SpanStub) string {
	names := []string{sp.Name}
	for sp.Parent.IsValid() && sp.Parent.SpanID() != tr.root.SpanContext.SpanID() {
		p, ok := tr.spans[sp.Parent.SpanID()]
		if !ok {
			return "(orphan) " + strings.Join(names, " < ")
		}
		names = append(names, p.Name)
		sp = p
	}
	names = append(names, tr.root.Name)
	for i, j := 0, len(names)-1; i < j; i, j = i+1, j-1 {
		names[i], names[j] = names[j], names[i]
	}
	return strings.Join(names, " > ")
}

// has reports whether some span of the tree has the chain want (a suffix of names ending at a span) under
// the root.
func (tr spanTree) has(want string) bool {
	for _, sp := range tr.spans {
		if strings.HasSuffix(tr.path(sp), want) && strings.HasPrefix(tr.path(sp), tr.root.Name) {
			return true
		}
	}
	return false
}

func (tr spanTree) dump() string {
	var b strings.Builder
	for _, sp := range tr.spans {
		b.WriteString(tr.path(sp))
		b.WriteString("\n")
	}
	return b.String()
}

// TestTraces checks the span tree of a create and of a capture, recorded by an in-memory exporter: one
// trace per request, rooted in the HTTP span with the request id, through the checkout service, the
// plugin call, the provider request and the store; and no secret or personal data in any attribute.
func TestTraces(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	s := newStack(t, stackOptions{tracerProvider: tp})

	res := s.do("POST", "/v1/checkouts", checkoutBody(49900))
	if res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.raw)
	}
	id, orderID := res.body["id"].(string), res.body["providerReference"].(string)
	create := requestTrace(t, exp, res.header.Get("X-Request-Id"))
	if create.root.Name != "POST /v1/checkouts" || attr(create.root, "http.response.status_code") != "201" {
		t.Errorf("create root span: %q status %s", create.root.Name, attr(create.root, "http.response.status_code"))
	}
	for _, want := range []string{
		"POST /v1/checkouts > checkout.Create",
		"checkout.Create > plugin.call",
		"checkout.Create > provider.request",
		"checkout.Create > store.create",
	} {
		if !create.has(want) {
			t.Errorf("create trace lacks %q:\n%s", want, create.dump())
		}
	}

	if err := s.sim.Approve(orderID, "91234567"); err != nil {
		t.Fatal(err)
	}
	s.waitState(id, "authorized")
	res = s.do("POST", "/v1/checkouts/"+id+"/capture", map[string]any{"amount": 20000})
	if res.status != http.StatusOK {
		t.Fatalf("capture: %d %s", res.status, res.raw)
	}
	capture := requestTrace(t, exp, res.header.Get("X-Request-Id"))
	if capture.root.Name != "POST /v1/checkouts/:id/capture" {
		t.Errorf("capture root span: %q", capture.root.Name)
	}
	if capture.root.SpanContext.TraceID() == create.root.SpanContext.TraceID() {
		t.Error("create and capture share a trace")
	}
	for _, want := range []string{
		"POST /v1/checkouts/:id/capture > checkout.Modify",
		"checkout.Modify > plugin.call",
		"checkout.Modify > provider.request",
		"checkout.Modify > store.update",
		// The session is read once, for the key check, and the operation starts from it.
		"POST /v1/checkouts/:id/capture > checkout.Get > store.get",
	} {
		if !capture.has(want) {
			t.Errorf("capture trace lacks %q:\n%s", want, capture.dump())
		}
	}
	if capture.has("checkout.Modify > checkout.Get") {
		t.Errorf("capture reads the session twice:\n%s", capture.dump())
	}
	ops := map[string]bool{}
	for _, sp := range capture.spans {
		if sp.Name == "plugin.call" {
			ops[attr(sp, "kasse.plugin.operation")] = true
		}
	}
	if !ops["build_capture"] {
		t.Errorf("capture trace has plugin calls %v, want build_capture", ops)
	}

	// Nothing secret or personal in any attribute of any span: the API key, the Vipps credentials, the
	// phone number, the shop's return URL.
	for _, sp := range exp.GetSpans() {
		for _, kv := range sp.Attributes {
			v := kv.Value.Emit()
			for _, secret := range []string{apiKey, "demo-client-secret", "demo-subscription-key", testURLSecret, "91234567", "shop.test"} {
				if strings.Contains(v, secret) {
					t.Errorf("span %s attribute %s=%q holds %q", sp.Name, kv.Key, v, secret)
				}
			}
		}
	}
}
