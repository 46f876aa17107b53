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

// TestReadyzRevealsNothingInPublic: the public /readyz answers 503 without the reason (which may name the
// store's address); the operations listener's says what is wrong.
func TestReadyzRevealsNothingInPublic(t *testing.T) {
	const reason = "session store: dial tcp 10.1.2.3:6379: connection refused"
	ready := func(context.Context) error { return errors.New(reason) }
	for _, c := range []struct {
		name    string
		h       http.Handler
		showing bool
	}{
		{"public", httpapi.New(httpapi.Config{Ready: ready}), false},
		{"operations", httpapi.NewOps(httpapi.OpsConfig{Ready: ready}), true},
	} {
		rec := httptest.NewRecorder()
		c.h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("%s: status %d", c.name, rec.Code)
		}
		if got := strings.Contains(rec.Body.String(), "10.1.2.3"); got != c.showing {
			t.Errorf("%s: body %s; shows the reason: %v, want %v", c.name, rec.Body, got, c.showing)
		}
	}
}
