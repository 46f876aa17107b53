package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kassehq/kasse/host/httpapi"
)

// TestJSONAnswersUnescapedWithNewline: every JSON answer keeps &, < and > as they are (a URL copied from
// curl's output must work in a browser) and ends with a newline (curl's output then ends its line).
func TestJSONAnswersUnescapedWithNewline(t *testing.T) {
	ready := func(context.Context) error { return errors.New("store <redis://r?a=1&b=2> refused") }
	for _, tt := range []struct {
		name, method, path, contentType string
		h                               http.Handler
		want                            string // the body, or a part of it when partial
		partial                         bool
	}{
		{name: "healthz", method: "GET", path: "/healthz", h: httpapi.New(httpapi.Config{Ready: ready}), want: `{"status":"ok"}` + "\n"},
		{name: "ops readyz", method: "GET", path: "/readyz", h: httpapi.NewOps(httpapi.OpsConfig{Ready: ready}),
			want: `<redis://r?a=1&b=2>`, partial: true},
		{name: "problem", method: "POST", path: "/v1/checkouts", contentType: "text/plain",
			h: httpapi.New(httpapi.Config{Ready: ready}), want: `"status":415`, partial: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(tt.method, tt.path, nil)
			if tt.contentType != "" {
				req = httptest.NewRequest(tt.method, tt.path, strings.NewReader("x"))
				req.Header.Set("Content-Type", tt.contentType)
			}
			tt.h.ServeHTTP(rec, req)
			body := rec.Body.String()
			if !strings.HasSuffix(body, "}\n") || strings.Count(body, "\n") != 1 {
				t.Errorf("body does not end with one newline: %q", body)
			}
			if strings.Contains(body, `\u00`) {
				t.Errorf("escaped: %s", body)
			}
			if (tt.partial && !strings.Contains(body, tt.want)) || (!tt.partial && body != tt.want) {
				t.Errorf("body %q, want %q", body, tt.want)
			}
		})
	}
}
