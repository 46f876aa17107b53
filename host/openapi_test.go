package host_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/kassehq/kasse/host/internal/apispec"
)

var (
	specOnce sync.Once
	specV    *apispec.Spec
	specErr  error
)

// apiSpec is kasse's OpenAPI document, loaded once per test binary.
func apiSpec(t testing.TB) *apispec.Spec {
	t.Helper()
	specOnce.Do(func() { specV, specErr = apispec.Load() })
	if specErr != nil {
		t.Fatal(specErr)
	}
	return specV
}

// specChecked wraps next so that every answer from host is checked against the OpenAPI document; a
// mismatch fails t (while it runs: an answer that arrives after the test has ended is not reported).
func specChecked(t testing.TB, next http.RoundTripper, host string) http.RoundTripper {
	t.Helper()
	var mu sync.Mutex
	done := false
	t.Cleanup(func() { mu.Lock(); done = true; mu.Unlock() })
	return apiSpec(t).Transport(next, func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Error(err)
		}
	}, host)
}

// ginPath turns gin's path syntax into OpenAPI's: :id and *userId become {id} and {userId}.
var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

func ginPath(p string) string { return ginParam.ReplaceAllString(p, "{$1}") }

// TestOpenAPICoversEveryRoute fails when a route exists in gin, on either listener, that openapi.json
// does not describe.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	s := newStack(t, stackOptions{adminToken: "test-admin-token"})
	spec := apiSpec(t)
	for name, h := range map[string]http.Handler{"public": s.kasse.Handler(), "operations": s.kasse.OpsHandler()} {
		eng, ok := h.(*gin.Engine)
		if !ok {
			t.Fatalf("%s handler is a %T, not a *gin.Engine", name, h)
		}
		if len(eng.Routes()) < 5 {
			t.Fatalf("%s listener has only %d routes", name, len(eng.Routes()))
		}
		for _, r := range eng.Routes() {
			if !spec.Has(r.Method, ginPath(r.Path)) {
				t.Errorf("%s listener: %s %s is not in schemas/openapi.json", name, r.Method, ginPath(r.Path))
			}
		}
	}
}

// TestOpenAPIServed checks GET /openapi.json and that its references lead to the schemas kasse serves.
func TestOpenAPIServed(t *testing.T) {
	s := newStack(t, stackOptions{})
	res := s.do("GET", "/openapi.json", nil)
	if res.status != http.StatusOK || res.body["openapi"] != "3.1.0" {
		t.Fatalf("GET /openapi.json: %d %.200s", res.status, res.raw)
	}
	refs := regexp.MustCompile(`"\$ref":\s*"(/schemas/[^"#]+)"`).FindAllSubmatch(res.raw, -1)
	if len(refs) < 5 {
		t.Fatalf("served document has %d schema references, want the payloads' ($ref to /schemas/...)", len(refs))
	}
	seen := map[string]bool{}
	for _, m := range refs {
		p := string(m[1])
		if seen[p] {
			continue
		}
		seen[p] = true
		got := s.do("GET", p, nil)
		var v map[string]any
		if got.status != http.StatusOK || json.Unmarshal(got.raw, &v) != nil || !strings.HasSuffix(v["$id"].(string), strings.TrimPrefix(p, "/schemas/")) {
			t.Errorf("GET %s: %d %.100s", p, got.status, got.raw)
		}
	}
	if got := s.do("GET", "/schemas/nope.json", nil); got.status != http.StatusNotFound {
		t.Errorf("GET /schemas/nope.json: %d", got.status)
	}
}

// TestOpenAPICheckRefuses makes sure the check the suite relies on does refuse what the document does not
// allow: an undocumented route, an undocumented status and a body that breaks the session schema.
func TestOpenAPICheckRefuses(t *testing.T) {
	spec := apiSpec(t)
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	for _, tc := range []struct {
		name, method, path string
		status             int
		header             http.Header
		body               string
	}{
		{"undocumented route", "GET", "/v1/nothing-here", 200, jsonHeader, `{}`},
		{"undocumented status", "GET", "/v1/checkouts/abc", 201, jsonHeader, `{}`},
		{"session missing fields", "GET", "/v1/checkouts/abc", 200, jsonHeader, `{"id":"abc"}`},
		{"problem as json", "GET", "/v1/checkouts/abc", 404, jsonHeader, `{"status":404}`},
		{"bad probe body", "GET", "/healthz", 200, jsonHeader, `{"status":"fine"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if err := spec.Check(req, tc.status, tc.header, []byte(tc.body)); err == nil {
				t.Errorf("%s %s -> %d %s passed the check", tc.method, tc.path, tc.status, tc.body)
			}
		})
	}
	ok := httptest.NewRequest("GET", "/healthz", nil)
	if err := spec.Check(ok, 200, jsonHeader, []byte(`{"status":"ok"}`)); err != nil {
		t.Errorf("a good answer failed: %v", err)
	}
}
