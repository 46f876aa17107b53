package host_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

const consoleToken = "console-test-token-0123456789"

// consoleClient is an operator's browser without a browser: a cookie jar and the console's forms.
type consoleClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newConsoleClient(t *testing.T, s *stack) *consoleClient {
	t.Helper()
	srv := httptest.NewServer(s.kasse.OpsHandler())
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	return &consoleClient{t: t, base: srv.URL, c: &http.Client{Jar: jar, Transport: &http.Transport{},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (cc *consoleClient) send(method, path string, form url.Values) (*http.Response, string) {
	cc.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, cc.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := cc.c.Do(req)
	if err != nil {
		cc.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
var keyField = regexp.MustCompile(`name="key" value="([^"]+)"`)

func field(t *testing.T, re *regexp.Regexp, page string) string {
	t.Helper()
	m := re.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no %s in page:\n%s", re, page)
	}
	return m[1]
}

func (cc *consoleClient) login(name, token string) *http.Response {
	cc.t.Helper()
	_, page := cc.send("GET", "/console/login", nil)
	resp, _ := cc.send("POST", "/console/login", url.Values{"csrf": {field(cc.t, csrfField, page)}, "name": {name}, "token": {token}})
	return resp
}

// TestConsoleAccess: the console is on the operations listener only, off without a token, needs a login
// whose cookie is HttpOnly and SameSite=Strict, refuses forms without the CSRF token, and acts through
// the checkout service (a confirmation, then one capture even when the confirmed form is sent twice).
func TestConsoleAccess(t *testing.T) {
	t.Run("off without a token", func(t *testing.T) {
		s := newStack(t, stackOptions{})
		if res := s.ops("GET", "/console/login", nil); res.status != http.StatusNotFound {
			t.Fatalf("console without a token: %d", res.status)
		}
	})
	logs := &lockedBuffer{}
	s := newStack(t, stackOptions{adminToken: consoleToken, logs: logs, topYAML: settlementYAML})
	if res := s.do("GET", "/console/login", nil); res.status != http.StatusNotFound {
		t.Fatalf("the public listener serves the console: %d", res.status)
	}
	cc := newConsoleClient(t, s)
	if resp, _ := cc.send("GET", "/console/payments", nil); resp.StatusCode != http.StatusSeeOther ||
		resp.Header.Get("Location") != "/console/login" {
		t.Fatalf("not logged in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := cc.login("Kari", "wrong-token-wrong-token"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}
	if resp := cc.login("", consoleToken); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("no name: %d", resp.StatusCode)
	}
	if resp, _ := cc.send("POST", "/console/login", url.Values{"name": {"Kari"}, "token": {consoleToken}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("login without its CSRF token: %d", resp.StatusCode)
	}
	resp := cc.login("Kari", consoleToken)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	var cookie string
	for _, h := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(h, "kasse_console=") {
			cookie = h
		}
	}
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age="} {
		if !strings.Contains(cookie, want) {
			t.Errorf("session cookie %q lacks %s", cookie, want)
		}
	}
	if strings.Contains(cookie, "Secure") {
		t.Errorf("session cookie %q is Secure on plain http", cookie)
	}
	if strings.Contains(cookie, consoleToken) {
		t.Error("the session cookie holds the token")
	}

	id, orderID := s.createAuthorized(49900)
	_, page := cc.send("GET", "/console/payments/"+id, nil)
	csrf := field(t, csrfField, page)
	action := "/console/payments/" + id + "/action"

	if resp, _ := cc.send("POST", action, url.Values{"op": {"capture"}, "amount": {"100"}, "confirm": {"yes"}, "key": {"k1"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("action without CSRF token: %d", resp.StatusCode)
	}
	for _, bad := range []string{"12,345", "-5", "abc", "0"} {
		resp, page := cc.send("POST", action, url.Values{"csrf": {csrf}, "op": {"capture"}, "amount": {bad}})
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, `id="capture-error"`) {
			t.Fatalf("amount %q: %d, want 422 naming the field", bad, resp.StatusCode)
		}
	}
	if resp, _ := cc.send("POST", action, url.Values{"csrf": {csrf}, "op": {"steal"}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown op: %d", resp.StatusCode)
	}
	expectAmounts(t, s.get(id), "state=authorized amount=49900 authorized=49900 captured=0 refunded=0")

	resp, page = cc.send("POST", action, url.Values{"csrf": {csrf}, "op": {"capture"}, "amount": {"200,50"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "200,50 NOK") {
		t.Fatalf("confirmation: %d\n%s", resp.StatusCode, page)
	}
	confirmed := url.Values{"csrf": {csrf}, "op": {"capture"}, "amount": {"200,50"}, "confirm": {"yes"},
		"key": {field(t, keyField, page)}}
	for range 2 { // the confirmed form sent twice captures once
		if resp, page := cc.send("POST", action, confirmed); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("capture: %d\n%s", resp.StatusCode, page)
		}
	}
	expectAmounts(t, s.get(id), "state=captured amount=49900 authorized=49900 captured=20050 refunded=0")
	// Who did what is logged, the token never.
	for _, want := range []string{`msg="console: login" operator=Kari`,
		`msg="console: payment action" operator=Kari remote=127.0.0.1:`, "session=" + id, "op=capture amount=20050 ok=true"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	if strings.Contains(logs.String(), consoleToken) {
		t.Error("the log holds the console token")
	}

	// Too much is refused by the service's own check, and named at the field.
	resp, page = cc.send("POST", action, url.Values{"csrf": {csrf}, "op": {"refund"}, "amount": {"999"},
		"confirm": {"yes"}, "key": {"refund-too-much"}})
	if resp.StatusCode != http.StatusUnprocessableEntity && resp.StatusCode != http.StatusConflict ||
		!strings.Contains(page, `id="refund-error"`) {
		t.Fatalf("refund of more than captured: %d\n%s", resp.StatusCode, page)
	}
	expectAmounts(t, s.get(id), "state=captured amount=49900 authorized=49900 captured=20050 refunded=0")

	for _, path := range []string{"/console/payments", "/console/payments?state=captured", "/console/payments?q=order-1001",
		"/console/payments?q=" + orderID, "/console/plugins", "/console/health", "/console/settlements"} {
		resp, page := cc.send("GET", path, nil)
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("GET %s: %d\n%s", path, resp.StatusCode, page)
		}
	}
	for _, bad := range []string{"?state=paid", "?from=yesterday", "?merchant=nobody", "?cursor=x"} {
		if resp, _ := cc.send("GET", "/console/payments"+bad, nil); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("GET /console/payments%s: %d, want 400", bad, resp.StatusCode)
		}
	}
	if resp, _ := cc.send("GET", "/console/payments?q=order-1001", nil); resp.Header.Get("Location") != "/console/payments/"+id {
		t.Fatalf("search by shop reference: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The settlement report as CSV, once the ledger day is closed.
	days, err := s.sim.CloseLedgerDay("123456")
	if err != nil || len(days) != 1 {
		t.Fatalf("close the ledger day: %+v, %v", days, err)
	}
	s.waitSettled(id)
	resp, csv := cc.send("GET", "/console/settlements.csv?merchant=demo&date="+days[0].LedgerDate, nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(csv, id) {
		t.Fatalf("CSV: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), csv)
	}
	for _, bad := range []string{"merchant=demo&date=2026-13-01", "merchant=nobody&date=" + days[0].LedgerDate} {
		if resp, _ := cc.send("GET", "/console/settlements.csv?"+bad, nil); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("CSV %s: %d, want 400", bad, resp.StatusCode)
		}
	}
	if resp, _ := cc.send("GET", "/console/settlements.csv?merchant=demo&date=2001-01-01", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("CSV of a day without entries: %d, want 404", resp.StatusCode)
	}

	_, page = cc.send("GET", "/console/payments", nil)
	if resp, _ := cc.send("POST", "/console/logout", url.Values{"csrf": {field(t, csrfField, page)}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ := cc.send("GET", "/console/payments", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after logout: %d", resp.StatusCode)
	}
}
