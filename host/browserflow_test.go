package host_test

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
)

var formAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)

// TestLandingPageFlow follows redirectUrl the way a browser does: the simulator's landing page, the phone
// number, "confirm in app", the redirect to kasse's fallBack, and on to the shop's confirmation page.
func TestLandingPageFlow(t *testing.T) {
	stores(t, func(t *testing.T, redisURL string) {
		s := newStack(t, stackOptions{redisURL: redisURL})
		res := s.do("POST", "/v1/checkouts", checkoutBody(49900))
		if res.status != http.StatusCreated {
			t.Fatalf("create: %d %s", res.status, res.raw)
		}
		id := res.body["id"].(string)
		page := browse(t, s.client, "GET", res.body["redirectUrl"].(string), nil, http.StatusOK)
		if !strings.Contains(page, "499,00") && !strings.Contains(page, "499.00") {
			t.Fatalf("landing page does not show the amount:\n%s", page)
		}
		action := actionURL(t, res.body["redirectUrl"].(string), page)
		page = browse(t, s.client, "POST", action, url.Values{"step": {"phone"}, "phone": {"91234567"}}, http.StatusOK)
		if !strings.Contains(page, "Confirm payment") {
			t.Fatalf("no confirm step:\n%s", page)
		}
		action = actionURL(t, action, page)
		confirm := browseResp(t, s.client, "POST", action,
			url.Values{"step": {"confirm"}, "phone": {"91234567"}, "action": {"confirm"}})
		fallBack := confirm.Header.Get("Location")
		if confirm.StatusCode != http.StatusSeeOther || fallBack != s.baseURL+"/v1/checkouts/"+id+"/return" {
			t.Fatalf("confirm: %d Location %q", confirm.StatusCode, fallBack)
		}
		back := browseResp(t, s.client, "GET", fallBack, nil)
		loc := back.Header.Get("Location")
		if back.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "http://shop.test/orders/1001/thanks?") ||
			!strings.Contains(loc, "kasse_state=authorized") || !strings.Contains(loc, "kasse_checkout="+id) {
			t.Fatalf("fallBack: %d Location %q", back.StatusCode, loc)
		}
		expectAmounts(t, s.get(id), "state=authorized amount=49900 authorized=49900 captured=0 refunded=0")
	})
}

func actionURL(t *testing.T, base, page string) string {
	t.Helper()
	m := formAction.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form on page:\n%s", page)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return u.ResolveReference(ref).String()
}

func browseResp(t *testing.T, c *http.Client, method, target string, form url.Values) *http.Response {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	resp.Body.Close()
	return resp
}

func browse(t *testing.T, c *http.Client, method, target string, form url.Values, want int) string {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d:\n%s", method, target, resp.StatusCode, want, raw)
	}
	return string(raw)
}

// countingTransport counts provider requests by method and path.
type countingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[req.Method+" "+req.URL.Path]++
	c.mu.Unlock()
	return c.next.RoundTrip(req)
}

func (c *countingTransport) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}
