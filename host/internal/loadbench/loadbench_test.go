package loadbench_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/internal/loadbench"
)

func TestRun(t *testing.T) {
	noop := httptest.NewServer(loadbench.NoopHandler())
	defer noop.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	}))
	defer failing.Close()
	get := func(url string) loadbench.Next {
		return func(int, int) (*http.Request, error) { return http.NewRequest("GET", url, nil) }
	}
	for _, tc := range []struct {
		name       string
		next       loadbench.Next
		wantErrors bool
		// maxRequests, if not 0, is how many requests the run must send: the workers end before the
		// (long) duration.
		maxRequests int
	}{
		{name: "baseline", next: get(noop.URL + "/noop")},
		{name: "error statuses count", next: get(failing.URL), wantErrors: true},
		{name: "unknown route counts", next: get(noop.URL + "/missing"), wantErrors: true},
		{name: "ErrDone ends each worker", maxRequests: 4 * 3, next: func(_, i int) (*http.Request, error) {
			if i == 3 {
				return nil, loadbench.ErrDone
			}
			return http.NewRequest("GET", noop.URL+"/noop", nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := loadbench.NewClient(4)
			defer client.CloseIdleConnections()
			d := 200 * time.Millisecond
			if tc.maxRequests > 0 {
				d = time.Minute
			}
			res := loadbench.Run(t.Context(), loadbench.Options{Concurrency: 4, Duration: d, Client: client}, tc.next)
			if res.Requests == 0 || res.RPS() <= 0 || res.P50 <= 0 || res.P99 < res.P50 || res.CPU < 0 {
				t.Fatalf("nothing measured: %+v", res)
			}
			if (res.Errors > 0) != tc.wantErrors || (tc.wantErrors && (res.Errors != res.Requests || res.FirstError == "")) {
				t.Fatalf("errors %d of %d (%q), want errors %t", res.Errors, res.Requests, res.FirstError, tc.wantErrors)
			}
			if tc.maxRequests > 0 && res.Requests != tc.maxRequests {
				t.Fatalf("%d requests, want %d", res.Requests, tc.maxRequests)
			}
		})
	}
}
