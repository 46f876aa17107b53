package host_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape gets GET /metrics from the operations handler and parses the exposition.
func scrape(t *testing.T, s *stack) map[string]*dto.MetricFamily {
	t.Helper()
	res := s.ops("GET", "/metrics", nil)
	if res.status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", res.status, res.raw)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(res.raw))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, res.raw)
	}
	return fams
}

// sample is the value of the series of family name whose labels include want; ok=false if there is none.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) (v float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, w := range want {
			if got[k] != w {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
		return m.GetUntyped().GetValue(), true
	}
	return 0, false
}

// TestMetrics scrapes /metrics after a payment is created, captured and read, and checks each family an
// operator relies on: HTTP by route and status on both listeners, plugin calls by plugin, version and
// operation, provider calls by operation and status, checkout transitions by merchant and state, the
// queues, the reconciler, and the Go and process collectors.
func TestMetrics(t *testing.T) {
	s := newStack(t, stackOptions{})
	id, _ := s.createAuthorized(49900)
	if res := s.do("POST", "/v1/checkouts/"+id+"/capture", map[string]any{"amount": 1000}); res.status != http.StatusOK {
		t.Fatalf("capture: %d %s", res.status, res.raw)
	}
	s.do("GET", "/v1/checkouts/does-not-exist", nil)
	s.do("GET", "/no/such/route", nil)
	s.ops("GET", "/readyz", nil)

	fams := scrape(t, s)
	for _, tc := range []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"kasse_http_request_duration_seconds", map[string]string{"listener": "public", "method": "POST", "route": "/v1/checkouts", "status": "201"}, 1},
		{"kasse_http_request_duration_seconds", map[string]string{"listener": "public", "route": "/v1/checkouts/:id/capture", "status": "200"}, 1},
		{"kasse_http_request_duration_seconds", map[string]string{"listener": "public", "route": "/v1/checkouts/:id", "status": "404"}, 1},
		{"kasse_http_request_duration_seconds", map[string]string{"listener": "public", "route": "unmatched", "status": "404"}, 1},
		{"kasse_http_request_duration_seconds", map[string]string{"listener": "ops", "route": "/readyz", "status": "200"}, 1},
		{"kasse_plugin_call_duration_seconds", map[string]string{"plugin": "vipps-ecom", "operation": "build_initiate", "result": "ok"}, 1},
		{"kasse_plugin_call_duration_seconds", map[string]string{"plugin": "vipps-ecom", "operation": "build_capture", "result": "ok"}, 1},
		{"kasse_provider_request_duration_seconds", map[string]string{"operation": "POST /ecomm/v2/payments", "status": "200"}, 1},
		{"kasse_provider_request_duration_seconds", map[string]string{"operation": "POST /ecomm/v2/payments/{id}/capture", "status": "200"}, 1},
		{"kasse_checkout_transitions_total", map[string]string{"merchant": "demo", "state": "pending"}, 1},
		{"kasse_checkout_transitions_total", map[string]string{"merchant": "demo", "state": "authorized"}, 1},
		{"kasse_checkout_transitions_total", map[string]string{"merchant": "demo", "state": "captured"}, 1},
		{"kasse_plugin_calls_total", map[string]string{"plugin": "vipps-ecom", "state": "active"}, 2},
		// A Go guest's linear memory is several MiB once it has served a call.
		{"kasse_plugin_instance_memory_bytes", map[string]string{"plugin": "vipps-ecom", "state": "active"}, 1 << 20},
		{"kasse_plugin_instances_grown_total", map[string]string{"plugin": "vipps-ecom", "state": "active"}, 0},
		{"kasse_plugin_instances_shrunk_total", map[string]string{"plugin": "vipps-ecom", "state": "active"}, 0},
		{"kasse_platform_updates_pending", nil, 0},
		{"kasse_hook_inbox_total", map[string]string{"result": "given_up"}, 0},
		{"kasse_checkout_divergences_total", nil, 0},
		{"go_goroutines", nil, 1},
		{"process_cpu_seconds_total", nil, 0},
	} {
		v, ok := sample(fams, tc.name, tc.labels)
		if !ok || v < tc.min {
			var have []string
			if f := fams[tc.name]; f != nil {
				for _, m := range f.GetMetric() {
					have = append(have, m.String())
				}
			}
			t.Errorf("%s%v = %v (found %v), want >= %v; have:\n%s", tc.name, tc.labels, v, ok, tc.min, strings.Join(have, "\n"))
		}
	}
	if f := fams["kasse_plugin_failures_total"]; f == nil || f.GetType() != dto.MetricType_COUNTER {
		t.Errorf("kasse_plugin_failures_total is missing or not a counter: %v", f)
	}
	if f := fams["kasse_reconciler_pass_duration_seconds"]; f == nil || f.GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("kasse_reconciler_pass_duration_seconds is missing or not a histogram: %v", f)
	}
}
