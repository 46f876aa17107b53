package host_test

import (
	"net/http"
	"regexp"
	"strconv"
	"testing"
)

// TestMetrics checks that an operator can see the plugin's calls and the platform queue in GET /metrics.
func TestMetrics(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.create(49900)
	res := s.ops("GET", "/metrics", nil)
	if res.status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", res.status, res.raw)
	}
	m := regexp.MustCompile(`(?m)^kasse_plugin_calls_total\{plugin="vipps-ecom",version="[^"]+",state="active"\} (\d+)$`).
		FindSubmatch(res.raw)
	if m == nil {
		t.Fatalf("no call counter for the active vipps-ecom version:\n%s", res.raw)
	}
	if n, _ := strconv.Atoi(string(m[1])); n < 2 {
		t.Fatalf("vipps-ecom calls = %d after a checkout (build and read initiate), want >= 2", n)
	}
	mem := regexp.MustCompile(`(?m)^kasse_plugin_instance_memory_bytes\{plugin="vipps-ecom",version="[^"]+",state="active"\} (\S+)$`).
		FindSubmatch(res.raw)
	if mem == nil {
		t.Fatalf("no memory per instance for the active vipps-ecom version:\n%s", res.raw)
	}
	if b, err := strconv.ParseFloat(string(mem[1]), 64); err != nil || b < 65536 {
		t.Errorf("vipps-ecom memory per instance = %s, want at least a page", mem[1])
	}
	for _, want := range []string{
		`# TYPE kasse_plugin_failures_total counter`,
		`kasse_platform_updates_pending 0`,
		`kasse_hook_inbox_total{result="given_up"} 0`,
	} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).Match(res.raw) {
			t.Errorf("metrics lack %q:\n%s", want, res.raw)
		}
	}
}
